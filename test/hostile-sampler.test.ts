// The sampler at the edges: a figure the kernel will not give is unknown
// (NaN), never 0, and guards fail closed on it in their hot check as in
// check()/assert(); one component's stopSampler() does not blind the guards
// of another.
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MemoryGuard, SnapshotField, ensureSampler, readRss, readSnapshot, samplerStarted, snapshotView, stopSampler } from '../src/index';
import { codeOf } from './helpers';
import { binding } from '../src/binding';

const root = path.join(__dirname, '..');

/** Whether this process may make a private mount namespace (root on Linux). */
function canUnshare(): boolean {
  if (process.platform !== 'linux') return false;
  const r = spawnSync('unshare', ['-m', 'true']);
  return r.status === 0;
}

// Runs `script` with /proc replaced by an empty tmpfs in a private mount
// namespace: every /proc read fails, as in a hardened container.
function withoutProc(script: string): Record<string, unknown> {
  const out = execFileSync(
    'unshare',
    ['-m', 'sh', '-c', `mount -t tmpfs none /proc && exec "${process.execPath}" -e "$0"`, script],
    { cwd: root, encoding: 'utf8', timeout: 60_000 },
  );
  return JSON.parse(out.trim().split('\n').pop()!);
}

const UNSHARE = canUnshare();

describe.runIf(UNSHARE)('with /proc unreadable', () => {
  test('the snapshot says unknown (NaN), never 0, for RSS and process CPU', () => {
    const r = withoutProc(`
      const rg = require('./dist/index.js');
      const s = rg.readSnapshot();
      const fresh = (() => { try { return rg.readRss(); } catch (e) { return e.code; } })();
      console.log(JSON.stringify({ rss: String(s.rss), peakRss: String(s.peakRss), sysBusyUs: String(s.sysBusyUs),
        sysLoad: String(s.sysLoad), errors: s.errors, fresh }));
    `);
    expect(r).toMatchObject({ rss: 'NaN', peakRss: 'NaN', sysBusyUs: 'NaN', sysLoad: 'NaN', fresh: 'ERR_SAMPLER' });
    expect(r.errors).toBeGreaterThan(0);
  });

  test('MemoryGuard and ResourceGuard fail closed: ok() is false, check() reports the breach, assert() throws', () => {
    const r = withoutProc(`
      const rg = require('./dist/index.js');
      const g = new rg.MemoryGuard({ hardLimit: '1GiB', heap: false });
      const ok = g.ok();
      const status = g.check();
      let code = null, message = '';
      try { g.assert(); } catch (e) { code = e.code; message = e.message; }
      const r = new rg.ResourceGuard({ memory: { hardLimit: '1GiB', heap: false } });
      console.log(JSON.stringify({ ok, current: String(status.current), exceedsHard: status.exceedsHard,
        breach: status.breach, code, message, resourceOk: r.ok() }));
      r.close();
    `);
    expect(r).toMatchObject({ ok: false, current: 'NaN', exceedsHard: true, breach: 'rss', code: 'ERR_MEMORY_LIMIT', resourceOk: false });
    expect(r.message).toMatch(/could not be read/);
  });
});

describe('sampler ownership', () => {
  afterEach(() => {
    ensureSampler();
  });

  test("another component's stopSampler() does not stop the sampler a guard relies on", async () => {
    const rss = readRss();
    const guard = new MemoryGuard({ hardLimit: rss + 96 * 2 ** 20, heap: false });
    expect(guard.ok()).toBe(true);
    ensureSampler();
    stopSampler(); // e.g. a library that started it for itself and is done
    expect(samplerStarted()).toBe(false);
    expect(binding.samplerUsers()).toBeGreaterThan(0);
    expect(readSnapshot().running).toBe(true);
    const seq = readSnapshot().seq;
    // Grow RSS well past the limit: the hot check must see it.
    const big = Buffer.alloc(192 * 2 ** 20, 1);
    expect(guard.check().exceedsHard).toBe(true);
    let ok = true;
    for (let i = 0; i < 10_000 && ok; i++) {
      ok = guard.ok();
      if (ok) await new Promise((r) => setTimeout(r, 1));
    }
    expect(ok).toBe(false);
    expect(readSnapshot().seq).toBeGreaterThan(seq);
    expect(big.length).toBeGreaterThan(0);
    guard.close();
  });

  test('a closed guard gives its hold on the sampler back; the last hold stops the thread', () => {
    stopSampler();
    const before = binding.samplerUsers();
    const g1 = new MemoryGuard({ hardLimit: '64GiB', heap: false });
    const g2 = new MemoryGuard({ hardLimit: '64GiB', heap: false });
    expect(binding.samplerUsers()).toBe(before + 2);
    expect(snapshotView[SnapshotField.running]).toBe(1);
    g1.close();
    g1.close(); // idempotent
    expect(g1.ok()).toBe(false); // a closed guard fails closed
    expect(codeOf(() => g1.check())).toBe('ERR_GUARD_CLOSED');
    expect(binding.samplerUsers()).toBe(before + 1);
    expect(g2.ok()).toBe(true);
    g2.close();
    expect(binding.samplerUsers()).toBe(before);
    if (before === 0) {
      // The thread stopped and said so: RSS unknown, not its last value.
      expect(snapshotView[SnapshotField.running]).toBe(0);
      expect(snapshotView[SnapshotField.rss]).toBeNaN();
    }
  });
});
