'use strict';
// Load cost: RSS growth and time of require() for the root entry and for the
// subpath entries, each in fresh processes (workers/require-cost.js), the
// entries rotated run by run. Time is wall clock and so noisy on a loaded
// machine; RSS and the count of the package's modules loaded are not.
//
// The root loads a module the first time one of its names is read, so it is
// measured three ways: required only; required with readRss and MemoryGuard
// read (the sampler and a guard); and required with every name read, which
// loads every module, as require('resource-guard') did before it was lazy. The
// last is the baseline of the ratios. `import` of the root and of the sampler
// entry are measured too (an ES module binds every name when it loads, so
// import of the root loads everything).
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const script = path.join(__dirname, '..', 'workers', 'require-cost.js');
const ALL = 'resource-guard, every name read';
const ENTRIES = [
  { name: ALL, specifier: 'resource-guard', mode: 'read *' },
  { name: 'resource-guard', specifier: 'resource-guard', mode: 'require', target: '≤ 3 MiB', max: 3 },
  { name: 'resource-guard, readRss and MemoryGuard read', specifier: 'resource-guard', mode: 'read readRss,MemoryGuard' },
  { name: 'import resource-guard', specifier: 'resource-guard', mode: 'import' },
  { name: 'resource-guard/sampler', specifier: 'resource-guard/sampler', mode: 'require', target: '≤ 3 MiB', max: 3 },
  { name: 'import resource-guard/sampler', specifier: 'resource-guard/sampler', mode: 'import' },
  ...['degradation', 'budget', 'cache', 'health', 'metrics', 'guards', 'limits'].map((s) => ({
    name: `resource-guard/${s}`,
    specifier: `resource-guard/${s}`,
    mode: 'require',
  })),
];

function measure({ specifier, mode }) {
  const out = execFileSync(process.execPath, ['--expose-gc', script, specifier, mode], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop());
}

exports.run = async function run(bench) {
  const runs = bench.options.repMs <= 20 ? 5 : 7; // --quick: 5
  bench.section('require() cost (fresh process per run)');
  const seen = new Map(ENTRIES.map((e) => [e, []]));
  for (let i = 0; i < runs; i++) {
    for (let j = 0; j < ENTRIES.length; j++) {
      const e = ENTRIES[(i + j) % ENTRIES.length];
      seen.get(e).push(measure(e));
    }
  }
  for (const e of ENTRIES) {
    const rows = seen.get(e);
    const mib = rows.map((r) => r.rssBytes / 1048576);
    const note = `${e.name === ALL ? 'every module: what require cost before the root was lazy; ' : ''}${rows[0].modules} package modules loaded; ${runs} processes`;
    const baseline = e.name === ALL ? {} : { rss: { baseline: `${ALL}: RSS growth` }, ms: { baseline: `${ALL}: load time` } };
    bench.value(`${e.name}: RSS growth`, mib, 'MiB', {
      note,
      ...baseline.rss,
      ...(e.target ? { target: e.target, max: e.max } : {}),
    });
    bench.value(`${e.name}: load time`, rows.map((r) => r.ms), 'ms', { note: 'wall clock', ...baseline.ms });
  }
};
