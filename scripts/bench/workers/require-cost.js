'use strict';
// Cost of loading one entry point of the package, in this fresh process:
// RSS growth and the time of the load, and how many of the package's own
// modules it loaded. Prints one JSON line.
//
//   node scripts/bench/workers/require-cost.js <specifier> [mode]   e.g. resource-guard/sampler
//
// mode: require (the default): require(specifier);
//       read <names>: require(specifier), then read the comma-separated
//         names of it (the root loads a module when one of its names is
//         first read), or every name with "*";
//       import: import(specifier), the ES module entry (the ES module loader
//         is started first, by an import of a built-in module, so that its
//         own cost is not counted).
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const specifier = process.argv[2] ?? 'resource-guard';
const mode = process.argv[3] ?? 'require';
const root = path.join(__dirname, '..', '..', '..');
// Resolve first (a file system walk that is not the cost of the module).
const resolved = require.resolve(specifier, { paths: [root] });

async function main() {
  let load;
  if (mode === 'require') load = () => require(resolved);
  else if (mode.startsWith('read ')) {
    const wanted = mode.slice(5);
    load = () => {
      const m = require(resolved);
      const names = wanted === '*' ? Object.keys(m) : wanted.split(',');
      for (const n of names) if (m[n] === undefined && n !== '__esModule') throw new Error(`${specifier} has no ${n}`);
    };
  } else if (mode === 'import') {
    await import('node:os');
    const url = pathToFileURL(resolved.replace(/\.js$/, '.mjs')).href;
    load = () => import(url);
  } else throw new Error(`unknown mode ${mode}`);
  globalThis.gc?.();
  const rss0 = process.memoryUsage.rss();
  const t0 = process.hrtime.bigint();
  await load();
  const t1 = process.hrtime.bigint();
  const rss1 = process.memoryUsage.rss();
  const dist = path.join(root, 'dist') + path.sep;
  const modules = Object.keys(require.cache).filter((f) => f.startsWith(dist)).length;
  console.log(JSON.stringify({ specifier, mode, rssBytes: rss1 - rss0, ms: Number(t1 - t0) / 1e6, modules }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
