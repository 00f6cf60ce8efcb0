// The root entry (`require('resource-guard')`) loads a module of the library
// the first time one of its names is read: requiring it costs the sampler and
// the budget ledger, not the task runner, the metrics or the guards. Every
// name is still there, is the very object the module (and any subpath entry)
// exports, and reading names in any order gives the same objects.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, test } from 'vitest';

const root = path.join(__dirname, '..');
const dist = path.join(root, 'dist');

/** Runs a CommonJS script in a fresh process (cwd: the package) and parses the JSON line it prints. */
function run(script: string, env: NodeJS.ProcessEnv = process.env): any {
  const out = execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8', env });
  return JSON.parse(out.trim().split('\n').pop()!);
}

// Prints the modules of dist/ loaded so far (as 'limits/run.js'), in a script given to run().
const LOADED = `(() => {
  const dist = require('node:path').join(process.cwd(), 'dist') + require('node:path').sep;
  return Object.keys(require.cache).filter((f) => f.startsWith(dist)).map((f) => f.slice(dist.length).replaceAll('\\\\', '/')).sort();
})()`;

// Value (not type-only) names dist/index.d.ts exports, each with the compiled
// module src/index.ts takes it from: the types' view of the root, found
// without running anything. A name listed in `export { … } from` wins over
// the same name from an `export * from` (as TypeScript has it); among stars
// the first wins.
function declaredSources(file: string): Map<string, string> {
  const src = fs.readFileSync(file, 'utf8');
  const jsOf = (spec: string) => {
    const base = path.resolve(path.dirname(file), spec);
    return fs.existsSync(`${base}.js`) ? `${base}.js` : path.join(base, 'index.js');
  };
  const explicit = new Map<string, string>();
  for (const m of src.matchAll(/^export \{([^}]*)\} from '([^']+)';/gm)) {
    for (const item of m[1].split(',').map((s) => s.trim()).filter(Boolean)) {
      if (item.startsWith('type ')) continue;
      const parts = item.split(/\s+as\s+/);
      explicit.set(parts[parts.length - 1], jsOf(m[2]));
    }
  }
  const out = new Map(explicit);
  for (const m of src.matchAll(/^export \* from '([^']+)';/gm)) {
    const js = jsOf(m[1]);
    for (const name of declaredNames(js.replace(/\.js$/, '.d.ts'))) if (!out.has(name)) out.set(name, js);
  }
  return out;
}

// Value names a declaration file exports (following re-exports).
function declaredNames(file: string, seen = new Set<string>()): Set<string> {
  const names = new Set<string>();
  if (seen.has(file)) return names;
  seen.add(file);
  const src = fs.readFileSync(file, 'utf8');
  const resolve = (spec: string) => {
    const base = path.resolve(path.dirname(file), spec);
    return fs.existsSync(`${base}.d.ts`) ? `${base}.d.ts` : path.join(base, 'index.d.ts');
  };
  for (const m of src.matchAll(/^export declare (?:abstract )?(?:class|function|const|let|var|enum|namespace) ([A-Za-z_$][\w$]*)/gm)) names.add(m[1]);
  for (const m of src.matchAll(/^export \{([^}]*)\}(?: from '([^']+)')?;/gm)) {
    for (const item of m[1].split(',').map((s) => s.trim()).filter(Boolean)) {
      if (item.startsWith('type ')) continue;
      const parts = item.split(/\s+as\s+/);
      names.add(parts[parts.length - 1]);
    }
  }
  for (const m of src.matchAll(/^export \* from '([^']+)';/gm)) for (const n of declaredNames(resolve(m[1]), seen)) names.add(n);
  return names;
}

const sources = declaredSources(path.join(dist, 'index.d.ts'));

test('requiring the root loads the sampler and the budget ledger, not the task runner, the metrics, the guards or the rest', () => {
  const loaded: string[] = run(`require('resource-guard'); console.log(JSON.stringify(${LOADED}));`);
  // The modules that read the environment when they load (the addon, the
  // sampler's shared region, the budget ledger) load with the package, as before.
  for (const core of ['index.js', 'binding.js', 'sampler.js', 'budget.js']) expect(loaded).toContain(core);
  for (const heavy of [
    'limits/index.js',
    'limits/run.js',
    'metrics.js',
    'metrics/integrations.js',
    'guards/index.js',
    'health.js',
    'degradation.js',
    'shedding.js',
    'fastify.js',
    'bulkhead.js',
    'pool.js',
  ]) {
    expect(loaded).not.toContain(heavy);
  }
});

test('using the sampler and a guard through the root loads neither the task runner, the metrics nor the other guards', () => {
  const loaded: string[] = run(`
    const rg = require('resource-guard');
    const guard = new rg.MemoryGuard({ maxRssBytes: 64 * 1024 ** 3 });
    if (!(rg.readRss() > 0) || typeof guard.ok() !== 'boolean') throw new Error('unexpected');
    guard.close();
    console.log(JSON.stringify(${LOADED}));
  `);
  expect(loaded).toContain('guards/memory.js');
  // Nor the other guards: the name is followed through guards/index.js to the module that defines it.
  for (const heavy of ['limits/index.js', 'limits/run.js', 'metrics.js', 'metrics/integrations.js', 'pool.js', 'shedding.js', 'guards/index.js', 'guards/resource.js', 'degradation.js']) {
    expect(loaded).not.toContain(heavy);
  }
});

test('the root exports exactly the names its types declare, each the object of the module it comes from', () => {
  expect(sources.size).toBeGreaterThan(100);
  const table = Object.fromEntries([...sources].map(([name, js]) => [name, path.relative(root, js)]));
  const out = run(`
    const rg = require('resource-guard');
    const table = ${JSON.stringify(table)};
    const keys = Object.keys(rg).filter((k) => k !== '__esModule').sort();
    const different = Object.keys(table).filter((k) => rg[k] !== require(require('node:path').resolve(table[k]))[k] || rg[k] === undefined);
    console.log(JSON.stringify({ keys, different }));
  `);
  expect(out.keys).toEqual([...sources.keys()].sort());
  expect(out.different).toEqual([]);
});

test('each name has the property attributes it had: those the subpath entries (plain tsc re-exports) give it', () => {
  // A spy or mock that redefines an export of the root (vi.spyOn) works where it did.
  const subpaths = Object.keys(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).exports).filter((k) => k !== '.' && k !== './package.json');
  const out = run(`
    const rg = require('resource-guard');
    const attrs = (o, k) => { const d = Object.getOwnPropertyDescriptor(o, k); return [d.configurable, d.enumerable, 'get' in d].join(); };
    const different = [];
    let compared = 0;
    for (const sub of ${JSON.stringify(subpaths)}) {
      const entry = require('resource-guard' + sub.slice(1));
      for (const k of Object.keys(entry)) {
        if (k === '__esModule') continue;
        compared++;
        if (attrs(rg, k) !== attrs(entry, k)) different.push(sub + ' ' + k + ': ' + attrs(rg, k) + ' vs ' + attrs(entry, k));
      }
    }
    console.log(JSON.stringify({ compared, different }));
  `);
  expect(out.compared).toBeGreaterThan(100);
  expect(out.different).toEqual([]);
});

// One fresh process per module: reading one of its names first (before any
// other module of the library is loaded by the root) loads it on its own and
// gives every one of its names.
const byModule = new Map<string, string[]>();
for (const [name, js] of sources) byModule.set(js, [...(byModule.get(js) ?? []), name]);

test.each([...byModule.keys()].map((js) => path.relative(dist, js)))('reading a name of %s first gives all its names, the objects the module exports', (rel) => {
  const names = byModule.get(path.join(dist, rel))!;
  const out = run(`
    const rg = require('resource-guard');
    const names = ${JSON.stringify(names)};
    const first = rg[names[0]];
    const mod = require(${JSON.stringify(path.join(dist, rel))});
    const different = names.filter((n) => rg[n] !== mod[n] || mod[n] === undefined);
    console.log(JSON.stringify({ first: first === mod[names[0]], different }));
  `);
  expect(out.first).toBe(true);
  expect(out.different).toEqual([]);
});

test('instanceof holds across the root and the subpath entries, and the addon is loaded once', () => {
  const out = run(`
    const rg = require('resource-guard');
    const cache = require('resource-guard/cache');
    const limits = require('resource-guard/limits');
    const c = new cache.BudgetedCache({ maxBytes: 1024 });
    let thrown;
    try { require('resource-guard/budget').parseSize('not a size'); } catch (e) { thrown = e; }
    for (const sub of ['sampler', 'budget', 'guards', 'health', 'cache', 'limits', 'metrics', 'degradation']) Object.values(require('resource-guard/' + sub));
    Object.values(rg);
    console.log(JSON.stringify({
      cache: c instanceof rg.BudgetedCache,
      error: thrown instanceof rg.InvalidArgValueError,
      fuel: new rg.Fuel(10) instanceof limits.Fuel,
      addons: Object.keys(require.cache).filter((f) => f.endsWith('.node')).length,
    }));
  `);
  expect(out).toEqual({ cache: true, error: true, fuel: true, addons: 1 });
});

test('the environment is read when the package is required, as before: a missing addon fails require()', () => {
  const env = { ...process.env, RESOURCE_GUARD_NATIVE: path.join(root, 'no-such-addon.node') };
  const out = run(`
    let code = null;
    try { require('resource-guard'); } catch (e) { code = e.code; }
    console.log(JSON.stringify({ code }));
  `, env);
  expect(out.code).toBe('ERR_RESOURCE_GUARD_LOAD');
});

test('the environment is read when the package is required, as before: setting RESOURCE_GUARD_NO_EXTERNAL_BUFFERS later changes nothing', () => {
  const env = { ...process.env };
  delete env.RESOURCE_GUARD_NO_EXTERNAL_BUFFERS;
  const out = run(`
    const rg = require('resource-guard');
    process.env.RESOURCE_GUARD_NO_EXTERNAL_BUFFERS = '1';
    console.log(JSON.stringify({ sampler: rg.sharedMemory, budget: rg.Budget.sharedMemory }));
  `, env);
  expect(out).toEqual({ sampler: true, budget: true });
});

test("Node's import of the CommonJS root (cjs-module-lexer) finds every name", () => {
  const script = `
    import * as ns from ${JSON.stringify(path.join(dist, 'index.js'))};
    import { createRequire } from 'node:module';
    const cjs = createRequire(import.meta.url)('resource-guard');
    // Node 23 and later also name the whole of module.exports 'module.exports'.
    const whole = 'module.exports' in ns ? ns['module.exports'] === cjs : null;
    const a = Object.keys(ns).filter((k) => k !== 'default' && k !== '__esModule' && k !== 'module.exports').sort();
    const b = Object.keys(cjs).filter((k) => k !== '__esModule').sort();
    console.log(JSON.stringify({ a, b, whole }));
  `;
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' }));
  expect(out.a).toEqual(out.b);
  expect(out.a.length).toBeGreaterThan(100);
  expect(out.whole).not.toBe(false);
});

// scripts/write-lazy-root.js, the build step that writes the lazy root from
// tsc's output for src/index.ts.
const { lazyRoot } = createRequire(__filename)('../scripts/write-lazy-root.js') as { lazyRoot: (tscOutput: string) => string };
const tscOutput = (...body: string[]) =>
  ['"use strict";', 'Object.defineProperty(exports, "__esModule", { value: true });', ...body, '//# sourceMappingURL=index.js.map', ''].join('\n');

test('a re-export added to src/index.ts is made lazy with no other change', () => {
  const out = lazyRoot(
    tscOutput(
      'exports.BudgetedCache = void 0;',
      'var cache_1 = require("./cache");',
      'Object.defineProperty(exports, "BudgetedCache", { enumerable: true, get: function () { return cache_1.BudgetedCache; } });',
      'var sampler_1 = require("./sampler");',
      'Object.defineProperty(exports, "readRss", { enumerable: true, get: function () { return sampler_1.readRss; } });',
    ),
  );
  expect(out).toContain('var cache_1 = __lazyModule(() => require("./cache"), ["BudgetedCache"]);');
  expect(out).toContain('Object.defineProperty(exports, "BudgetedCache", { enumerable: true, get: function () { return cache_1.BudgetedCache; } });');
  // Loaded with the package, as tsc wrote it.
  expect(out).toContain('var sampler_1 = require("./sampler");');
  expect(out).not.toContain('sourceMappingURL');
});

test('the build refuses a value src/index.ts would define itself (the root only re-exports)', () => {
  expect(() => lazyRoot(tscOutput('exports.VERSION = void 0;', 'exports.VERSION = "1.0.0";'))).toThrow(/may only re-export/);
  expect(() => lazyRoot(tscOutput('exports.ns = __importStar(require("./cache"));'))).toThrow(/may only re-export/);
});

test('a name re-exported through a module that only re-exports is read from the module that defines it', () => {
  const out = lazyRoot(
    tscOutput(
      '__exportStar(require("./guards"), exports);',
      'exports.Fuel = void 0;',
      'var limits_1 = require("./limits/index");',
      'Object.defineProperty(exports, "Fuel", { enumerable: true, get: function () { return limits_1.Fuel; } });',
    ),
  );
  expect(out).toMatch(/var guards_memory_1 = __lazyModule\(\(\) => require\("\.\/guards\/memory"\), \[[^\]]*"MemoryGuard"/);
  expect(out).toContain('Object.defineProperty(exports, "MemoryGuard", { enumerable: true, get: function () { return guards_memory_1.MemoryGuard; } });');
  expect(out).toContain('var limits_fuel_1 = __lazyModule(() => require("./limits/fuel"), ["Fuel"]);');
  expect(out).not.toContain('require("./guards")');
});
