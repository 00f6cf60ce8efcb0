// The documentation's examples and the programs in examples/ run as CI runs
// them: every fenced js/mjs/cjs block of README.md and docs/*.md executes and
// every ts block type-checks (scripts/doctest.js), and every program in
// examples/ exits 0 (scripts/run-examples.js). Each spawns many processes, so
// their time limit is the runners' own (bounded per block), not vitest's default.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';

const root = path.join(__dirname, '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { extract, isEsm } = require('../scripts/doctest.js') as {
  extract(file: string): { file: string; line: number; lang: string; code: string }[];
  isEsm(block: { lang: string; code: string }): boolean;
};

function node(script: string) {
  return spawnSync(process.execPath, [path.join(root, 'scripts', script)], { cwd: root, encoding: 'utf8', timeout: 600_000 });
}

describe('doc tests', () => {
  test('the extractor finds fenced blocks, their language and line, and tells ES modules from CommonJS', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-doctest-unit-'));
    try {
      const md = path.join(dir, 'x.md');
      fs.writeFileSync(md, ['# t', '', '```js', "const a = require('x');", '```', '', '- item', '', '  ```mjs', "  import b from 'y';", '  ```', '', '```text', 'not code', '```', ''].join('\n'));
      const blocks = extract(md);
      expect(blocks.map((b) => [b.lang, b.line])).toEqual([
        ['js', 3],
        ['mjs', 9],
        ['text', 13],
      ]);
      expect(blocks[1]!.code).toBe("import b from 'y';\n");
      expect(isEsm(blocks[0]!)).toBe(false);
      expect(isEsm(blocks[1]!)).toBe(true);
      expect(isEsm({ lang: 'js', code: "import { x } from 'resource-guard';\n" })).toBe(true);
      fs.writeFileSync(md, '```js\nunclosed\n');
      expect(() => extract(md)).toThrow(/never closed/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('every fenced js/ts block of README.md and docs/*.md runs or type-checks', () => {
    const r = node('doctest.js');
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const m = /doctest: (\d+) of (\d+) blocks passed/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1])).toBe(Number(m![2]));
    expect(Number(m![2])).toBeGreaterThan(40);
  }, 660_000);

  test('every program in examples/ exits 0', () => {
    const r = node('run-examples.js');
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const m = /examples: (\d+) of (\d+) passed/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1])).toBe(Number(m![2]));
    expect(Number(m![2])).toBeGreaterThanOrEqual(4);
  }, 660_000);
});
