// Checks every N operations (seed 000): the memory and disk guards count
// operations and run a full assert() on every N-th one; the aggressive mode
// checks five times as often. An interval that would never check is refused.
import { describe, expect, it } from 'vitest';
import { DiskSpaceError, MemoryLimitError } from '../src/errors';
import { DiskSpaceGuard, GuardClosedError, MemoryGuard, ResourceGuard } from '../src/guards';

function memory(rss = 0) {
  const state = { rss, reads: 0 };
  return {
    state,
    source: {
      rss: () => {
        state.reads++;
        return state.rss;
      },
    },
  };
}

function disk(available = 1e9) {
  const state = { available, reads: 0 };
  return {
    state,
    source: {
      read: () => {
        state.reads++;
        return { available: state.available, total: 1e12 };
      },
    },
  };
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('MemoryGuard: checks every N operations', () => {
  it('recordOperation reads on exactly every checkInterval-th call and throws there on a breach', () => {
    const f = memory(500);
    const guard = new MemoryGuard({ hardLimit: 1000, heap: false, checkInterval: 3, source: f.source });
    guard.recordOperation();
    guard.recordOperation();
    expect(f.state.reads).toBe(0);
    guard.recordOperation();
    expect(f.state.reads).toBe(1);
    f.state.rss = 1001;
    guard.recordOperation();
    guard.recordOperation();
    expect(f.state.reads).toBe(1); // between checks, a breach is not seen
    const err = thrown(() => guard.recordOperation());
    expect(err).toBeInstanceOf(MemoryLimitError);
    expect(err).toMatchObject({ code: 'ERR_MEMORY_LIMIT', current: 1001, limit: 1000, kind: 'rss' });
    expect(guard.stats()).toMatchObject({ operations: 6, checks: 2, hardBreaches: 1 });
  });

  it('exactly at the hard limit passes on a checking operation', () => {
    const f = memory(1000);
    const guard = new MemoryGuard({ hardLimit: 1000, heap: false, checkInterval: 1, source: f.source });
    expect(() => guard.recordOperation()).not.toThrow();
    expect(guard.stats()).toMatchObject({ operations: 1, checks: 1 });
  });

  it('an unreadable RSS fails closed on a checking operation, as assert() does', () => {
    const f = memory(NaN);
    const guard = new MemoryGuard({ hardLimit: 1000, heap: false, checkInterval: 1, source: f.source });
    expect(() => guard.assert()).toThrow(MemoryLimitError);
    expect(() => guard.recordOperation()).toThrow(MemoryLimitError);
  });

  it('the default interval is 100 operations and appears in limits', () => {
    const f = memory(10);
    const guard = new MemoryGuard({ hardLimit: 1000, heap: false, source: f.source });
    expect(guard.limits.checkInterval).toBe(100);
    for (let i = 0; i < 99; i++) guard.recordOperation();
    expect(f.state.reads).toBe(0);
    guard.recordOperation();
    expect(f.state.reads).toBe(1);
  });

  it('aggressive checks five times as often (interval / 5, rounded up, at least 1)', () => {
    const cases: Array<[number, number]> = [
      [100, 20],
      [101, 21],
      [5, 1],
      [4, 1],
      [1, 1],
    ];
    for (const [interval, effective] of cases) {
      const f = memory(10);
      const guard = new MemoryGuard({ hardLimit: 1000, heap: false, checkInterval: interval, aggressive: true, source: f.source });
      expect(guard.limits.checkInterval).toBe(effective);
      for (let i = 0; i < effective - 1; i++) guard.recordOperation();
      expect(f.state.reads).toBe(0);
      guard.recordOperation();
      expect(f.state.reads).toBe(1);
    }
  });

  it('reset() zeroes the operation count and restarts the interval', () => {
    const f = memory(10);
    const guard = new MemoryGuard({ hardLimit: 1000, heap: false, checkInterval: 3, source: f.source });
    guard.recordOperation();
    guard.recordOperation();
    guard.reset();
    expect(guard.stats().operations).toBe(0);
    guard.recordOperation();
    guard.recordOperation();
    expect(f.state.reads).toBe(0);
    guard.recordOperation();
    expect(f.state.reads).toBe(1);
  });

  it('refuses an interval that would never check, and a non-boolean aggressive, before taking anything', () => {
    const f = memory(10);
    for (const bad of [0, -1, 0.5, NaN, Infinity, 2 ** 31 + 1, '10']) {
      expect(() => new MemoryGuard({ hardLimit: 1000, checkInterval: bad as number, source: f.source })).toThrow(
        expect.objectContaining({ code: typeof bad === 'string' ? 'ERR_INVALID_ARG_TYPE' : 'ERR_OUT_OF_RANGE' }),
      );
    }
    expect(() => new MemoryGuard({ hardLimit: 1000, aggressive: 1 as never, source: f.source })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(f.state.reads).toBe(0);
  });

  it('a closed guard refuses recordOperation and counts nothing', () => {
    const f = memory(10);
    const guard = new MemoryGuard({ hardLimit: 1000, heap: false, checkInterval: 1, source: f.source });
    guard.close();
    expect(() => guard.recordOperation()).toThrow(GuardClosedError);
    expect(() => guard.check()).toThrow(GuardClosedError);
    expect(() => guard.recordOperation()).toThrow(expect.objectContaining({ code: 'ERR_GUARD_CLOSED' }));
    expect(guard.stats().operations).toBe(0);
  });

  it('with the default source, a checking operation reads this process', () => {
    const guard = new MemoryGuard({ hardLimit: 1024 * 1024, heap: false, checkInterval: 2 });
    try {
      guard.recordOperation();
      expect(() => guard.recordOperation()).toThrow(MemoryLimitError);
      expect(guard.stats()).toMatchObject({ operations: 2, checks: 1 });
    } finally {
      guard.close();
    }
  });
});

describe('DiskSpaceGuard: aggressive checks', () => {
  it('recordWrite re-reads five times as often', () => {
    const f = disk(10_000);
    const guard = new DiskSpaceGuard({ path: '/data', minFree: 1000, softFree: 2000, checkInterval: 10, aggressive: true, source: f.source });
    expect(guard.limits.checkInterval).toBe(2);
    guard.recordWrite(1);
    expect(f.state.reads).toBe(0);
    guard.recordWrite(1);
    expect(f.state.reads).toBe(1);
    f.state.available = 999;
    guard.recordWrite(1);
    expect(() => guard.recordWrite(1)).toThrow(DiskSpaceError);
  });

  it('refuses a non-boolean aggressive', () => {
    const f = disk();
    expect(() => new DiskSpaceGuard({ aggressive: 'yes' as never, source: f.source })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
  });
});

/** A ResourceGuard over injected memory (RSS 10 of 1000) and disk (10,000 free, minimum 1000) sources. */
function resourcePair(memoryInterval: number, diskInterval: number) {
  const m = memory(10);
  const d = disk(10_000);
  const guard = new ResourceGuard({
    memory: { hardLimit: 1000, heap: false, checkInterval: memoryInterval, source: m.source },
    disk: { path: '/data', minFree: 1000, softFree: 2000, checkInterval: diskInterval, source: d.source },
    cpu: false,
    degradation: false,
  });
  return { m, d, guard };
}

describe('ResourceGuard: recordOperation', () => {
  it('counts one operation on the memory and disk guards, each checking on its own interval', () => {
    const { m, d, guard } = resourcePair(2, 3);
    try {
      guard.recordOperation(100);
      guard.recordOperation(100);
      expect([m.state.reads, d.state.reads]).toEqual([1, 0]);
      guard.recordOperation(100);
      expect([m.state.reads, d.state.reads]).toEqual([1, 1]);
      expect(guard.memory!.stats().operations).toBe(3);
      expect(guard.disk!.stats()).toMatchObject({ operations: 3, bytesWritten: 300 });
      m.state.rss = 1001;
      expect(() => guard.recordOperation()).toThrow(MemoryLimitError);
      // The operation was counted on both guards before the breach was thrown.
      expect(guard.disk!.stats().operations).toBe(4);
    } finally {
      guard.close();
    }
  });

  it('a rejected byte count changes no counter on either guard', () => {
    const { m, d, guard } = resourcePair(1, 1);
    try {
      for (const bad of [-1, NaN, 0.5, '1 furlong', null]) {
        expect(() => guard.recordOperation(bad as number)).toThrow(expect.objectContaining({ code: expect.stringMatching(/^ERR_/) }));
      }
      expect(guard.memory!.stats().operations).toBe(0);
      expect(guard.disk!.stats().operations).toBe(0);
      expect([m.state.reads, d.state.reads]).toEqual([0, 0]);
    } finally {
      guard.close();
    }
  });

  it('RESOURCE_GUARD_MEMORY_CHECK_INTERVAL and RESOURCE_GUARD_AGGRESSIVE_CHECKS configure both guards', () => {
    const opts = ResourceGuard.optionsFromEnv({
      RESOURCE_GUARD_MEMORY_CHECK_INTERVAL: '50',
      RESOURCE_GUARD_DISK_CHECK_INTERVAL: '20',
      RESOURCE_GUARD_AGGRESSIVE_CHECKS: '1',
    });
    expect(opts.memory).toMatchObject({ checkInterval: 50, aggressive: true });
    expect(opts.disk).toMatchObject({ checkInterval: 20, aggressive: true });
    expect(() => ResourceGuard.optionsFromEnv({ RESOURCE_GUARD_MEMORY_CHECK_INTERVAL: '0' })).toThrow(
      expect.objectContaining({ code: expect.stringMatching(/^ERR_/) }),
    );
  });
});

describe('builder steps keep the operation interval', () => {
  const src = { read: () => ({ available: 1e12, total: 1e13 }) };

  it('withDisk over an aggressive disk guard does not divide again, and aggressive: false undoes it', () => {
    const g = new ResourceGuard({ memory: false, cpu: false, degradation: false });
    try {
      g.withDisk({ path: '/tmp', checkInterval: 100, aggressive: true, source: src });
      expect(g.disk!.limits.checkInterval).toBe(20);
      g.withDisk({ aggressive: true });
      expect(g.disk!.limits.checkInterval).toBe(20);
      g.withDisk({ minFree: 1 });
      expect(g.disk!.limits.checkInterval).toBe(20);
      g.withDisk({ aggressive: false });
      expect(g.disk!.limits.checkInterval).toBe(100);
    } finally {
      g.close();
    }
  });

  it('withMemory over a memory guard the caller gave keeps its operation interval', () => {
    const mg = new MemoryGuard({ hardLimit: 1e12, heap: false, checkInterval: 7, source: { rss: () => 1 } });
    const g = new ResourceGuard({ memory: mg, cpu: false, degradation: false });
    try {
      g.withMemory({ softLimit: 1e11 });
      expect(g.memory!.limits.checkInterval).toBe(7);
    } finally {
      g.close();
      mg.close();
    }
  });

  it('an operation interval from the environment above 2^31 is refused, naming the variable', () => {
    for (const key of ['RESOURCE_GUARD_MEMORY_CHECK_INTERVAL', 'RESOURCE_GUARD_DISK_CHECK_INTERVAL']) {
      expect(() => ResourceGuard.optionsFromEnv({ [key]: '3000000000' })).toThrow(
        expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining(key) }),
      );
    }
  });
});
