// Both entry points of the built package: the ESM facade exports exactly
// what the CommonJS build does, and both share one instance.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { expect, test } from 'vitest';

const root = path.join(__dirname, '..');

test('import and require see the same exports and the same instance', () => {
  const script = `
    import * as esm from 'resource-guard';
    import { createRequire } from 'node:module';
    const cjs = createRequire(import.meta.url)('resource-guard');
    const a = Object.keys(esm).filter((k) => k !== 'default').sort();
    const b = Object.keys(cjs).filter((k) => k !== '__esModule').sort();
    console.log(JSON.stringify({ a, b, same: esm.Budget === cjs.Budget && esm.default === cjs }));
  `;
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' }));
  expect(out.a).toEqual(out.b);
  expect(out.a.length).toBeGreaterThan(50);
  expect(out.same).toBe(true);
});
