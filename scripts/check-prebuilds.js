'use strict';
// Verifies, before publishing, that prebuilds/ holds a binary for every
// platform the package promises, so no user falls back to a source build by
// accident. Usage: node scripts/check-prebuilds.js [--only linux-x64,...]
const fs = require('node:fs');
const path = require('node:path');

const EXPECTED = {
  'linux-x64': ['resource-guard.glibc.node', 'resource-guard.musl.node'],
  'linux-arm64': ['resource-guard.glibc.node'],
  'darwin-arm64': ['resource-guard.node'],
  'darwin-x64': ['resource-guard.node'],
  'win32-x64': ['resource-guard.node'],
};

const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : null;
const dir = path.join(__dirname, '..', 'prebuilds');
const missing = [];
for (const [target, files] of Object.entries(EXPECTED)) {
  if (only && !only.includes(target)) continue;
  for (const file of files) {
    const p = path.join(dir, target, file);
    if (!fs.existsSync(p) || fs.statSync(p).size === 0) missing.push(`${target}/${file}`);
    else console.log(`ok   ${target}/${file} (${fs.statSync(p).size} bytes)`);
  }
}
if (missing.length) {
  console.error(`missing prebuilds:\n${missing.map((m) => `  ${m}`).join('\n')}`);
  process.exit(1);
}
console.log('all expected prebuilds are present');
