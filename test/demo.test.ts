// The demo (`npm start`) run non-interactively, as a newcomer or CI would:
// its summary is right and every output file is whole.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';

const script = path.join(__dirname, '..', 'demo', 'generate.js');
const dirs: string[] = [];

function run(args: string[]) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-demo-test-'));
  dirs.push(out);
  const r = spawnSync(process.execPath, [script, '--out', out, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { ...r, out };
}

function checkFilesWhole(files: string[], expectedRecords: number) {
  let lines = 0;
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    if (text.length === 0) continue;
    expect(text.endsWith('\n'), `${file} ends mid-line`).toBe(true);
    for (const line of text.slice(0, -1).split('\n')) {
      const rec = JSON.parse(line);
      expect(typeof rec.id).toBe('string');
      lines++;
    }
  }
  expect(lines).toBe(expectedRecords);
}

afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('demo', () => {
  test('runs to completion with default limits and writes whole files', () => {
    const r = run(['--records', '60000', '--workers', '2', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(s.completed).toBe(true);
    expect(s.stoppedAt).toBeNull();
    expect(s.recordsWritten).toBe(60000);
    expect(s.files).toHaveLength(2);
    expect(s.outDir).toBe(r.out);
    expect(s.budgetUsedAtEnd).toBe(0);
    expect(s.peakRss).toBeGreaterThanOrEqual(s.startRss);
    checkFilesWhole(s.files, 60000);
  });

  test('with the memory limit just above the starting RSS it degrades and stops gracefully', () => {
    const probe = run(['--records', '2', '--workers', '2', '--json']);
    expect(probe.status, probe.stderr).toBe(0);
    const startRss = JSON.parse(probe.stdout.trim().split('\n').pop()!).startRss as number;
    const limit = startRss + 24 * 1024 * 1024;
    const r = run(['--records', '2000000', '--workers', '2', '--memory-limit', `${limit}B`]);
    // Exit status 2: stopped at emergency.
    expect(r.status, r.stderr).toBe(2);
    expect(r.stdout).toMatch(/Stopped gracefully at emergency/);
    expect(r.stdout).toMatch(/level changes: [1-9]/);
    expect(r.stdout).toMatch(/level (reduced|minimal|emergency)/);
    const files = fs.readdirSync(r.out).map((f) => path.join(r.out, f));
    const written = Number(/records written: ([\d,]+)/.exec(r.stdout)![1]!.replace(/,/g, ''));
    expect(written).toBeLessThan(2000000);
    checkFilesWhole(files, written);
  });

  test('prints plain periodic lines when stdout is not a terminal, and help', () => {
    const r = run(['--records', '20000']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\[[#.]+\]\s+\d+%.*level normal/m);
    expect(r.stdout).not.toContain('\r');
    // Not a terminal: lines are cut to 80 columns (less three), never wrapped.
    for (const line of r.stdout.split('\n').filter((l) => l.startsWith('['))) {
      expect(line.length, line).toBeLessThanOrEqual(77);
    }
    expect(r.stdout).toMatch(/Done: every record was written/);
    const help = spawnSync(process.execPath, [script, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--memory-limit SIZE/);
  });

  test('without --out the output directory is removed at exit', () => {
    const r = spawnSync(process.execPath, [script, '--records', '5000', '--json'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(s.completed).toBe(true);
    expect(s.outputKept).toBe(false);
    expect(s.outDir.startsWith(os.tmpdir())).toBe(true);
    expect(fs.existsSync(s.outDir)).toBe(false);
  });

  test('Ctrl-C stops the threads and removes the output directory', async () => {
    const child = spawn(process.execPath, [script, '--records', '50000000', '--workers', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // Wait (bounded) until the demo has started writing, then interrupt it.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo did not start: ${stdout} ${stderr}`)), 60_000);
      child.stdout.on('data', (d) => {
        stdout += d;
        if (/output in (\S+)/.test(stdout)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const outDir = /output in (\S+)/.exec(stdout)![1]!;
    expect(fs.existsSync(outDir)).toBe(true);
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(130);
    expect(stdout).toMatch(/Interrupted/);
    expect(fs.existsSync(outDir)).toBe(false);
  });

  test('a size without a unit is refused with a suggestion', () => {
    const r = spawnSync(process.execPath, [script, '--memory-limit', '512'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--memory-limit 512 has no unit: did you mean --memory-limit 512MiB/);
    const r2 = spawnSync(process.execPath, [script, '--min-free', '1e9'], { encoding: 'utf8' });
    expect(r2.status).toBe(1);
    expect(r2.stderr).toMatch(/--min-free 1e9 has no unit/);
  });

  test('a bad flag is a clear error with exit status 1', () => {
    const r = run(['--memory-limit', '12 parsecs']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--memory-limit/);
    const r2 = run(['--nope']);
    expect(r2.status).toBe(1);
    expect(r2.stderr).toMatch(/unknown flag --nope/);
  });
});
