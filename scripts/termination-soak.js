#!/usr/bin/env node
'use strict';
// Termination soak: terminates thousands of workers at random points of
// budget loops, under optimised code, --no-opt and --jitless, and runs
// runWithLimits breaches while tasks hold and churn their budget. Every run
// must end with the budget counting exactly 0 bytes.
//
//   node scripts/termination-soak.js [--per-flag N] [--limits N] [--seed S]
//
// Defaults: 2,000 workers per flag (spread over every mode of
// test/fixtures/termination-worker.cjs) and 200 runWithLimits breaches.
// Exits 1 if any byte was left counted, or a driver failed.
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const perFlag = opt('--per-flag', 2000);
const limitRuns = opt('--limits', 200);
const seed0 = opt('--seed', Date.now() % 1e9);

const root = path.join(__dirname, '..');
const dist = path.join(root, 'dist', 'index.js');
const fixtures = path.join(root, 'test', 'fixtures');
const MODES = ['narrow', 'wide', 'narrow-release', 'wide-release', 'refuse', 'allocator', 'cache', 'exit', 'throw', 'oom', 'lease', 'lease-release', 'lease-mix', 'lease-allocator'];
const FLAGS = [[], ['--no-opt'], ['--jitless']];

let failed = false;
const started = Date.now();
console.log(`termination soak: ${perFlag} workers per flag, ${limitRuns} runWithLimits breaches, seed ${seed0}`);
for (const flags of FLAGS) {
  const t0 = Date.now();
  let total = 0;
  let leaked = 0;
  const perMode = Math.ceil(perFlag / MODES.length);
  for (const [i, mode] of MODES.entries()) {
    const seed = (seed0 + i * 7919 + flags.length * 104729) >>> 0;
    let out;
    try {
      out = execFileSync(process.execPath, [...flags, path.join(fixtures, 'termination-driver.cjs'), dist, mode, String(perMode), String(seed)], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        maxBuffer: 1 << 24,
      });
    } catch (err) {
      failed = true;
      console.log(`  FAILED ${flags.join(' ') || 'optimised'} ${mode} (seed ${seed}): ${String(err.stderr).trim().split('\n').slice(-12).join('\n    ')}`);
      continue;
    }
    const r = JSON.parse(out.trim().split('\n').pop());
    total += r.count;
    if (r.used !== 0 || r.leaked !== 0) {
      failed = true;
      leaked += r.leaked;
      console.log(`  LEAK ${flags.join(' ') || 'optimised'} ${mode}: ${r.used} bytes left counted`);
    }
  }
  console.log(`  ${(flags.join(' ') || 'optimised').padEnd(10)} ${total} workers, ${leaked} bytes left counted, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
if (limitRuns > 0) {
  const t0 = Date.now();
  const out = execFileSync(process.execPath, [path.join(fixtures, 'termination-limits.cjs'), dist, String(limitRuns)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const r = JSON.parse(out.trim().split('\n').pop());
  const breaches = Object.entries(r.errors)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  console.log(`  runWithLimits ${r.count} runs (${breaches}), ${r.leaked} bytes left counted, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (r.used !== 0 || r.leaked !== 0 || r.errors.none) failed = true;
}
console.log(`termination soak ${failed ? 'FAILED' : 'passed'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(failed ? 1 : 0);
