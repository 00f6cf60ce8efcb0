'use strict';
// Cost of loading one entry point of the package, in this fresh process:
// RSS growth and the time of the require() call, and how many of the
// package's own modules it loaded. Prints one JSON line.
//
//   node scripts/bench/workers/require-cost.js <specifier>   e.g. resource-guard/sampler
const path = require('node:path');

const specifier = process.argv[2] ?? 'resource-guard';
const root = path.join(__dirname, '..', '..', '..');
// Resolve first (a file system walk that is not the cost of the module).
const resolved = require.resolve(specifier, { paths: [root] });
globalThis.gc?.();
const rss0 = process.memoryUsage.rss();
const t0 = process.hrtime.bigint();
require(resolved);
const t1 = process.hrtime.bigint();
const rss1 = process.memoryUsage.rss();
const dist = path.join(root, 'dist') + path.sep;
const modules = Object.keys(require.cache).filter((f) => f.startsWith(dist)).length;
console.log(JSON.stringify({ specifier, rssBytes: rss1 - rss0, ms: Number(t1 - t0) / 1e6, modules }));
