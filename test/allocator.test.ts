import { afterEach, describe, expect, it, vi } from 'vitest';
import { codeOf } from './helpers';
import {
  AlreadyReleasedError,
  BufferLease,
  LimitedAllocator,
  MemoryLimitExceededError,
  Reservation,
  type PressureChange,
} from '../src/allocator';
import { Budget } from '../src/budget';
import { ResourceError } from '../src/errors';

const MAX = Number.MAX_SAFE_INTEGER;
const open: LimitedAllocator[] = [];
let seq = 0;

/** A private allocator closed after the test. */
function make(limit: number | string, options?: ConstructorParameters<typeof LimitedAllocator>[1]): LimitedAllocator {
  const a = new LimitedAllocator(limit, options);
  open.push(a);
  return a;
}

/** A shared allocator under a name unique to this test. */
function shared(limit?: number, name = `alloc-test-${process.pid}-${++seq}`): LimitedAllocator {
  const a = LimitedAllocator.shared(name, limit);
  open.push(a);
  return a;
}

afterEach(() => {
  for (const a of open.splice(0)) a.close();
});

/** Every value that is not a byte count, and the code it must be refused with. */
const BAD_SIZES: [unknown, string][] = [
  [-1, 'ERR_OUT_OF_RANGE'],
  [NaN, 'ERR_OUT_OF_RANGE'],
  [1.5, 'ERR_OUT_OF_RANGE'],
  [Infinity, 'ERR_OUT_OF_RANGE'],
  [-Infinity, 'ERR_OUT_OF_RANGE'],
  [2 ** 53, 'ERR_OUT_OF_RANGE'],
  ['10', 'ERR_INVALID_ARG_TYPE'],
  [10n, 'ERR_INVALID_ARG_TYPE'],
  [null, 'ERR_INVALID_ARG_TYPE'],
  [undefined, 'ERR_INVALID_ARG_TYPE'],
  [{ valueOf: () => 10 }, 'ERR_INVALID_ARG_TYPE'],
];

describe('limit semantics', () => {
  it('grants a reservation of exactly the limit and refuses one byte more with the three numbers', () => {
    const a = make(1000);
    expect(a.reserveBytes(1000)).toBe(true);
    expect(a.allocatedBytes).toBe(1000);
    expect(a.reserveBytes(1)).toBe(false);
    let err: unknown;
    try {
      a.reserve(1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MemoryLimitExceededError);
    expect(err).toBeInstanceOf(ResourceError);
    const e = err as MemoryLimitExceededError;
    expect(e.code).toBe('ERR_MEMORY_LIMIT_EXCEEDED');
    expect([e.requested, e.limit, e.current, e.available]).toEqual([1, 1000, 1000, 0]);
    expect(e.usagePercent).toBe(100);
    expect(e.message).toContain('1 bytes');
    expect(e.message).toContain('1000 bytes of 1000 bytes in use (100.0%)');
    expect(a.allocatedBytes).toBe(1000);
  });

  it('refuses limit + 1 on an empty budget, and states the percent used', () => {
    const a = make(1000);
    expect(a.tryReserve(1001)).toBeNull();
    a.reserveBytes(250);
    const e = codeOf(() => a.reserve(751));
    expect(e).toBe('ERR_MEMORY_LIMIT_EXCEEDED');
    try {
      a.reserve(751);
    } catch (err) {
      const m = err as MemoryLimitExceededError;
      expect([m.requested, m.limit, m.current]).toEqual([751, 1000, 250]);
      expect(m.message).toMatch(/cannot allocate 751 bytes; 250 bytes of 1000 bytes in use \(25\.0%\), 750 bytes available/);
    }
    expect(a.reserve(750).size).toBe(750);
  });

  it('grants 0-byte requests even when full', () => {
    const a = make(10);
    a.reserveBytes(10);
    expect(a.reserveBytes(0)).toBe(true);
    const r = a.reserve(0);
    expect(r.size).toBe(0);
    r.release();
    expect(() => a.checkCanAllocate(0)).not.toThrow();
    const buf = a.allocate(0);
    expect(buf).not.toBeNull();
    expect(buf!.length).toBe(0);
    a.free(buf!);
    expect(a.allocatedBytes).toBe(10);
  });

  it('handles a limit of 0', () => {
    const a = make(0);
    expect(a.limit).toBe(0);
    expect(a.reserveBytes(0)).toBe(true);
    expect(a.reserveBytes(1)).toBe(false);
    expect(a.allocate(1)).toBeNull();
    expect(a.usagePercent).toBe(0);
    expect(a.pressureLevel).toBe('low');
    expect(codeOf(() => a.checkCanAllocate(1))).toBe('ERR_MEMORY_LIMIT_EXCEEDED');
  });

  it('stays exact up to 2^53 - 1 bytes', () => {
    const a = make(MAX);
    expect(a.limit).toBe(MAX);
    expect(a.reserveBytes(MAX - 1)).toBe(true);
    expect(a.allocatedBytes).toBe(MAX - 1);
    expect(a.reserveBytes(2)).toBe(false);
    expect(a.reserveBytes(1)).toBe(true);
    expect(a.allocatedBytes).toBe(MAX);
    expect(a.availableBytes).toBe(0);
    expect(a.reserveBytes(1)).toBe(false);
    expect(a.pressureLevel).toBe('critical');
    a.releaseBytes(1);
    expect(a.allocatedBytes).toBe(MAX - 1);
    a.releaseBytes(MAX - 1);
    expect(a.allocatedBytes).toBe(0);
    const r = a.reserve(MAX);
    expect(a.allocatedBytes).toBe(MAX);
    expect(r.tryResize(MAX - 3)).toBe(true);
    expect(a.allocatedBytes).toBe(MAX - 3);
    expect(r.tryResize(MAX)).toBe(true);
    expect(a.allocatedBytes).toBe(MAX);
    r.release();
    expect(a.allocatedBytes).toBe(0);
    expect(a.peakBytes).toBe(MAX);
  });

  it('accepts size strings and rejects bad limits', () => {
    expect(make('1KiB').limit).toBe(1024);
    expect(make('2MB').limit).toBe(2_000_000);
    for (const [bad, code] of BAD_SIZES) {
      if (typeof bad === 'string' || bad === undefined) continue;
      expect(codeOf(() => new LimitedAllocator(bad as number)), String(bad)).toBe(code);
    }
    expect(codeOf(() => new LimitedAllocator('lots'))).toBe('ERR_INVALID_ARG_VALUE');
  });

  describe.each(BAD_SIZES)('bad size %s', (bad, code) => {
    it('is rejected by every method and leaves every counter unchanged', () => {
      const a = make(1000);
      const r = a.reserve(100);
      a.reserveBytes(50);
      const buf = a.allocate(10)!;
      const before = { ...a.stats(), used: a.allocatedBytes, held: a.heldBytes };
      const calls: [string, () => unknown][] = [
        ['reserveBytes', () => a.reserveBytes(bad as number)],
        ['releaseBytes', () => a.releaseBytes(bad as number)],
        ['tryReserve', () => a.tryReserve(bad as number)],
        ['reserve', () => a.reserve(bad as number)],
        ['checkCanAllocate', () => a.checkCanAllocate(bad as number)],
        ['canAllocate', () => a.canAllocate(bad as number)],
        ['allocate', () => a.allocate(bad as number)],
        ['allocateUnsafe', () => a.allocateUnsafe(bad as number)],
        ['lease', () => a.lease(bad as number)],
        ['tryResize', () => r.tryResize(bad as number)],
        ['resize', () => r.resize(bad as number)],
      ];
      for (const [name, call] of calls) {
        let err: unknown;
        try {
          call();
        } catch (e) {
          err = e;
        }
        expect(err, name).toBeDefined();
        expect((err as { code?: string }).code, name).toBe(code);
        expect(err, name).toBeInstanceOf(code === 'ERR_INVALID_ARG_TYPE' ? TypeError : RangeError);
      }
      expect(a.allocatedBytes).toBe(before.used);
      expect(a.heldBytes).toBe(before.held);
      expect(r.size).toBe(100);
      const after = a.stats();
      expect(after.successes).toBe(before.successes);
      expect(after.failures).toBe(before.failures);
      expect(after.liveBuffers).toBe(1);
      a.free(buf);
    });
  });

  it('refuses a Buffer larger than buffer.constants.MAX_LENGTH before reserving', async () => {
    const { constants } = await import('node:buffer');
    const a = make(MAX);
    expect(codeOf(() => a.allocate(constants.MAX_LENGTH + 1))).toBe('ERR_OUT_OF_RANGE');
    expect(a.allocatedBytes).toBe(0);
  });
});

describe('reservations', () => {
  it('release exactly once', () => {
    const a = make(100);
    const r = a.reserve(40);
    expect(r).toBeInstanceOf(Reservation);
    expect(r.allocator).toBe(a);
    expect(a.allocatedBytes).toBe(40);
    r.release();
    expect(r.released).toBe(true);
    expect(r.size).toBe(0);
    expect(a.allocatedBytes).toBe(0);
    let err: unknown;
    try {
      r.release();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AlreadyReleasedError);
    expect((err as AlreadyReleasedError).code).toBe('ERR_ALREADY_RELEASED');
    expect(a.allocatedBytes).toBe(0);
    expect(codeOf(() => r.tryResize(10))).toBe('ERR_ALREADY_RELEASED');
    expect(a.allocatedBytes).toBe(0);
    // dispose after release is a no-op
    r[Symbol.dispose]();
    expect(a.allocatedBytes).toBe(0);
  });

  it('cannot be constructed from outside', () => {
    const a = make(100);
    expect(() => new (Reservation as unknown as new (...args: unknown[]) => Reservation)(Symbol('x'), a, 10)).toThrow(TypeError);
    expect(a.allocatedBytes).toBe(0);
  });

  it('work with using', () => {
    const a = make(100);
    {
      using r = a.reserve(30);
      using r2 = a.tryReserve(200);
      expect(r2).toBeNull();
      expect(r.size).toBe(30);
      expect(a.allocatedBytes).toBe(30);
    }
    expect(a.allocatedBytes).toBe(0);
  });

  it('grow may fail and leaves the reservation intact; shrink always succeeds', () => {
    const a = make(100);
    const r = a.reserve(50);
    const other = a.reserve(30);
    expect(r.tryResize(70)).toBe(true);
    expect(a.allocatedBytes).toBe(100);
    expect(r.tryResize(71)).toBe(false);
    expect(r.size).toBe(70);
    expect(a.allocatedBytes).toBe(100);
    let err: unknown;
    try {
      r.resize(90);
    } catch (e) {
      err = e;
    }
    const m = err as MemoryLimitExceededError;
    expect(m).toBeInstanceOf(MemoryLimitExceededError);
    expect([m.requested, m.limit, m.current]).toEqual([20, 100, 100]);
    expect(m.message).toContain('grow a reservation from 70 bytes to 90 bytes');
    expect(r.size).toBe(70);
    // shrinking succeeds at a full budget, down to 0
    r.resize(10);
    expect(a.allocatedBytes).toBe(40);
    expect(r.tryResize(0)).toBe(true);
    expect(r.size).toBe(0);
    expect(r.released).toBe(false);
    expect(a.allocatedBytes).toBe(30);
    r.resize(5);
    r.release();
    other.release();
    expect(a.allocatedBytes).toBe(0);
    expect(a.heldBytes).toBe(0);
  });

  it('raw bytes: releasing more than held is refused and the counter never goes negative', () => {
    const a = make(100);
    a.reserveBytes(10);
    let err: unknown;
    try {
      a.releaseBytes(11);
    } catch (e) {
      err = e;
    }
    expect((err as { code: string }).code).toBe('ERR_BUDGET_RELEASE_EXCEEDS_HELD');
    expect((err as Error).message).toContain('this allocator holds 10 bytes');
    expect(a.allocatedBytes).toBe(10);
    a.releaseBytes(10);
    expect(codeOf(() => a.releaseBytes(1))).toBe('ERR_BUDGET_RELEASE_EXCEEDS_HELD');
    expect(a.allocatedBytes).toBe(0);
    expect(a.heldBytes).toBe(0);
  });

  it('two allocators on one shared budget cannot release each other\'s bytes', () => {
    const name = `alloc-test-${process.pid}-pair`;
    const a = shared(100, name);
    const b = shared(undefined, name);
    a.reserveBytes(60);
    expect(b.allocatedBytes).toBe(60);
    expect(b.reserveBytes(41)).toBe(false);
    expect(b.reserveBytes(40)).toBe(true);
    expect(codeOf(() => b.releaseBytes(41))).toBe('ERR_BUDGET_RELEASE_EXCEEDS_HELD');
    expect(a.allocatedBytes).toBe(100);
    b.close(); // gives back its 40, not a's 60
    expect(a.allocatedBytes).toBe(60);
    expect(a.heldBytes).toBe(60);
  });
});

describe('buffers', () => {
  it('allocate charges a zero-filled, unpooled Buffer and returns null over the limit', () => {
    const a = make(10_000);
    const buf = a.allocate(4000)!;
    expect(Buffer.isBuffer(buf)).toBe(true);
    expect(buf.length).toBe(4000);
    expect(buf.every((b) => b === 0)).toBe(true);
    expect(buf.buffer.byteLength).toBe(4000); // its own ArrayBuffer, not a pool slice
    expect(a.allocatedBytes).toBe(4000);
    expect(a.owns(buf)).toBe(true);
    const small = a.allocateUnsafe(100)!;
    expect(small.length).toBe(100);
    expect(small.buffer.byteLength).toBe(100);
    expect(a.allocate(6000)).toBeNull();
    expect(a.allocatedBytes).toBe(4100);
    expect(a.stats()).toMatchObject({ liveBuffers: 2, liveBufferBytes: 4100, heldBytes: 4100 });
    a.free(buf);
    a.free(small);
    expect(a.allocatedBytes).toBe(0);
    expect(a.owns(buf)).toBe(false);
    expect(a.stats()).toMatchObject({ liveBuffers: 0, liveBufferBytes: 0, heldBytes: 0 });
  });

  it('free is checked: twice, foreign Buffers, other allocators, non-Buffers', () => {
    const a = make(1000);
    const b = make(1000);
    const buf = a.allocate(100)!;
    expect(codeOf(() => b.free(buf))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => a.free(Buffer.alloc(100)))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => a.free({} as Buffer))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => a.free(undefined as unknown as Buffer))).toBe('ERR_INVALID_ARG_TYPE');
    expect(a.allocatedBytes).toBe(100);
    a.free(buf);
    let err: unknown;
    try {
      a.free(buf);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AlreadyReleasedError);
    expect((err as AlreadyReleasedError).bytes).toBe(100);
    expect(a.allocatedBytes).toBe(0);
  });

  it('lease frees its Buffer at the end of a using scope', () => {
    const a = make(1000);
    let kept: Buffer;
    {
      using lease = a.lease(256);
      expect(lease).toBeInstanceOf(BufferLease);
      kept = lease!.buffer;
      expect(kept.length).toBe(256);
      expect(a.allocatedBytes).toBe(256);
      using none = a.lease(10_000);
      expect(none).toBeNull();
    }
    expect(a.allocatedBytes).toBe(0);
    expect(a.owns(kept)).toBe(false);
    const lease = a.lease(10)!;
    lease.free();
    expect(lease.freed).toBe(true);
    expect(codeOf(() => lease.free())).toBe('ERR_ALREADY_RELEASED');
    lease[Symbol.dispose]();
    expect(a.allocatedBytes).toBe(0);
  });

  it('a failed Buffer allocation gives its reservation back', () => {
    const a = make(1000);
    const spy = vi.spyOn(Buffer, 'alloc').mockImplementationOnce(() => {
      throw new RangeError('Array buffer allocation failed');
    });
    try {
      expect(() => a.allocate(100)).toThrow('Array buffer allocation failed');
    } finally {
      spy.mockRestore();
    }
    expect(a.allocatedBytes).toBe(0);
    expect(a.heldBytes).toBe(0);
  });
});

describe('close', () => {
  it('gives back everything, after which handles and Buffers release nothing', () => {
    const a = new LimitedAllocator(1000);
    const r = a.reserve(100);
    const buf = a.allocate(200)!;
    a.reserveBytes(50);
    const budget = a.budget;
    expect(budget.used).toBe(350);
    a.close();
    expect(a.closed).toBe(true);
    expect(budget.closed).toBe(true);
    r.release();
    a.free(buf);
    expect(codeOf(() => a.reserveBytes(1))).toBe('ERR_BUDGET_CLOSED');
    expect(codeOf(() => a.releaseBytes(1))).toBe('ERR_BUDGET_CLOSED');
    expect(codeOf(() => a.stats())).toBe('ERR_BUDGET_CLOSED');
    a.close();
  });

  it('of a shared allocator returns what it held to the other users', () => {
    const name = `alloc-test-${process.pid}-close`;
    const a = shared(100, name);
    const b = LimitedAllocator.shared(name);
    b.allocate(70);
    b.reserve(20);
    expect(a.allocatedBytes).toBe(90);
    {
      using _b = b;
    }
    expect(b.closed).toBe(true);
    expect(a.allocatedBytes).toBe(0);
  });
});

describe('pressure', () => {
  it('levels start at 60, 80 and 95 % inclusive', () => {
    const a = make(100);
    const at = (n: number): string => {
      a.releaseBytes(a.heldBytes);
      a.reserveBytes(n);
      return a.pressureLevel;
    };
    expect([0, 59, 60, 79, 80, 94, 95, 100].map(at)).toEqual(['low', 'low', 'medium', 'medium', 'high', 'high', 'critical', 'critical']);
    expect(a.usagePercent).toBe(100);
  });

  it('rounds thresholds up to whole bytes, exactly for huge limits', () => {
    const small = make(3); // 60 % = 1.8 bytes
    small.reserveBytes(1);
    expect(small.pressureLevel).toBe('low');
    small.reserveBytes(1);
    expect(small.pressureLevel).toBe('medium'); // 66.7 %
    small.reserveBytes(1);
    expect(small.pressureLevel).toBe('critical');
    const big = make(MAX);
    const t60 = Number((BigInt(MAX) * 60n + 99n) / 100n);
    big.reserveBytes(t60 - 1);
    expect(big.pressureLevel).toBe('low');
    big.reserveBytes(1);
    expect(big.pressureLevel).toBe('medium');
  });

  it('emits pressure changes in both directions, once per crossing', () => {
    const a = make(1000);
    const seen: PressureChange[] = [];
    a.on('pressure', (c) => seen.push(c));
    a.reserveBytes(500);
    expect(seen).toEqual([]);
    a.reserveBytes(100); // 600: medium
    a.reserveBytes(10); // still medium: no event
    const r = a.reserve(340); // 950: critical (skips high)
    r.resize(330); // 940: high
    r.release(); // 610: medium
    a.releaseBytes(10); // 600: medium
    a.releaseBytes(1); // 599: low
    expect(seen.map((c) => `${c.previous}->${c.level}@${c.used}`)).toEqual([
      'low->medium@600',
      'medium->critical@950',
      'critical->high@940',
      'high->medium@610',
      'medium->low@599',
    ]);
    expect(seen[1]).toEqual({ level: 'critical', previous: 'medium', used: 950, limit: 1000, usagePercent: 95 });
  });

  it('Buffers and their collection move the level too', () => {
    const a = make(100);
    const seen: string[] = [];
    a.on('pressure', (c) => seen.push(c.level));
    const buf = a.allocate(80)!;
    a.free(buf);
    expect(seen).toEqual(['high', 'low']);
  });

  it('a throwing listener does not undo the reservation; its error is rethrown asynchronously', () => {
    const a = make(100);
    const boom = new Error('listener failed');
    a.on('pressure', () => {
      throw boom;
    });
    const ticks: (() => void)[] = [];
    const spy = vi.spyOn(process, 'nextTick').mockImplementation(((fn: () => void) => {
      ticks.push(fn);
    }) as typeof process.nextTick);
    let ok: boolean;
    try {
      ok = a.reserveBytes(99);
    } finally {
      spy.mockRestore();
    }
    expect(ok).toBe(true);
    expect(a.allocatedBytes).toBe(99);
    expect(ticks).toHaveLength(1);
    expect(() => ticks[0]!()).toThrow(boom);
  });

  it('checkPressure sees changes made through another handle; setLimit re-levels', () => {
    const name = `alloc-test-${process.pid}-pressure`;
    const a = shared(100, name);
    const b = shared(undefined, name);
    const seen: string[] = [];
    a.on('pressure', (c) => seen.push(c.level));
    b.reserveBytes(85);
    expect(seen).toEqual([]); // a has not looked yet
    expect(a.pressureLevel).toBe('high'); // the getter reads the live counter
    expect(a.checkPressure()).toBe('high');
    expect(seen).toEqual(['high']);
    a.setLimit(1000);
    expect(seen).toEqual(['high', 'low']);
    expect(b.limit).toBe(1000);
    expect(codeOf(() => a.setLimit(50))).toBe('ERR_BUDGET_LIMIT_BELOW_USAGE');
  });

  it('accepts custom thresholds and rejects inconsistent ones', () => {
    const a = make(100, { pressureThresholds: { medium: 10, high: 20, critical: 30 } });
    a.reserveBytes(25);
    expect(a.pressureLevel).toBe('high');
    expect(a.pressureThresholds).toEqual({ medium: 10, high: 20, critical: 30 });
    expect(make(100, { pressureThresholds: { critical: 99.5 } }).pressureThresholds).toEqual({ medium: 60, high: 80, critical: 99.5 });
    expect(codeOf(() => new LimitedAllocator(100, { pressureThresholds: { medium: 90 } }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => new LimitedAllocator(100, { pressureThresholds: { high: 101 } }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new LimitedAllocator(100, { pressureThresholds: { medium: 0 } }))).toBe('ERR_INVALID_ARG_VALUE');
  });
});

describe('shared budgets in one thread', () => {
  it('share one counter; a different limit is a clear error; a missing name needs a limit', () => {
    const name = `alloc-test-${process.pid}-shared`;
    const a = shared(100, name);
    const b = shared(100, name);
    a.reserveBytes(30);
    expect(b.allocatedBytes).toBe(30);
    let err: unknown;
    try {
      LimitedAllocator.shared(name, 200);
    } catch (e) {
      err = e;
    }
    expect((err as { code: string }).code).toBe('ERR_BUDGET_LIMIT_MISMATCH');
    expect((err as Error).message).toContain('limit of 100 bytes, not 200');
    expect((err as Error).message).toContain('setLimit');
    expect(codeOf(() => LimitedAllocator.shared(`${name}-missing`))).toBe('ERR_BUDGET_NOT_FOUND');
    expect(codeOf(() => LimitedAllocator.shared(42 as unknown as string, 1))).toBe('ERR_INVALID_ARG_TYPE');
    expect(a.name).toBe(name);
    expect(a.budget).toBeInstanceOf(Budget);
  });
});

describe('held bytes: each allocator keeps its own count', () => {
  it('a plain handle on the same budget cannot release an allocator\'s bytes, nor the reverse', () => {
    const name = `alloc-test-${process.pid}-cells`;
    const a = shared(100, name);
    const b = Budget.open(name);
    try {
      expect(a.reserveBytes(40)).toBe(true);
      b.reserve(10);
      // The thread holds both; each side holds its own.
      expect(b.held).toBe(50);
      expect(b.stats().held).toBe(50);
      expect(a.heldBytes).toBe(40);
      expect(codeOf(() => b.release(11))).toBe('ERR_BUDGET_RELEASE_EXCEEDS_HELD');
      expect(codeOf(() => a.releaseBytes(41))).toBe('ERR_BUDGET_RELEASE_EXCEEDS_HELD');
      expect(b.used).toBe(50);
      expect(a.heldBytes).toBe(40);
      // Closing the allocator gives back its 40 at once, though the thread
      // still has a handle open on the budget.
      a.close();
      expect(b.used).toBe(10);
      expect(b.held).toBe(10);
      b.release(10);
      expect(b.used).toBe(0);
    } finally {
      b.close();
    }
  });

  it('closing an allocator\'s budget handle directly closes it for the allocator too', () => {
    const name = `alloc-test-${process.pid}-cell-reuse`;
    const a = shared(100, name);
    a.reserveBytes(30);
    a.budget.close();
    expect(a.heldBytes).toBe(0);
    expect(a.allocatedBytes).toBe(0);
    // The next allocator may get the same ledger cell; the closed one must not
    // release from it.
    const c = shared(100, name);
    c.reserveBytes(20);
    expect(codeOf(() => a.releaseBytes(5))).toBe('ERR_BUDGET_CLOSED');
    expect(codeOf(() => a.reserveBytes(5))).toBe('ERR_BUDGET_CLOSED');
    a.releaseBytes(0);
    expect(c.heldBytes).toBe(20);
    expect(c.allocatedBytes).toBe(20);
  });

  it('a thread can have 4096 allocators open at once; one more is a clear error that changes nothing', () => {
    const name = `alloc-test-${process.pid}-many`;
    const first = shared(1000, name);
    const many: LimitedAllocator[] = [first];
    let err: unknown;
    try {
      for (let i = 0; i < 5000; i++) many.push(LimitedAllocator.shared(name));
    } catch (e) {
      err = e;
    }
    try {
      expect(codeOf(() => {
        throw err;
      })).toBe('ERR_BUDGET_TOO_MANY');
      expect((err as Error).message).toContain('allocators open in this thread (at most 4096)');
      // Allocators other test files left to the garbage collector may still
      // hold a few.
      expect(many.length).toBeLessThanOrEqual(4096);
      expect(many.length).toBeGreaterThan(4000);
      const handles = first.stats().openHandles;
      expect(codeOf(() => LimitedAllocator.shared(name))).toBe('ERR_BUDGET_TOO_MANY');
      expect(codeOf(() => new LimitedAllocator(10))).toBe('ERR_BUDGET_TOO_MANY');
      expect(first.stats().openHandles).toBe(handles);
      many[17]!.reserveBytes(3);
      many.splice(17, 1)[0]!.close();
      const again = LimitedAllocator.shared(name);
      many.push(again);
      expect(again.heldBytes).toBe(0);
      expect(again.allocatedBytes).toBe(0);
    } finally {
      for (const a of many) a.close();
    }
  });
});

describe('fromEnv', () => {
  const VAR = 'RESOURCE_GUARD_MEMORY_LIMIT_MB';
  const fromEnv = (value: string | undefined, extra: Parameters<typeof LimitedAllocator.fromEnv>[0] = {}): LimitedAllocator => {
    const a = LimitedAllocator.fromEnv({ env: { [VAR]: value }, ...extra });
    open.push(a);
    return a;
  };

  it('defaults to 512 MiB when unset or empty', () => {
    expect(fromEnv(undefined).limit).toBe(512 * 2 ** 20);
    expect(fromEnv('').limit).toBe(512 * 2 ** 20);
    expect(fromEnv('  ').limit).toBe(512 * 2 ** 20);
    expect(fromEnv(undefined, { defaultMB: 1 }).limit).toBe(2 ** 20);
  });

  it('reads MiB, decimals allowed', () => {
    expect(fromEnv('64').limit).toBe(64 * 2 ** 20);
    expect(fromEnv(' 0.5 ').limit).toBe(2 ** 19);
    expect(fromEnv('0').limit).toBe(0);
    const a = LimitedAllocator.fromEnv({ env: { MY_LIMIT: '2' }, variable: 'MY_LIMIT' });
    open.push(a);
    expect(a.limit).toBe(2 * 2 ** 20);
  });

  it('reads process.env by default', () => {
    const saved = process.env[VAR];
    process.env[VAR] = '3';
    try {
      const a = LimitedAllocator.fromEnv();
      open.push(a);
      expect(a.limit).toBe(3 * 2 ** 20);
    } finally {
      if (saved === undefined) delete process.env[VAR];
      else process.env[VAR] = saved;
    }
  });

  it.each(['abc', '-5', '12MB', '1e3', '0x10', '5,5', '1.', 'NaN', 'Infinity', '512 MB'])('refuses %j with an error naming the variable', (value) => {
    let err: unknown;
    try {
      fromEnv(value);
    } catch (e) {
      err = e;
    }
    expect((err as { code: string }).code).toBe('ERR_INVALID_ARG_VALUE');
    expect((err as Error).message).toContain(VAR);
    expect((err as Error).message).toContain('MiB');
  });

  it('refuses a value above 2^53 - 1 bytes', () => {
    expect(codeOf(() => fromEnv('99999999999999'))).toBe('ERR_OUT_OF_RANGE');
  });

  it('opens a shared budget when given a name', () => {
    const name = `alloc-test-${process.pid}-env`;
    const a = fromEnv('1', { name });
    const b = shared(undefined, name);
    expect(b.limit).toBe(2 ** 20);
    a.reserveBytes(5);
    expect(b.allocatedBytes).toBe(5);
  });
});

describe('stats', () => {
  it('reports budget gauges and success/failure counts', () => {
    const a = make(100);
    a.reserveBytes(70);
    a.reserveBytes(50);
    a.tryReserve(40);
    a.reserve(10);
    a.releaseBytes(70);
    expect(a.stats()).toEqual({
      name: '',
      allocatedBytes: 10,
      peakBytes: 80,
      limit: 100,
      availableBytes: 90,
      usagePercent: 10,
      pressureLevel: 'low',
      successes: 2,
      failures: 2,
      heldBytes: 10,
      liveBuffers: 0,
      liveBufferBytes: 0,
      openHandles: 1,
    });
    expect(a.peakBytes).toBe(80);
    expect(a.canAllocate(90)).toBe(true);
    expect(a.canAllocate(91)).toBe(false);
    expect(a.stats().successes).toBe(2); // pre-flight checks are not counted
  });
});
