'use strict';
// Runs every program in examples/ (each with the current node, one at a time)
// and fails when one exits non-zero or runs longer than the timeout.
//
//   node scripts/run-examples.js
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const DIR = path.join(ROOT, 'examples');
const TIMEOUT_MS = 90_000;

function run(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const why = timedOut ? `did not stop within ${TIMEOUT_MS / 1000} s` : signal ? `killed by ${signal}` : `exit status ${code}`;
      resolve({ ok: !timedOut && code === 0, why, out, ms: Date.now() - started });
    });
  });
}

async function main() {
  const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.js')).sort();
  let failed = 0;
  for (const f of files) {
    const r = await run(path.join(DIR, f));
    if (r.ok) {
      console.log(`ok   examples/${f} (${r.ms} ms)`);
    } else {
      failed++;
      console.log(`FAIL examples/${f}: ${r.why}\n${r.out.replace(/^/gm, '  | ')}`);
    }
  }
  console.log(`\nexamples: ${files.length - failed} of ${files.length} passed`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);
