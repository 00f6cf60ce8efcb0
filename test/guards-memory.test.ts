import { describe, expect, it } from 'vitest';
import { MemoryLimitError } from '../src/errors';
import { MemoryGuard, type MemoryGuardStatus } from '../src/guards';
import { readRss } from '../src/sampler';

/** A memory source and clock the test moves by hand. */
function fake(init: { rss?: number; used?: number; limit?: number } = {}) {
  const state = { rss: init.rss ?? 0, used: init.used ?? 0, limit: init.limit ?? 10_000, now: 0, heapReads: 0 };
  return {
    state,
    source: {
      rss: () => state.rss,
      heap: () => {
        state.heapReads++;
        return { used: state.used, limit: state.limit, total: state.used };
      },
    },
    clock: () => state.now,
  };
}

function record(guard: MemoryGuard) {
  const events: Array<[string, MemoryGuardStatus]> = [];
  for (const name of ['soft', 'hard', 'growth'] as const) guard.on(name, (s) => events.push([name, s]));
  return events;
}

describe('MemoryGuard: RSS limits at the boundary', () => {
  it('passes exactly at the hard limit and trips one byte over', () => {
    const f = fake();
    const guard = new MemoryGuard({ hardLimit: 1000, source: f.source, clock: f.clock });
    f.state.rss = 1000;
    expect(guard.check().exceedsHard).toBe(false);
    expect(guard.ok()).toBe(true);
    expect(() => guard.assert()).not.toThrow();
    f.state.rss = 1001;
    const s = guard.check();
    expect(s.exceedsHard).toBe(true);
    expect(s.breach).toBe('rss');
    expect(guard.ok()).toBe(false);
    let err: unknown;
    try {
      guard.assert();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MemoryLimitError);
    expect(err).toMatchObject({ code: 'ERR_MEMORY_LIMIT', current: 1001, limit: 1000, kind: 'rss' });
  });

  it('soft limit defaults to 80 % of hard; exactly at soft passes, one over warns', () => {
    const f = fake();
    const guard = new MemoryGuard({ hardLimit: 1001, source: f.source, clock: f.clock, heap: false });
    expect(guard.limits.softLimit).toBe(800);
    f.state.rss = 800;
    expect(guard.check().exceedsSoft).toBe(false);
    f.state.rss = 801;
    const s = guard.check();
    expect(s.exceedsSoft).toBe(true);
    expect(s.exceedsHard).toBe(false);
  });

  it('an explicit soft limit equal to the hard limit is allowed', () => {
    const f = fake();
    const guard = new MemoryGuard({ hardLimit: 500, softLimit: 500, source: f.source, clock: f.clock });
    f.state.rss = 500;
    expect(guard.check()).toMatchObject({ exceedsSoft: false, exceedsHard: false });
  });

  it('accepts human sizes: MB is 10^6, MiB is 2^20', () => {
    const f = fake();
    const a = new MemoryGuard({ hardLimit: '512MB', source: f.source });
    const b = new MemoryGuard({ hardLimit: '2GiB', softLimit: '1.5GiB', source: f.source });
    expect(a.limits.hardLimit).toBe(512_000_000);
    expect(b.limits.hardLimit).toBe(2 * 1024 ** 3);
    expect(b.limits.softLimit).toBe(1.5 * 1024 ** 3);
  });

  it('an RSS reading that is not a number fails closed', () => {
    const guard = new MemoryGuard({ hardLimit: 1000, source: { rss: () => NaN } });
    expect(guard.check()).toMatchObject({ exceedsHard: true, breach: 'rss' });
    expect(guard.ok()).toBe(false);
    expect(() => guard.assert()).toThrow(/could not be read/);
  });
});

describe('MemoryGuard: V8 heap limits at the boundary', () => {
  it('defaults to 90 % / 80 % of the heap limit and trips strictly above the hard one', () => {
    const f = fake({ limit: 10_000 });
    const guard = new MemoryGuard({ hardLimit: 1e12, source: f.source, clock: f.clock });
    expect(guard.limits).toMatchObject({ heapLimit: 10_000, heapHardLimit: 9000, heapSoftLimit: 7200 });
    f.state.used = 7200;
    expect(guard.check()).toMatchObject({ exceedsSoft: false });
    f.state.used = 7201;
    expect(guard.check()).toMatchObject({ exceedsSoft: true, exceedsHard: false });
    f.state.used = 9000;
    expect(guard.check().exceedsHard).toBe(false);
    f.state.used = 9001;
    const s = guard.check();
    expect(s).toMatchObject({ exceedsHard: true, breach: 'heap' });
    expect(s.heap).toMatchObject({ used: 9001, hardLimit: 9000, exceedsHard: true });
    expect(() => guard.assert()).toThrow(MemoryLimitError);
    try {
      guard.assert();
    } catch (e) {
      expect(e).toMatchObject({ kind: 'heap', current: 9001, limit: 9000 });
    }
  });

  it('explicit heap limits; a heap hard limit above the heap limit is refused', () => {
    const f = fake({ limit: 10_000 });
    const guard = new MemoryGuard({ hardLimit: 1e12, heapHardLimit: 5000, source: f.source });
    expect(guard.limits).toMatchObject({ heapHardLimit: 5000, heapSoftLimit: 4000 });
    expect(() => new MemoryGuard({ hardLimit: 1e12, heapHardLimit: 10_001, source: f.source })).toThrow(RangeError);
  });

  it('the hot check re-reads the heap every heapCheckEvery calls with an injected source', () => {
    const f = fake({ limit: 10_000 });
    const guard = new MemoryGuard({ hardLimit: 1e12, heapCheckEvery: 4, source: f.source, clock: f.clock });
    expect(guard.ok()).toBe(true); // reads the heap
    f.state.used = 9001;
    expect([guard.ok(), guard.ok(), guard.ok()]).toEqual([true, true, true]);
    expect(guard.ok()).toBe(false); // fourth call after the read
  });

  it('with heapCheckEvery 1 the hot check sees the heap at once, both ways', () => {
    const f = fake({ limit: 10_000 });
    const guard = new MemoryGuard({ hardLimit: 1e12, heapCheckEvery: 1, source: f.source });
    f.state.used = 9000;
    expect(guard.ok()).toBe(true);
    f.state.used = 9001;
    expect(guard.ok()).toBe(false);
    f.state.used = 9000;
    expect(guard.ok()).toBe(true);
  });

  it('heap: false watches RSS only', () => {
    const f = fake({ used: 1e9, limit: 10 });
    const guard = new MemoryGuard({ hardLimit: 1000, heap: false, source: f.source });
    expect(guard.check().heap).toBeNull();
    expect(guard.ok()).toBe(true);
    expect(f.state.heapReads).toBe(0);
  });
});

describe('MemoryGuard: growth rate', () => {
  it('warns strictly above the threshold, over the window', () => {
    const f = fake();
    const guard = new MemoryGuard({
      hardLimit: 1e12,
      heap: false,
      growthRateThreshold: 1000,
      growthWindowMs: 1000,
      source: f.source,
      clock: f.clock,
    });
    const events = record(guard);
    f.state.rss = 0;
    guard.check();
    f.state.now = 1000;
    f.state.rss = 1000; // exactly 1000 B/s
    const atThreshold = guard.check();
    expect(atThreshold.growthRate).toBe(1000);
    expect(atThreshold.exceedsGrowthRate).toBe(false);
    f.state.now = 2000;
    f.state.rss = 2001; // 1001 B/s over the last window
    const over = guard.check();
    expect(over.growthRate).toBe(1001);
    expect(over.exceedsGrowthRate).toBe(true);
    expect(events.map((e) => e[0])).toEqual(['growth']);
    expect(guard.stats().growthWarnings).toBe(1);
  });

  it('reports 0 until half a window of history exists', () => {
    const f = fake();
    const guard = new MemoryGuard({ hardLimit: 1e12, heap: false, growthRateThreshold: 1, source: f.source, clock: f.clock });
    guard.check();
    f.state.now = 10;
    f.state.rss = 1e9;
    expect(guard.check().growthRate).toBe(0);
    f.state.now = 500;
    expect(guard.check().growthRate).toBe(2e9);
  });

  it('a size string is a size per second', () => {
    const guard = new MemoryGuard({ hardLimit: 1000, growthRateThreshold: '100MB', source: { rss: () => 0 } });
    expect(guard.limits.growthRateThreshold).toBe(100_000_000);
  });
});

describe('MemoryGuard: events fire on crossing, statistics, reset', () => {
  it('soft and hard fire once per crossing, not on every check', () => {
    const f = fake();
    const guard = new MemoryGuard({ hardLimit: 1000, softLimit: 800, heap: false, source: f.source, clock: f.clock });
    const events = record(guard);
    for (const rss of [100, 801, 900, 950, 1001, 1200, 1001, 900, 1001, 700, 801]) {
      f.state.rss = rss;
      guard.check();
    }
    expect(events.map((e) => [e[0], e[1].current])).toEqual([
      ['soft', 801],
      ['hard', 1001],
      ['hard', 1001],
      ['soft', 801],
    ]);
    expect(guard.stats()).toMatchObject({ peak: 1200, checks: 11, softWarnings: 2, hardBreaches: 2 });
  });

  it('the hot check fires hard on crossing too', () => {
    const f = fake();
    const guard = new MemoryGuard({ hardLimit: 1000, heap: false, source: f.source });
    const events = record(guard);
    f.state.rss = 2000;
    expect(guard.ok()).toBe(false);
    expect(guard.ok()).toBe(false);
    expect(events.filter((e) => e[0] === 'hard')).toHaveLength(1);
    expect(guard.stats().hardBreaches).toBe(1);
  });

  it('reset() clears counters and re-arms events', () => {
    const f = fake({ rss: 2000 });
    const guard = new MemoryGuard({ hardLimit: 1000, heap: false, source: f.source });
    const events = record(guard);
    guard.check();
    guard.check();
    expect(events).toHaveLength(2); // soft + hard
    guard.reset();
    expect(guard.stats()).toEqual({ peak: 0, peakHeap: 0, checks: 0, operations: 0, softWarnings: 0, hardBreaches: 0, growthWarnings: 0 });
    guard.check();
    expect(events).toHaveLength(4);
    expect(guard.stats()).toMatchObject({ peak: 2000, checks: 1, softWarnings: 1, hardBreaches: 1 });
  });

  it('setLimits() changes limits; a soft limit never given follows the hard one', () => {
    const f = fake({ rss: 900 });
    const guard = new MemoryGuard({ hardLimit: 1000, heap: false, source: f.source });
    expect(guard.ok()).toBe(true);
    guard.setLimits({ hardLimit: 899 });
    expect(guard.limits).toMatchObject({ hardLimit: 899, softLimit: 719 });
    expect(guard.ok()).toBe(false);
    guard.setLimits({ hardLimit: '1KiB', softLimit: 1000 });
    expect(guard.limits).toMatchObject({ hardLimit: 1024, softLimit: 1000 });
    expect(guard.ok()).toBe(true);
  });
});

describe('MemoryGuard: default sources', () => {
  it('reads RSS and the heap of this process', () => {
    const guard = new MemoryGuard();
    const s = guard.check();
    const rss = readRss();
    expect(s.current).toBeGreaterThan(10 * 1024 * 1024);
    expect(Math.abs(s.current - rss)).toBeLessThan(64 * 1024 * 1024);
    expect(s.heap!.used).toBeGreaterThan(0);
    expect(s.heap!.limit).toBeGreaterThan(s.heap!.used);
    expect(s.hardLimit).toBeGreaterThan(s.current);
    expect(guard.ok()).toBe(true);
  });

  it('the hot check on the shared snapshot trips when RSS is over the hard limit', () => {
    const guard = new MemoryGuard({ hardLimit: 1024 * 1024 });
    const events: string[] = [];
    guard.on('hard', () => events.push('hard'));
    expect(guard.ok()).toBe(false);
    expect(guard.ok()).toBe(false);
    expect(events).toEqual(['hard']);
    expect(() => guard.assert()).toThrow(MemoryLimitError);
  });

  it('the heap hard limit folds into the hot check', () => {
    const guard = new MemoryGuard({ heapHardLimit: 1024 });
    expect(guard.ok()).toBe(false);
    expect(guard.check().breach).toBe('heap');
  });
});

describe('MemoryGuard: closed', () => {
  it('setLimits on a closed guard is refused (ERR_GUARD_CLOSED) and ok() stays false', () => {
    const keeper = new MemoryGuard({ hardLimit: '64GiB' }); // keeps the sampler running
    const guard = new MemoryGuard({ hardLimit: '64GiB' });
    expect(guard.ok()).toBe(true);
    guard.close();
    expect(guard.ok()).toBe(false);
    let code: string | undefined;
    try {
      guard.setLimits({ hardLimit: '64GiB' });
    } catch (err) {
      code = (err as { code?: string }).code;
    }
    expect(code).toBe('ERR_GUARD_CLOSED');
    expect(guard.ok()).toBe(false);
    keeper.close();
  });
});
