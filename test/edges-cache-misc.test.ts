// Edges of the cache, the bulkhead score, CPU load, the memory budget,
// profiles, checkpoints, runWithLimits' budget and error messages.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { codeOf } from './helpers';
import { LimitedAllocator } from '../src/allocator';
import { Budget } from '../src/budget';
import { BudgetedCache, type DisposeReason } from '../src/cache';
import { Bulkhead, bulkheadHealthScore } from '../src/bulkhead';
import { cpuLoadBetween } from '../src/sampler';
import { MemoryBudget } from '../src/guards/memory-budget';
import { checkpoint, configureCheckpoints } from '../src/guards/checkpoint';
import { defineProfile } from '../src/limits/profiles';
import { runWithLimits } from '../src/limits/run';
import { DiskSpaceError, MemoryLimitError, formatBytes, formatBytePair } from '../src/errors';

const closers: { close(): void }[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c.close();
});

describe('a rejected BudgetedCache construction takes nothing', () => {
  it('2,000 rejected constructions leave Budget.count() unchanged and Budget.open working', () => {
    const before = Budget.count();
    const bad: unknown[] = [
      { maxBytes: 100, maxEntries: 0 },
      { maxBytes: 100, ttlMs: -1 },
      { maxBytes: 100, sizeOf: 5 },
      { maxBytes: 100, dispose: 'x' },
      { maxBytes: 100, now: {} },
      { maxBytes: 100, levelFractions: { reduced: 2 } },
      { maxBytes: 100, levelFractions: 7 },
      { maxBytes: 100, allocator: {} },
    ];
    for (let i = 0; i < 2000; i++) {
      const options = bad[i % bad.length];
      expect(codeOf(() => new BudgetedCache(options as never))).toMatch(/^ERR_/);
    }
    expect(Budget.count()).toBe(before);
    const b = Budget.open(`edges-after-rejected-${process.pid}`, 10);
    b.close();
    expect(Budget.count()).toBe(before);
  });
});

describe('a dispose callback that changes the cache', () => {
  it('re-inserting the evicted entry from dispose is refused with ERR_CACHE_REENTRANT, and set() returns', () => {
    const errors: unknown[] = [];
    let cache!: BudgetedCache<string, Buffer>;
    cache = new BudgetedCache<string, Buffer>({
      maxBytes: 100,
      maxEntries: 1,
      dispose: (v, k) => {
        try {
          cache.set(k, v);
        } catch (err) {
          errors.push(err);
        }
      },
    });
    closers.push(cache);
    cache.set('a', Buffer.alloc(10));
    expect(cache.set('b', Buffer.alloc(10))).toBe(true);
    expect([...cache.keys()]).toEqual(['b']);
    expect(errors).toHaveLength(1);
    expect((errors[0] as { code: string }).code).toBe('ERR_CACHE_REENTRANT');
    expect(cache.stats()).toMatchObject({ entries: 1, bytes: 10, allocatorBytes: 10 });
  });

  it('every changing call is refused from dispose; reads are allowed', () => {
    const codes: Record<string, string | undefined> = {};
    let reads: unknown[] = [];
    let cache!: BudgetedCache<string, Buffer>;
    cache = new BudgetedCache<string, Buffer>({
      maxBytes: 100,
      dispose: () => {
        codes.set = codeOf(() => cache.set('x', Buffer.alloc(1)));
        codes.delete = codeOf(() => cache.delete('b'));
        codes.clear = codeOf(() => cache.clear());
        codes.purgeStale = codeOf(() => cache.purgeStale());
        codes.shrinkTo = codeOf(() => cache.shrinkTo(0));
        codes.evictOnLevel = codeOf(() => cache.evictOnLevel('emergency'));
        codes.getOrCreateSync = codeOf(() => cache.getOrCreateSync('y', () => Buffer.alloc(1)));
        codes.close = codeOf(() => cache.close());
        reads = [cache.get('b') !== undefined, cache.peek('b') !== undefined, cache.has('b'), cache.size];
      },
    });
    closers.push(cache);
    cache.set('a', Buffer.alloc(1));
    cache.set('b', Buffer.alloc(1));
    cache.delete('a');
    for (const k of Object.keys(codes)) expect([k, codes[k]]).toEqual([k, 'ERR_CACHE_REENTRANT']);
    expect(Object.keys(codes)).toHaveLength(8);
    expect(reads).toEqual([true, true, true, 1]);
    expect([...cache.keys()]).toEqual(['b']);
  });

  it('a dispose run by a lease release may change the cache (no operation is in progress)', () => {
    let cache!: BudgetedCache<string, Buffer>;
    cache = new BudgetedCache<string, Buffer>({
      maxBytes: 100,
      dispose: (v, k, reason) => {
        if (reason === 'delete') cache.set(`${k}2`, v);
      },
    });
    closers.push(cache);
    cache.set('a', Buffer.alloc(5));
    const lease = cache.acquire('a')!;
    cache.delete('a');
    lease.release();
    expect([...cache.keys()]).toEqual(['a2']);
  });
});

describe('a held entry does not block the cache', () => {
  function setup(maxEntries: number, limit = 100) {
    const disposed: [string, DisposeReason][] = [];
    const allocator = new LimitedAllocator(limit);
    closers.push(allocator);
    const cache = new BudgetedCache<string, Buffer>({
      allocator,
      maxEntries,
      dispose: (_v, k, reason) => disposed.push([k, reason]),
    });
    closers.push(cache);
    return { cache, allocator, disposed };
  }

  it('capacity 1, lease on m1: getting m2 caches m2 and evicts m1 from the cache; m1 is disposed on the last release', () => {
    const { cache, allocator, disposed } = setup(1);
    cache.set('m1', Buffer.alloc(10));
    const lease = cache.acquire('m1')!;
    const lease2 = cache.acquire('m1')!;
    const m2 = cache.getOrCreateSync('m2', () => Buffer.alloc(20));
    expect(m2.length).toBe(20);
    expect(cache.has('m2')).toBe(true);
    expect(cache.get('m2')).toBe(m2);
    // m1 is gone from the cache...
    expect(cache.has('m1')).toBe(false);
    expect(cache.peek('m1')).toBeUndefined();
    expect([...cache.keys()]).toEqual(['m2']);
    expect(cache.size).toBe(1);
    expect(cache.stats()).toMatchObject({ entries: 1, retained: 1, evictions: 1 });
    // ...but not disposed, and still charged
    expect(disposed).toEqual([]);
    expect(allocator.allocatedBytes).toBe(30);
    lease.release();
    expect(disposed).toEqual([]);
    expect(allocator.allocatedBytes).toBe(30);
    lease2.release();
    expect(disposed).toEqual([['m1', 'evict']]);
    expect(allocator.allocatedBytes).toBe(20);
    expect(cache.stats()).toMatchObject({ entries: 1, retained: 0, bytes: 20 });
  });

  it('a held entry is evicted to make room in the budget; what it still holds is not given to the new one', () => {
    // budget 30: m1 (20) is held, m2 (10) fits beside it; m3 (20) needs m1's bytes, which stay charged.
    const { cache, allocator, disposed } = setup(Infinity, 30);
    cache.set('m1', Buffer.alloc(20));
    const lease = cache.acquire('m1')!;
    expect(cache.set('m2', Buffer.alloc(10))).toBe(true);
    expect(allocator.allocatedBytes).toBe(30);
    expect(cache.set('m3', Buffer.alloc(20))).toBe(false);
    // m1 and m2 were evicted trying; m1 stays charged until released
    expect(cache.size).toBe(0);
    expect(allocator.allocatedBytes).toBe(20);
    expect(disposed).toEqual([['m2', 'evict']]);
    lease.release();
    expect(disposed).toEqual([['m2', 'evict'], ['m1', 'evict']]);
    expect(allocator.allocatedBytes).toBe(0);
    // exactly at the boundary: 30 of 30
    expect(cache.set('m3', Buffer.alloc(30))).toBe(true);
    expect(cache.set('m4', Buffer.alloc(31))).toBe(false);
  });

  it("an evicted held entry's bytes still count against maxBytes until released: exactly the cap fits, one byte more does not", () => {
    const allocator = new LimitedAllocator(1000);
    closers.push(allocator);
    const cache = new BudgetedCache<string, Buffer>({ allocator, maxBytes: 30 });
    closers.push(cache);
    cache.set('held', Buffer.alloc(20));
    const lease = cache.acquire('held')!;
    cache.set('x', Buffer.alloc(10)); // 30 of 30
    expect(cache.set('y', Buffer.alloc(11))).toBe(false); // evicts x and held; held's 20 stay: 20 + 11 > 30
    expect(cache.size).toBe(0);
    expect(cache.stats()).toMatchObject({ bytes: 20, retained: 1, retainedBytes: 20, entries: 0 });
    // refused at once now that held's 20 bytes are retained: nothing else is evicted for it
    cache.set('z', Buffer.alloc(5));
    expect(cache.set('y', Buffer.alloc(11))).toBe(false);
    expect([...cache.keys()]).toEqual(['z']);
    expect(cache.set('y', Buffer.alloc(10))).toBe(true); // 20 + 10 = 30: z is evicted for it
    lease.release();
    expect(cache.stats()).toMatchObject({ bytes: 10, retained: 0, retainedBytes: 0, entries: 1 });
    expect(allocator.allocatedBytes).toBe(10);
  });

  it('shrinkTo and evictOnLevel evict held entries too, deferring their dispose', () => {
    const { cache, allocator, disposed } = setup(Infinity, 100);
    cache.set('a', Buffer.alloc(10));
    cache.set('b', Buffer.alloc(10));
    const lease = cache.acquire('a')!;
    cache.shrinkTo(0);
    expect(cache.size).toBe(0);
    expect(disposed).toEqual([['b', 'shrink']]);
    expect(allocator.allocatedBytes).toBe(10);
    lease.release();
    expect(disposed).toEqual([['b', 'shrink'], ['a', 'shrink']]);
    expect(allocator.allocatedBytes).toBe(0);
  });

  it('an evicted held entry can be set again under its key while the old value is still held', () => {
    const { cache, allocator, disposed } = setup(1, 100);
    cache.set('k', Buffer.alloc(10));
    const lease = cache.acquire('k')!;
    cache.set('other', Buffer.alloc(10)); // evicts k
    cache.set('k', Buffer.alloc(15)); // evicts other, k is new
    expect(cache.peek('k')!.length).toBe(15);
    expect(allocator.allocatedBytes).toBe(25);
    lease.release();
    expect(disposed.map(([k]) => k)).toEqual(['other', 'k']);
    expect(allocator.allocatedBytes).toBe(15);
  });
});

describe('getOrCreate leaves the counters alone when the value cannot be sized', () => {
  it('sync: a value without a size is refused, no miss counted, nothing charged', () => {
    const cache = new BudgetedCache<string, unknown>({ maxBytes: 100 });
    closers.push(cache);
    const before = cache.stats();
    expect(codeOf(() => cache.getOrCreateSync('k', () => ({ not: 'sizable' })))).toBe('ERR_INVALID_ARG_VALUE');
    expect(cache.stats()).toEqual(before);
  });

  it('async: the promise rejects with ERR_INVALID_ARG_VALUE, no miss counted, nothing pending', async () => {
    const cache = new BudgetedCache<string, unknown>({ maxBytes: 100 });
    closers.push(cache);
    const before = cache.stats();
    await expect(cache.getOrCreate('k', async () => ({ not: 'sizable' }))).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(cache.stats()).toEqual(before);
    await expect(cache.getOrCreate('k', () => ({ not: 'sizable' }))).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(cache.stats()).toEqual(before);
  });
});

describe('bulkheadHealthScore stays in [0, 100]', () => {
  it('refuses inconsistent or bad counts with a typed error', () => {
    expect(codeOf(() => bulkheadHealthScore({ acquisitions: 0, timeouts: 1, rejections: 0, errors: 2 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => bulkheadHealthScore({ acquisitions: -1, timeouts: 0, rejections: 0, errors: 0 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => bulkheadHealthScore({ acquisitions: NaN, timeouts: 0, rejections: 0, errors: 0 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => bulkheadHealthScore({ acquisitions: 1.5, timeouts: 0, rejections: 0, errors: 0 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => bulkheadHealthScore(null as never))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => bulkheadHealthScore({} as never))).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('exact boundaries', () => {
    expect(bulkheadHealthScore({ acquisitions: 0, timeouts: 0, rejections: 0, errors: 0 })).toBe(100);
    expect(bulkheadHealthScore({ acquisitions: 100, timeouts: 0, rejections: 0, errors: 5 })).toBe(95);
    expect(bulkheadHealthScore({ acquisitions: 1, timeouts: 0, rejections: 0, errors: 1 })).toBe(0);
    expect(bulkheadHealthScore({ acquisitions: 0, timeouts: 3, rejections: 0, errors: 0 })).toBe(0);
  });

  it('a bulkhead whose metrics were reset while a permit was held never reports a score below 0', async () => {
    const b = new Bulkhead({ maxConcurrent: 1, waitTimeout: 1 });
    closers.push(b);
    const held = await b.acquire();
    b.resetMetrics();
    await expect(b.acquire({ timeout: 1 })).rejects.toMatchObject({ code: 'ERR_BULKHEAD_TIMEOUT' });
    held(true); // an error for a permit granted before the reset: errors 1, acquisitions 0, timeouts 1
    const m = b.metrics();
    expect(m.healthScore).toBeGreaterThanOrEqual(0);
    expect(m.healthScore).toBeLessThanOrEqual(100);
    expect(b.health().score).toBe(m.healthScore);
  });
});

describe('cpuLoadBetween is never NaN or out of [0, 1]', () => {
  it('equal samples: 0 (no time passed)', () => {
    expect(cpuLoadBetween({ busyUs: 5, idleUs: 7 }, { busyUs: 5, idleUs: 7 })).toBe(0);
  });
  it('a counter that goes back is refused with ERR_INVALID_ARG_VALUE', () => {
    expect(codeOf(() => cpuLoadBetween({ busyUs: 10, idleUs: 10 }, { busyUs: 9, idleUs: 20 }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => cpuLoadBetween({ busyUs: 10, idleUs: 10 }, { busyUs: 20, idleUs: 9 }))).toBe('ERR_INVALID_ARG_VALUE');
  });
  it('bad arguments get typed errors', () => {
    expect(codeOf(() => cpuLoadBetween(null as never, { busyUs: 1, idleUs: 1 }))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => cpuLoadBetween({ busyUs: 1, idleUs: 1 }, undefined as never))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => cpuLoadBetween({ busyUs: '1', idleUs: 1 } as never, { busyUs: 1, idleUs: 1 }))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => cpuLoadBetween({ busyUs: NaN, idleUs: 1 }, { busyUs: 1, idleUs: 1 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => cpuLoadBetween({ busyUs: -1, idleUs: 1 }, { busyUs: 1, idleUs: 1 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => cpuLoadBetween({ busyUs: 1, idleUs: Infinity }, { busyUs: 1, idleUs: Infinity }))).toBe('ERR_OUT_OF_RANGE');
  });
  it('exact values', () => {
    expect(cpuLoadBetween({ busyUs: 0, idleUs: 0 }, { busyUs: 1, idleUs: 3 })).toBe(0.25);
    expect(cpuLoadBetween({ busyUs: 0, idleUs: 0 }, { busyUs: 4, idleUs: 0 })).toBe(1);
    expect(cpuLoadBetween({ busyUs: 0, idleUs: 0 }, { busyUs: 0, idleUs: 4 })).toBe(0);
  });
});

describe('MemoryBudget refuses a limit that rounds to 0', () => {
  const source = { usage: () => 10, systemTotal: () => 1000, cgroupLimit: () => null };
  it('total 1 with fraction 0.5 (floor 0.5 = 0) is refused', () => {
    expect(codeOf(() => new MemoryBudget({ total: 1, fraction: 0.5, source }))).toBe('ERR_OUT_OF_RANGE');
  });
  it('a RAM reading that gives a 0 limit is refused', () => {
    expect(codeOf(() => new MemoryBudget({ fraction: 0.1, source: { ...source, systemTotal: () => 5 } }))).toBe('ERR_MEMORY_BUDGET');
  });
  it('the smallest accepted budget reports finite fractions', () => {
    const b = new MemoryBudget({ total: 2, fraction: 0.5, source });
    expect(b.limit).toBe(1);
    expect(Number.isFinite(b.usageFraction())).toBe(true);
    expect(b.status().usageFraction).toBe(10);
  });
});

describe('typed errors at the right time', () => {
  it('defineProfile(undefined) and other bad bases get a typed error', () => {
    expect(codeOf(() => defineProfile(undefined as never))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => defineProfile(null as never))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => defineProfile(5 as never))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => defineProfile('standard', null as never))).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('runWithLimits with a budget that does not exist throws before starting a worker', () => {
    const spy = vi.fn();
    process.on('worker' as never, spy);
    try {
      const before = Budget.count();
      expect(codeOf(() => runWithLimits(() => 1, {}, { budget: `no-such-${process.pid}` }))).toBe('ERR_BUDGET_NOT_FOUND');
      expect(spy).not.toHaveBeenCalled();
      expect(Budget.count()).toBe(before);
    } finally {
      process.off('worker' as never, spy);
    }
  });

  it('runWithLimits with a limit that does not match the existing budget throws before starting a worker', () => {
    const name = `edges-mismatch-${process.pid}`;
    const b = Budget.open(name, 1000);
    const spy = vi.fn();
    process.on('worker' as never, spy);
    try {
      expect(codeOf(() => runWithLimits(() => 1, {}, { budget: { name, limit: 999 } }))).toBe('ERR_BUDGET_LIMIT_MISMATCH');
      expect(spy).not.toHaveBeenCalled();
    } finally {
      process.off('worker' as never, spy);
      b.close();
    }
  });

  it('runWithLimits with an existing budget runs, and the budget is still there for the task', async () => {
    const name = `edges-run-${process.pid}`;
    const before = Budget.count();
    const r = await runWithLimits(
      (_input: unknown, ctx: { budget: { reserve(n: number): void; release(n: number): void } | null }) => {
        ctx.budget!.reserve(10);
        ctx.budget!.release(10);
        return 7;
      },
      {},
      { budget: { name, limit: 100 } },
    );
    expect(r.value).toBe(7);
    expect(r.report.budgetReserved).toBe(10);
    // the run's handles (this thread's and the worker's) are closed after the run
    await vi.waitFor(() => expect(Budget.count()).toBe(before), { timeout: 20_000, interval: 20 });
  });

  describe('configureCheckpoints file', () => {
    afterEach(() => configureCheckpoints({ enabled: false, sink: 'stderr' }));

    it("file '' and a file in a missing directory are refused at configure time; the previous settings stay", () => {
      const lines: string[] = [];
      configureCheckpoints({ enabled: true, sink: (l) => lines.push(l), rss: () => 0 });
      expect(codeOf(() => configureCheckpoints({ file: '' }))).toBe('ERR_INVALID_ARG_VALUE');
      expect(codeOf(() => configureCheckpoints({ file: path.join(os.tmpdir(), `no-such-dir-${process.pid}`, 'x.log') }))).toBe('ERR_CHECKPOINT_FILE');
      expect(codeOf(() => configureCheckpoints({ file: 'a\0b' }))).toBe('ERR_INVALID_ARG_VALUE');
      checkpoint('still-here');
      expect(lines).toHaveLength(1);
    });

    it('a write that fails later does not throw into the caller: it is reported once as a warning', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-cp-'));
      const file = path.join(dir, 'cp.log');
      const emit = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
      try {
        configureCheckpoints({ enabled: true, file, rss: () => 0 });
        expect(checkpoint('one')).toMatch(/CHECKPOINT: one/);
        expect(fs.readFileSync(file, 'utf8')).toMatch(/CHECKPOINT: one/);
        fs.rmSync(dir, { recursive: true });
        expect(() => checkpoint('two')).not.toThrow();
        expect(() => checkpoint('three')).not.toThrow();
        expect(emit).toHaveBeenCalledTimes(1);
        expect(emit.mock.calls[0]![1]).toMatchObject({ code: 'RG_CHECKPOINT_WRITE_FAILED' });
        // once the file can be written again, lines go there and a later failure is reported again
        fs.mkdirSync(dir);
        checkpoint('four');
        expect(fs.readFileSync(file, 'utf8')).toMatch(/CHECKPOINT: four/);
        fs.rmSync(dir, { recursive: true });
        checkpoint('five');
        expect(emit).toHaveBeenCalledTimes(2);
      } finally {
        emit.mockRestore();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

describe('messages that compare two sizes show the difference', () => {
  const MiB = 1024 ** 2;
  const GiB = 1024 ** 3;
  const table: [number, number, string, string][] = [
    // a, b, expected a, expected b
    [1025 * MiB, 1024 * MiB, '1074790400 bytes', '1073741824 bytes'],
    [GiB + 1, GiB, '1073741825 bytes', '1073741824 bytes'],
    [2 * GiB, GiB, '2.00 GiB', '1.00 GiB'],
    [1536, 1024, '1.50 KiB', '1.00 KiB'],
    [1025, 1024, '1025 bytes', '1024 bytes'],
    [1000, 999, '1000 B', '999 B'],
    [GiB, GiB, '1.00 GiB', '1.00 GiB'],
    [150 * MiB + 1, 150 * MiB, '157286401 bytes', '157286400 bytes'],
    [100.4 * MiB, 100 * MiB, '105277030 bytes', '104857600 bytes'],
  ];
  it.each(table)('formatBytePair(%d, %d)', (a, b, ea, eb) => {
    const pair = formatBytePair(Math.floor(a), Math.floor(b));
    expect(pair).toEqual([ea, eb]);
    if (pair[0] === pair[1]) expect(Math.floor(a)).toBe(Math.floor(b));
  });

  it('MemoryLimitError for 1025 MiB against 1024 MiB', () => {
    const e = new MemoryLimitError(1025 * MiB, 1024 * MiB, 'rss');
    expect(e.message).toBe('Resident memory 1074790400 bytes is above the hard limit of 1073741824 bytes');
    expect(new MemoryLimitError(2 * GiB, GiB, 'heap').message).toBe('V8 heap 2.00 GiB is above the hard limit of 1.00 GiB');
  });

  it('DiskSpaceError for figures that round alike', () => {
    const e = new DiskSpaceError('/x', GiB, GiB + 512);
    expect(e.message).toBe('Not enough disk space at /x: 1073741824 bytes available, 1073742336 bytes required');
  });

  it('formatBytes itself is unchanged', () => {
    expect(formatBytes(1025 * MiB)).toBe('1.00 GiB');
  });

  it('MemoryBudget.checkUsage says by how many bytes when the MB figures are equal', () => {
    const b = new MemoryBudget({ total: 100 * MiB, fraction: 1, source: { usage: () => 100 * MiB + 1, systemTotal: () => 0, cgroupLimit: () => null } });
    let msg = '';
    try {
      b.checkUsage();
    } catch (err) {
      msg = (err as Error).message;
    }
    expect(msg).toContain('104857601 bytes');
    expect(msg).toContain('104857600 bytes');
  });
});
