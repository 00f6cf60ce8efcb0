// The package's subpath entries ("exports" in package.json, such as
// `resource-guard/sampler`): each resolves for both require and import,
// exports the values its type declarations name (no more, no fewer), and
// hands out the very objects the root entry does (one library instance).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, test } from 'vitest';

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const subpaths = Object.keys(pkg.exports).filter((k) => k !== '.' && k !== './package.json');

// Value (not type-only) names a declaration file exports, following
// `export * from` and `export { … } from` into the files they name.
function declaredValues(file: string, seen = new Set<string>()): Set<string> {
  const names = new Set<string>();
  if (seen.has(file)) return names;
  seen.add(file);
  const src = fs.readFileSync(file, 'utf8');
  const resolve = (spec: string) => {
    const base = path.resolve(path.dirname(file), spec);
    return fs.existsSync(`${base}.d.ts`) ? `${base}.d.ts` : path.join(base, 'index.d.ts');
  };
  for (const m of src.matchAll(/^export declare (?:abstract )?(?:class|function|const|let|var|enum|namespace) ([A-Za-z_$][\w$]*)/gm)) {
    names.add(m[1]);
  }
  for (const m of src.matchAll(/^export \{([^}]*)\}(?: from '([^']+)')?;/gm)) {
    for (const item of m[1].split(',').map((s) => s.trim()).filter(Boolean)) {
      if (item.startsWith('type ')) continue;
      const parts = item.split(/\s+as\s+/);
      names.add(parts[parts.length - 1]);
    }
  }
  for (const m of src.matchAll(/^export \* from '([^']+)';/gm)) {
    for (const n of declaredValues(resolve(m[1]), new Set(seen))) names.add(n);
  }
  return names;
}

test('package.json names the subpath entries, each with import and require conditions and types for each', () => {
  expect(subpaths.length).toBeGreaterThanOrEqual(5);
  for (const sub of subpaths) {
    const e = pkg.exports[sub];
    expect(Object.keys(e)).toEqual(['import', 'require']);
    // ES types (.d.mts) for import and CommonJS types (.d.ts) for require,
    // so that neither resolution sees the other module kind's types.
    expect(e.import.types).toMatch(/\.d\.mts$/);
    expect(e.import.default).toMatch(/\.mjs$/);
    expect(e.require.types).toMatch(/\.d\.ts$/);
    expect(e.require.default).toMatch(/\.js$/);
    for (const cond of [e.import, e.require]) {
      for (const target of Object.values(cond) as string[]) expect(fs.existsSync(path.join(root, target))).toBe(true);
    }
  }
});

test.each(subpaths.map((s) => s.slice(1)))('resource-guard%s resolves for require and import and exports what its types say', (sub) => {
  const specifier = `resource-guard${sub}`;
  const script = `
    import * as esm from '${specifier}';
    import * as rootEsm from 'resource-guard';
    import { createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    const cjs = require('${specifier}');
    const rootCjs = require('resource-guard');
    const esmKeys = Object.keys(esm).filter((k) => k !== 'default').sort();
    const cjsKeys = Object.keys(cjs).filter((k) => k !== '__esModule').sort();
    const notInRoot = cjsKeys.filter((k) => !(k in rootCjs));
    const different = cjsKeys.filter((k) => cjs[k] !== rootCjs[k] || esm[k] !== rootEsm[k]);
    console.log(JSON.stringify({ esmKeys, cjsKeys, notInRoot, different, sameDefault: esm.default === cjs }));
  `;
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' }));
  expect(out.cjsKeys.length).toBeGreaterThan(0);
  expect(out.esmKeys).toEqual(out.cjsKeys);
  expect(out.notInRoot).toEqual([]);
  expect(out.different).toEqual([]);
  expect(out.sameDefault).toBe(true);
  const declared = [...declaredValues(path.join(root, pkg.exports[`.${sub}`].require.types))].sort();
  expect(out.cjsKeys).toEqual(declared);
});

// Modules of dist/ that loading `specifier` in a fresh process loads.
function loadedBy(specifier: string): string[] {
  const script = `
    require('${specifier}');
    const dist = require('node:path').join(process.cwd(), 'dist');
    console.log(JSON.stringify(Object.keys(require.cache).filter((f) => f.startsWith(dist)).map((f) => f.slice(dist.length + 1)).sort()));
  `;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' }));
}

test('the sampler entry loads neither the task runner, the metrics nor the guards', () => {
  const loaded = loadedBy('resource-guard/sampler');
  expect(loaded).toContain('sampler.js');
  for (const heavy of ['limits/run.js', 'metrics.js', 'bulkhead.js', 'pool.js', 'guards/index.js', 'health.js']) {
    expect(loaded).not.toContain(heavy);
  }
});

test('the guards entry loads neither the task runner nor the metrics', () => {
  const loaded = loadedBy('resource-guard/guards');
  expect(loaded).toContain('guards/index.js');
  for (const heavy of ['limits/run.js', 'limits/index.js', 'metrics.js', 'bulkhead.js', 'pool.js', 'cache.js']) {
    expect(loaded).not.toContain(heavy);
  }
});

test('the root entry loads no subpath entry (one set of modules, as before)', () => {
  expect(loadedBy('resource-guard').filter((f) => f.startsWith('entries'))).toEqual([]);
});
