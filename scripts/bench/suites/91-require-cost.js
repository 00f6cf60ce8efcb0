'use strict';
// Load cost: RSS growth and time of require() for the root entry and for the
// subpath entries, each in fresh processes (workers/require-cost.js), the
// entries rotated run by run. Time is wall clock and so noisy on a loaded
// machine; RSS and the count of the package's modules loaded are not.
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const script = path.join(__dirname, '..', 'workers', 'require-cost.js');
const ENTRIES = [
  'resource-guard',
  'resource-guard/sampler',
  'resource-guard/degradation',
  'resource-guard/budget',
  'resource-guard/cache',
  'resource-guard/health',
  'resource-guard/metrics',
  'resource-guard/guards',
  'resource-guard/limits',
];

function measure(specifier) {
  const out = execFileSync(process.execPath, ['--expose-gc', script, specifier], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop());
}

exports.run = async function run(bench) {
  const runs = bench.options.repMs <= 20 ? 5 : 7; // --quick: 5
  bench.section('require() cost (fresh process per run)');
  const seen = Object.fromEntries(ENTRIES.map((e) => [e, []]));
  for (let i = 0; i < runs; i++) {
    for (let j = 0; j < ENTRIES.length; j++) {
      const e = ENTRIES[(i + j) % ENTRIES.length];
      seen[e].push(measure(e));
    }
  }
  for (const e of ENTRIES) {
    const rows = seen[e];
    const mib = rows.map((r) => r.rssBytes / 1048576);
    const note = `${rows[0].modules} package modules loaded; ${runs} processes`;
    if (e === 'resource-guard') {
      bench.value(`${e}: RSS growth`, mib, 'MiB', { note });
      bench.value(`${e}: require time`, rows.map((r) => r.ms), 'ms', { note: 'wall clock' });
    } else {
      bench.value(`${e}: RSS growth`, mib, 'MiB', {
        note,
        baseline: 'resource-guard: RSS growth',
        ...(e === 'resource-guard/sampler' ? { target: '≤ 3 MiB', max: 3 } : {}),
      });
      bench.value(`${e}: require time`, rows.map((r) => r.ms), 'ms', { note: 'wall clock', baseline: 'resource-guard: require time' });
    }
  }
};
