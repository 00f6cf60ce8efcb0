'use strict';
// Runs the full vitest suite against the same built addon and dist/ on other
// Node lines, with official binaries that scripts/fetch-node.js installs in
// its cache (never in node_modules). The current `node` (the one that built
// everything) is tested by `npm test`; this covers the others.
//
// Usage: node scripts/test-node-lines.js [major...]   (default: 22 24 26)
// Prints, per line, the Node version, the pass/fail counts and the time, then
// `N passed, N failed` over all lines; exits non-zero if any line failed.
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const lines = process.argv.slice(2).length ? process.argv.slice(2) : ['22', '24', '26'];
const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
const results = [];
const failures = [];

for (const line of lines) {
  const out = execFileSync(process.execPath, [path.join(__dirname, 'fetch-node.js'), '--json', line], { encoding: 'utf8' });
  const [{ version, path: bin }] = JSON.parse(out);
  const json = path.join(root, `.vitest-node${line}.json`);
  fs.rmSync(json, { force: true });
  console.log(`\n--- Node ${version} (${bin})`);
  const t0 = Date.now();
  const r = spawnSync(bin, [vitest, 'run', '--reporter=dot', '--reporter=json', `--outputFile=${json}`], {
    cwd: root,
    stdio: 'inherit',
    // The termination soak runs in full on the primary line (npm test); here
    // each of its cases terminates fewer workers.
    env: { RESOURCE_GUARD_TERMINATION_PER_CASE: '6', ...process.env, PATH: `${path.dirname(bin)}${path.delimiter}${process.env.PATH}` },
  });
  const seconds = Math.round((Date.now() - t0) / 1000);
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  try {
    const j = JSON.parse(fs.readFileSync(json, 'utf8'));
    passed = j.numPassedTests;
    // Failed tests, plus files that failed without a failed test (a file
    // that could not load); a failed test's describe blocks are not counted
    // again.
    failed = j.numFailedTests + (j.testResults || []).filter((f) => f.status === 'failed' && !(f.assertionResults || []).some((a) => a.status === 'failed')).length;
    skipped = j.numPendingTests;
    // Name what failed in the summary, so a log that keeps only its tail
    // still says which tests they were.
    for (const file of j.testResults || []) {
      const rel = path.relative(root, file.name);
      if (file.status === 'failed' && !(file.assertionResults || []).some((a) => a.status === 'failed')) {
        failures.push(`Node ${line} ${rel}: ${String(file.message || 'suite failed').split('\n')[0].slice(0, 200)}`);
      }
      for (const a of file.assertionResults || []) {
        if (a.status !== 'failed') continue;
        const msg = String((a.failureMessages || [])[0] || '').split('\n')[0].slice(0, 200);
        failures.push(`Node ${line} ${rel} > ${a.fullName}: ${msg}`);
      }
    }
  } catch {
    failed = 1;
  }
  if (r.status !== 0 && failed === 0) failed = 1;
  results.push({ line, version, passed, failed, skipped, seconds, status: r.status });
}

console.log('\nNode line   version    passed  failed  skipped  time');
for (const r of results) {
  console.log(
    `${String(r.line).padEnd(11)} ${r.version.padEnd(10)} ${String(r.passed).padStart(6)}  ${String(r.failed).padStart(6)}  ${String(r.skipped).padStart(7)}  ${r.seconds}s`,
  );
}
const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
if (failures.length) console.log(`\nFailed:\n${failures.map((f) => `  ${f}`).join('\n')}`);
console.log(`node lines: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && results.every((r) => r.status === 0) ? 0 : 1);
