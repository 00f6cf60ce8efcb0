// Hostile paths of DiskSpaceGuard: the watched directory is removed,
// replaced, or has a file system mounted over it; the guard is closed,
// disposed or dropped. Real directories and (as root) real tmpfs mounts.
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DiskSpaceError } from '../src/errors';
import { DiskSpaceGuard, DiskSpaceUnknownError, ResourceGuard } from '../src/guards';
import { codeOf } from './helpers';

const MiB = 1024 * 1024;
const run = promisify(execFile);
const linux = process.platform === 'linux';

const made: string[] = [];
const mounted: string[] = [];
afterEach(() => {
  for (const m of mounted.splice(0)) spawnSync('umount', ['-l', m]);
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-hostile-disk-'));
  made.push(d);
  return d;
}

/** Descriptors of this process that name `dir` (or `dir` after it was removed). */
function fdsOn(dir: string): number {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the descriptor readdir itself used
    }
    if (target === dir || target === `${dir} (deleted)`) n++;
  }
  return n;
}

/** Whether this process may mount a tmpfs (root in a namespace that allows it); the reason when not. */
function mountProbe(): string | null {
  if (!linux) return 'not Linux';
  if (process.getuid?.() !== 0) return 'not running as root';
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-mount-probe-'));
  try {
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', d], { encoding: 'utf8' });
    if (r.status !== 0) return `mount refused: ${(r.stderr || String(r.error)).trim()}`;
    spawnSync('umount', [d]);
    return null;
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
}
const noMount = mountProbe();

function mountTmpfs(dir: string, size = '1m'): void {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount failed: ${r.stderr}`);
  mounted.push(dir);
}

function umount(dir: string): { ok: boolean; stderr: string } {
  const r = spawnSync('umount', [dir], { encoding: 'utf8' });
  if (r.status === 0) mounted.splice(mounted.indexOf(dir), 1);
  return { ok: r.status === 0, stderr: r.stderr };
}

/** A manual monotonic clock. */
function manualClock(start = 1000) {
  const c = { now: start, fn: () => c.now };
  return c;
}

/** Calls ok() until it returns `want`, at most `limit` times; the number of calls, or -1. */
function okUntil(guard: { ok(): boolean }, want: boolean, limit = 100_000): number {
  for (let i = 1; i <= limit; i++) if (guard.ok() === want) return i;
  return -1;
}

describe.runIf(linux)('DiskSpaceGuard: the watched directory goes away or changes', () => {
  it('a removed directory reads as unknown (never the old figures), as a fresh guard says', () => {
    const dir = tempDir();
    const guard = new DiskSpaceGuard({ path: dir, minFree: 1 });
    expect(guard.check().state).not.toBe('unknown');
    fs.rmdirSync(dir);
    const fresh = new DiskSpaceGuard({ path: dir, minFree: 1 }).check();
    expect(fresh.state).toBe('unknown');
    const s = guard.check();
    expect(s.state).toBe('unknown');
    expect(s.available).toBeNull();
    expect(s.total).toBeNull();
    expect((s.reason as { code?: string }).code).toBe('ERR_PATH_NOT_FOUND');
    expect(guard.estimatedAvailable).toBeNull();
    expect(guard.canWrite(0)).toBe(false);
    expect(() => guard.assert()).toThrow(DiskSpaceUnknownError);
    expect(codeOf(() => guard.checkBeforeWrite(1))).toBe('ERR_DISK_SPACE_UNKNOWN');
    expect(guard.estimateOutputSize({ records: 1, bytesPerRecord: 1 }).fits).toBe(false);
    // and it lets go of the removed directory
    expect(fdsOn(dir)).toBe(0);
    guard.close();
  });

  it('a directory replaced by a regular file reads as unknown (not a directory)', () => {
    const dir = tempDir();
    const guard = new DiskSpaceGuard({ path: dir, minFree: 1 });
    expect(guard.check().state).toBe('ok');
    fs.rmdirSync(dir);
    fs.writeFileSync(dir, 'not a directory');
    const s = guard.check();
    expect(s.state).toBe('unknown');
    expect(s.available).toBeNull();
    expect((s.reason as { code?: string }).code).toBe('ERR_NOT_A_DIRECTORY');
    expect(() => guard.assert()).toThrow(DiskSpaceUnknownError);
    expect(fdsOn(dir)).toBe(0);
    guard.close();
    fs.rmSync(dir);
  });

  it('a directory that comes back at the path is read again', () => {
    const dir = tempDir();
    const guard = new DiskSpaceGuard({ path: dir, minFree: 1 });
    guard.check();
    fs.rmdirSync(dir);
    expect(guard.check().state).toBe('unknown');
    fs.mkdirSync(dir);
    expect(guard.check().state).toBe('ok');
    guard.close();
  });

  it('a directory replaced by renaming a fresh one over it: the guard reads, and holds, the new one', () => {
    const parent = tempDir();
    const dir = path.join(parent, 'out');
    const next = path.join(parent, 'next');
    fs.mkdirSync(dir);
    fs.mkdirSync(next);
    const guard = new DiskSpaceGuard({ path: dir, minFree: 1 });
    expect(guard.check().state).toBe('ok');
    const before = fs.statSync(dir).ino;
    fs.renameSync(next, dir); // replaces the empty directory
    expect(fs.statSync(dir).ino).not.toBe(before);
    expect(guard.check().state).toBe('ok');
    // the old (now unlinked) directory is no longer held; the new one is
    let deleted = 0;
    for (const fd of fs.readdirSync('/proc/self/fd')) {
      try {
        if (fs.readlinkSync(`/proc/self/fd/${fd}`) === `${dir} (deleted)`) deleted++;
      } catch {
        /* readdir's own descriptor */
      }
    }
    expect(deleted).toBe(0);
    expect(fdsOn(dir)).toBe(1);
    guard.close();
    expect(fdsOn(dir)).toBe(0);
  });

  it('ok() notices a removed directory within one refresh period and then agrees with assert()', () => {
    const dir = tempDir();
    const clock = manualClock();
    const guard = new DiskSpaceGuard({ path: dir, minFree: 1, refreshMs: 1000, clock: clock.fn });
    expect(guard.ok()).toBe(true);
    expect(() => guard.assert()).not.toThrow();
    fs.rmdirSync(dir);
    // Within the period the hot check answers from the last reading (no syscall per call).
    for (let i = 0; i < 1000; i++) expect(guard.ok()).toBe(true);
    clock.now += 1000;
    expect(okUntil(guard, false, 5000)).toBeGreaterThan(0);
    expect(guard.ok()).toBe(false); // and it stays false: unknown fails closed
    expect(() => guard.assert()).toThrow(DiskSpaceUnknownError);
    guard.close();
  });
});

describe.runIf(linux)('DiskSpaceGuard: a file system mounted over the watched directory', () => {
  it.skipIf(noMount !== null)(`reads the 1 MiB tmpfs that is there now${noMount ? ` (skipped: ${noMount})` : ''}`, () => {
    const dir = tempDir();
    const clock = manualClock();
    const guard = new DiskSpaceGuard({ path: dir, refreshMs: 1000, clock: clock.fn }); // minFree 100 MiB
    const before = guard.check();
    expect(before.total).toBeGreaterThan(64 * MiB);
    expect(guard.ok()).toBe(before.state !== 'critical');
    mountTmpfs(dir, '1m');
    const fresh = new DiskSpaceGuard({ path: dir });
    expect(fresh.canWrite(2 * MiB)).toBe(false);
    expect(fresh.check().state).toBe('critical');
    fresh.close();

    expect(guard.canWrite(2 * MiB)).toBe(false);
    const s = guard.check();
    expect(s.state).toBe('critical');
    expect(s.total).toBeLessThanOrEqual(MiB);
    expect(() => guard.checkBeforeWrite(2 * MiB)).toThrow(DiskSpaceError);
    clock.now += 1000;
    expect(okUntil(guard, false, 5000)).toBeGreaterThan(0);

    // the guard holds the tmpfs now, not the directory under it; closing lets it be unmounted
    guard.close();
    const u = umount(dir);
    expect(u.ok, u.stderr).toBe(true);
  });

  it.skipIf(noMount !== null)(`ok() alone (no full read) follows the mount within one refresh period${noMount ? ` (skipped: ${noMount})` : ''}`, () => {
    const dir = tempDir();
    const clock = manualClock();
    const guard = new DiskSpaceGuard({ path: dir, minFree: 2 * MiB, refreshMs: 500, clock: clock.fn });
    expect(guard.ok()).toBe(true);
    mountTmpfs(dir, '1m');
    clock.now += 500;
    expect(okUntil(guard, false, 5000)).toBeGreaterThan(0);
    expect(guard.check().state).toBe('critical');
    guard.close();
  });
});

describe.runIf(linux)('DiskSpaceGuard: close(), dispose and the finalizer release the directory', () => {
  it('close() releases the descriptor; use after close throws ERR_GUARD_CLOSED; close() is idempotent', () => {
    const dir = tempDir();
    const guard = new DiskSpaceGuard({ path: dir, minFree: 1 });
    guard.check();
    expect(fdsOn(dir)).toBe(1);
    guard.close();
    expect(fdsOn(dir)).toBe(0);
    expect(guard.closed).toBe(true);
    guard.close();
    for (const use of [
      () => guard.check(),
      () => guard.assert(),
      () => guard.ok(),
      () => guard.canWrite(1),
      () => guard.checkBeforeWrite(1),
      () => guard.recordWrite(1),
      () => guard.estimateOutputSize({ records: 1, bytesPerRecord: 1 }),
    ]) {
      expect(codeOf(use)).toBe('ERR_GUARD_CLOSED');
    }
    expect(fdsOn(dir)).toBe(0);
    // what needs no file system still answers
    expect(guard.limits.minFree).toBe(1);
    expect(guard.stats().checks).toBe(1);
  });

  it('Symbol.dispose closes (a `using` declaration)', () => {
    const dir = tempDir();
    {
      const guard = new DiskSpaceGuard({ path: dir, minFree: 1 });
      guard.check();
      expect(fdsOn(dir)).toBe(1);
      guard[Symbol.dispose]();
      expect(guard.closed).toBe(true);
    }
    expect(fdsOn(dir)).toBe(0);
  });

  it('ResourceGuard#close() closes the disk guard it made, and leaves one it was given open', () => {
    const a = tempDir();
    const b = tempDir();
    const own = new ResourceGuard({ memory: false, degradation: false, disk: { path: a, minFree: 1 } });
    const given = new DiskSpaceGuard({ path: b, minFree: 1 });
    const borrowing = new ResourceGuard({ memory: false, degradation: false, disk: given });
    own.checkAll();
    borrowing.checkAll();
    expect(fdsOn(a)).toBe(1);
    expect(fdsOn(b)).toBe(1);
    own.close();
    borrowing.close();
    expect(fdsOn(a)).toBe(0);
    expect(fdsOn(b)).toBe(1);
    expect(given.closed).toBe(false);
    given.close();
    expect(fdsOn(b)).toBe(0);
  });

  it('a builder step that replaces the disk guard closes the one it made before', () => {
    const a = tempDir();
    const b = tempDir();
    const guard = new ResourceGuard({ memory: false, degradation: false }).withOutputPath(a, { minFree: 1 });
    guard.checkAll();
    expect(fdsOn(a)).toBe(1);
    guard.withOutputPath(b);
    guard.checkAll();
    expect(fdsOn(a)).toBe(0);
    expect(fdsOn(b)).toBe(1);
    guard.withDisk(false);
    expect(fdsOn(b)).toBe(0);
    guard.close();
  });

  it.skipIf(noMount !== null)(`after close a tmpfs under the guard unmounts (busy before)${noMount ? ` (skipped: ${noMount})` : ''}`, () => {
    const dir = tempDir();
    mountTmpfs(dir, '1m');
    const guard = new ResourceGuard({ memory: false, degradation: false, disk: { path: dir, minFree: 1 } });
    guard.checkAll();
    const busy = umount(dir);
    expect(busy.ok).toBe(false);
    expect(busy.stderr).toMatch(/busy/i);
    guard.close();
    const u = umount(dir);
    expect(u.ok, u.stderr).toBe(true);
  });
});

describe.runIf(linux)('DiskSpaceGuard: a worker that ends without close() gives its descriptor back', () => {
  it('the environment cleanup closes the directories of guards still open when the worker exits', async () => {
    const dir = tempDir();
    const { Worker } = await import('node:worker_threads');
    const code = `
      const { parentPort } = require('node:worker_threads');
      const { DiskSpaceGuard } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'guards', 'index.js'))});
      const keep = [];
      for (let i = 0; i < 20; i++) { const g = new DiskSpaceGuard({ path: ${JSON.stringify(dir)}, minFree: 1 }); g.check(); keep.push(g); }
      parentPort.postMessage('read');
      setInterval(() => {}, 1000); // stays alive until terminated`;
    const worker = new Worker(code, { eval: true });
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    expect(fdsOn(dir)).toBe(20);
    await worker.terminate();
    expect(fdsOn(dir)).toBe(0);
  });
});

describe.runIf(linux)('DiskSpaceGuard: the finalizer (node --expose-gc, against dist/)', () => {
  beforeAll(() => {
    const src = path.join(__dirname, '..', 'src', 'guards', 'disk.ts');
    const out = path.join(__dirname, '..', 'dist', 'guards', 'disk.js');
    if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(src).mtimeMs) {
      throw new Error('dist/guards/disk.js is missing or older than src/guards/disk.ts: run `npm run build:ts` first');
    }
  });

  it('guards dropped without close() give their descriptors back when collected', async () => {
    const dir = tempDir();
    const script = `
      const fs = require('node:fs');
      const { DiskSpaceGuard } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'guards', 'index.js'))});
      const dir = ${JSON.stringify(dir)};
      const count = () => fs.readdirSync('/proc/self/fd').filter((fd) => {
        try { return fs.readlinkSync('/proc/self/fd/' + fd) === dir; } catch { return false; }
      }).length;
      (async () => {
        (() => { for (let i = 0; i < 200; i++) new DiskSpaceGuard({ path: dir, minFree: 1 }).check(); })();
        const held = count();
        let after = held;
        for (let i = 0; i < 200 && after > 0; i++) {
          global.gc();
          await new Promise((r) => setTimeout(r, 5));
          after = count();
        }
        console.log(JSON.stringify({ held, after }));
      })();`;
    const { stdout } = await run(process.execPath, ['--expose-gc', '-e', script], { timeout: 60_000 });
    const out = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(out.held).toBe(200);
    expect(out.after).toBe(0);
  });
});

describe('DiskSpaceGuard: unknown free space, one rule (fail closed) for every check', () => {
  it('with a source that throws, every check says unknown and ok() agrees with assert()', () => {
    const clock = manualClock();
    let fail = false;
    const guard = new DiskSpaceGuard({
      path: '/data',
      minFree: 10,
      refreshMs: 100,
      clock: clock.fn,
      source: {
        read: () => {
          if (fail) throw new Error('statvfs failed');
          return { available: 1000, total: 2000 };
        },
      },
    });
    expect(guard.ok()).toBe(true);
    expect(guard.check().state).toBe('ok');
    fail = true;
    expect(guard.check().state).toBe('unknown');
    expect(guard.check().available).toBeNull();
    expect(() => guard.assert()).toThrow(DiskSpaceUnknownError);
    expect(guard.ok()).toBe(false);
    expect(guard.canWrite(0)).toBe(false);
    fail = false;
    clock.now += 100;
    expect(okUntil(guard, true, 5000)).toBeGreaterThan(0);
    expect(() => guard.assert()).not.toThrow();
    guard.close();
  });

  it('ok() reads nothing between refreshes, and re-reads when recorded writes would cross the minimum', () => {
    const clock = manualClock();
    let reads = 0;
    let available = 1000;
    const guard = new DiskSpaceGuard({
      path: '/data',
      minFree: 500,
      refreshMs: 1000,
      clock: clock.fn,
      source: { read: () => (reads++, { available }) },
    });
    expect(guard.ok()).toBe(true);
    const r0 = reads;
    for (let i = 0; i < 10_000; i++) guard.ok();
    expect(reads).toBe(r0);
    available = 400; // someone else filled the disk
    guard.recordWrite(600); // this process wrote 600 bytes: 1000 - 600 < 500 by the estimate
    expect(guard.ok()).toBe(false);
    expect(reads).toBe(r0 + 1); // it confirmed with one fresh read
    for (let i = 0; i < 1000; i++) expect(guard.ok()).toBe(false);
    expect(reads).toBe(r0 + 1); // and does not read again until the period ends
    guard.close();
  });

  it('an injected clock that goes back makes ok() read again rather than trust the old reading forever', () => {
    const clock = manualClock(10_000);
    let reads = 0;
    const guard = new DiskSpaceGuard({
      path: '/data',
      minFree: 1,
      refreshMs: 1000,
      clock: clock.fn,
      source: { read: () => (reads++, { available: 10 }) },
    });
    expect(guard.ok()).toBe(true);
    const r0 = reads;
    clock.now -= 5000;
    for (let i = 0; i < 5000 && reads === r0; i++) guard.ok();
    expect(reads).toBe(r0 + 1);
    guard.close();
  });

  it('bad refreshMs / clock options are typed errors', () => {
    expect(codeOf(() => new DiskSpaceGuard({ refreshMs: -1 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new DiskSpaceGuard({ refreshMs: NaN }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new DiskSpaceGuard({ clock: 5 as never }))).toBe('ERR_INVALID_ARG_TYPE');
  });
});
