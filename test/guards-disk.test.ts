import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskSpaceError, PathError } from '../src/errors';
import { DiskSpaceGuard, DiskSpaceUnknownError, estimateOutputSize, type DiskSpaceStatus } from '../src/guards';

function fake(available: number, total = 1e12) {
  const state: { available: number; total: number; reads: number; fail: Error | null } = { available, total, reads: 0, fail: null };
  return {
    state,
    source: {
      read: (p: string) => {
        state.reads++;
        expect(path.isAbsolute(p)).toBe(true);
        if (state.fail) throw state.fail;
        return { available: state.available, total: state.total };
      },
    },
  };
}

function record(guard: DiskSpaceGuard) {
  const events: Array<[string, DiskSpaceStatus]> = [];
  for (const name of ['soft', 'hard', 'unknown'] as const) guard.on(name, (s) => events.push([name, s]));
  return events;
}

describe('DiskSpaceGuard: boundaries', () => {
  it('checkBeforeWrite passes at exactly minimum + reserve + bytes and fails one byte short', () => {
    const f = fake(0);
    const guard = new DiskSpaceGuard({ path: '/data', minFree: 1000, softFree: 5000, reserve: 100, source: f.source });
    f.state.available = 1000 + 100 + 1;
    expect(guard.checkBeforeWrite(1)).toBe(1101); // a one-byte write is not rounded away
    expect(guard.canWrite(1)).toBe(true);
    f.state.available = 1100;
    expect(guard.canWrite(1)).toBe(false);
    let err: unknown;
    try {
      guard.checkBeforeWrite(1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DiskSpaceError);
    expect(err).toMatchObject({ code: 'ERR_DISK_SPACE', path: path.resolve('/data'), available: 1100, required: 1101 });
  });

  it('sub-megabyte writes count against large figures too', () => {
    const MiB = 1024 * 1024;
    const f = fake(100 * MiB + 10 * MiB + 4096);
    const guard = new DiskSpaceGuard({ path: '/data', minFree: '100MiB', reserve: '10MiB', source: f.source });
    expect(() => guard.checkBeforeWrite(4096)).not.toThrow();
    expect(() => guard.checkBeforeWrite(4097)).toThrow(DiskSpaceError);
    expect(() => guard.checkBeforeWrite('4KiB')).not.toThrow();
    expect(() => guard.checkBeforeWrite('4.097kB')).toThrow(DiskSpaceError);
  });

  it('assert passes exactly at the minimum and throws one byte below', () => {
    const f = fake(1000);
    const guard = new DiskSpaceGuard({ path: '/data', minFree: 1000, softFree: 5000, source: f.source });
    expect(guard.assert()).toMatchObject({ state: 'low', available: 1000, belowMinimum: false });
    f.state.available = 999;
    expect(guard.check()).toMatchObject({ state: 'critical', belowMinimum: true });
    expect(() => guard.assert()).toThrow(DiskSpaceError);
  });

  it('soft level: exactly at softFree is fine, one byte below warns once', () => {
    const f = fake(5000);
    const guard = new DiskSpaceGuard({ path: '/data', minFree: 1000, softFree: 5000, source: f.source });
    const events = record(guard);
    expect(guard.check()).toMatchObject({ state: 'ok', belowSoft: false });
    f.state.available = 4999;
    expect(guard.check()).toMatchObject({ state: 'low', belowSoft: true });
    guard.check();
    f.state.available = 999;
    guard.check();
    guard.check();
    f.state.available = 4000;
    guard.check();
    f.state.available = 6000;
    guard.check();
    f.state.available = 4999;
    guard.check();
    expect(events.map((e) => [e[0], e[1].available])).toEqual([
      ['soft', 4999],
      ['hard', 999],
      ['soft', 4999],
    ]);
    expect(guard.stats()).toMatchObject({ checks: 8, softWarnings: 2, hardBreaches: 1, lowestAvailable: 999 });
  });

  it('defaults: 100 MiB minimum, soft at 5 × minimum, no reserve, check every 100 writes', () => {
    const guard = new DiskSpaceGuard({ source: fake(0).source });
    expect(guard.limits).toEqual({ minFree: 100 * 1024 * 1024, softFree: 500 * 1024 * 1024, reserve: 0, checkInterval: 100 });
    expect(guard.path).toBe(process.cwd());
  });

  it('keeps the path it was given, resolved once', () => {
    const guard = new DiskSpaceGuard({ path: 'out/dir', source: fake(0).source });
    expect(guard.path).toBe(path.resolve('out/dir'));
  });
});

describe('DiskSpaceGuard: unknown free space', () => {
  it('is reported as unknown, never as zero or unlimited, and checks fail closed', () => {
    const f = fake(1e9);
    f.state.fail = new Error('EIO');
    const guard = new DiskSpaceGuard({ path: '/data', minFree: 1000, source: f.source });
    const events = record(guard);
    const s = guard.check();
    expect(s).toMatchObject({ state: 'unknown', available: null, total: null, belowSoft: null, belowMinimum: null });
    expect(s.reason).toBe(f.state.fail);
    expect(guard.canWrite(0)).toBe(false);
    expect(() => guard.checkBeforeWrite(0)).toThrow(DiskSpaceUnknownError);
    expect(() => guard.assert()).toThrow(DiskSpaceUnknownError);
    try {
      guard.assert();
    } catch (e) {
      expect(e).toMatchObject({ code: 'ERR_DISK_SPACE_UNKNOWN', path: path.resolve('/data') });
    }
    expect(guard.estimatedAvailable).toBeNull();
    expect(guard.estimateOutputSize({ records: 1, bytesPerRecord: 1 })).toMatchObject({ available: null, fits: false });
    expect(events.map((e) => e[0])).toEqual(['unknown']);
    f.state.fail = null;
    expect(guard.check()).toMatchObject({ state: 'ok', available: 1e9 });
  });

  it('a source returning no usable figure is unknown', () => {
    const guard = new DiskSpaceGuard({ path: '/data', source: { read: () => ({ available: NaN }) } });
    expect(guard.check()).toMatchObject({ state: 'unknown', available: null });
    const guard2 = new DiskSpaceGuard({ path: '/data', source: { read: () => ({ available: -5 }) } });
    expect(guard2.check().available).toBeNull();
  });

  it('a missing directory or a file is unknown with the reason', () => {
    const missing = new DiskSpaceGuard({ path: path.join(os.tmpdir(), 'resource-guard-no-such-dir', 'x') });
    const s = missing.check();
    expect(s.state).toBe('unknown');
    expect(s.reason).toBeInstanceOf(PathError);
    expect(s.reason).toMatchObject({ code: 'ERR_PATH_NOT_FOUND' });
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rg-disk-')), 'f');
    fs.writeFileSync(file, 'x');
    const notDir = new DiskSpaceGuard({ path: file });
    expect(notDir.check().reason).toMatchObject({ code: 'ERR_NOT_A_DIRECTORY' });
    expect(() => notDir.checkBeforeWrite(1)).toThrow(DiskSpaceUnknownError);
  });
});

describe('DiskSpaceGuard: operations', () => {
  it('recordWrite re-reads every checkInterval operations and asserts then', () => {
    const f = fake(10_000);
    const guard = new DiskSpaceGuard({ path: '/data', minFree: 1000, softFree: 2000, checkInterval: 3, source: f.source });
    guard.recordWrite(100);
    guard.recordWrite(100);
    expect(f.state.reads).toBe(0);
    guard.recordWrite(100);
    expect(f.state.reads).toBe(1);
    f.state.available = 999;
    guard.recordWrite(1);
    guard.recordWrite(1);
    expect(() => guard.recordWrite(1)).toThrow(DiskSpaceError);
    expect(f.state.reads).toBe(2);
    expect(guard.stats()).toMatchObject({ operations: 6, bytesWritten: 303 });
  });

  it('estimatedAvailable subtracts bytes recorded since the last reading', () => {
    const f = fake(10_000);
    const guard = new DiskSpaceGuard({ path: '/data', minFree: 0, softFree: 0, checkInterval: 1000, source: f.source });
    expect(guard.estimatedAvailable).toBeNull();
    guard.check();
    guard.recordWrite(2500);
    guard.recordWrite('1kB');
    expect(guard.estimatedAvailable).toBe(6500);
    guard.check();
    expect(guard.estimatedAvailable).toBe(10_000);
  });

  it('estimateOutputSize plans against minimum + reserve', () => {
    const f = fake(1_000_000);
    const guard = new DiskSpaceGuard({ path: '/data', minFree: 100_000, softFree: 100_000, reserve: 50_000, source: f.source });
    expect(guard.estimateOutputSize({ records: 1000, bytesPerRecord: 850 })).toEqual({
      bytes: 850_000,
      available: 1_000_000,
      required: 1_000_000,
      fits: true,
    });
    expect(guard.estimateOutputSize({ records: 1000, bytesPerRecord: 850, fixedBytes: 1 }).fits).toBe(false);
  });

  it('estimateOutputSize: records × bytes × outputs / compression + fixed, rounded up', () => {
    expect(estimateOutputSize({ records: 100_000, bytesPerRecord: 512 })).toBe(51_200_000);
    expect(estimateOutputSize({ records: 100_000, bytesPerRecord: '512B', outputs: 2, compressionRatio: 4 })).toBe(25_600_000);
    expect(estimateOutputSize({ records: 3, bytesPerRecord: 1, compressionRatio: 2, fixedBytes: '1KiB' })).toBe(1026);
  });

  it('reads the real file system: agrees with fs.statfsSync', () => {
    const dir = os.tmpdir();
    const guard = new DiskSpaceGuard({ path: dir, minFree: 0, softFree: 0 });
    const s = guard.check();
    const st = fs.statfsSync(dir);
    expect(s.state).toBe('ok');
    expect(s.total).toBe(st.blocks * st.bsize);
    expect(Math.abs(s.available! - st.bavail * st.bsize)).toBeLessThan(256 * 1024 * 1024);
    expect(guard.checkBeforeWrite(1)).toBeGreaterThan(0);
  });
});
