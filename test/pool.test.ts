// ResourcePool at its boundaries, with time driven by a manual clock and
// manual timers: MRU reuse, lifetime and idle timeout at their exact edges,
// acquire timeouts counted as timeouts, create failures counted as errors,
// the health bands, metrics across reset(), budget charging, drain/close.
import { describe, expect, test } from 'vitest';
import { Budget } from '../src/budget';
import { LimitedAllocator } from '../src/allocator';
import {
  PoolBudgetError,
  PoolClosedError,
  PoolCreateError,
  PoolNotLentError,
  PoolTimeoutError,
  ResourcePool,
  poolHealthScore,
  poolHealthStatus,
  type PoolFactory,
  type PoolOptions,
  type PoolTimers,
} from '../src/pool';
import { codeOf } from './helpers';
import { ManualTime } from './manual-time';

const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
};

interface Conn {
  id: number;
  closed: boolean;
}

function factory(extra: Partial<PoolFactory<Conn>> = {}): PoolFactory<Conn> & { made: Conn[]; destroyedIds: number[] } {
  const made: Conn[] = [];
  const destroyedIds: number[] = [];
  return {
    made,
    destroyedIds,
    create: () => {
      const c = { id: made.length + 1, closed: false };
      made.push(c);
      return c;
    },
    destroy: (c: Conn) => {
      c.closed = true;
      destroyedIds.push(c.id);
    },
    ...extra,
  };
}

function makePool(opts: Partial<PoolOptions<Conn>> = {}, f = factory()) {
  const time = new ManualTime();
  const pool = new ResourcePool<Conn>(f, { max: 2, clock: time.clock, timers: time, ...opts });
  return { pool, time, f };
}

describe('options', () => {
  test('max 0, negative timeouts and bad values are refused before anything is created', () => {
    const f = factory();
    expect(codeOf(() => new ResourcePool(f, { max: 0 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new ResourcePool(f, { max: -1 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new ResourcePool(f, { max: 1.5 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new ResourcePool(f, { max: 2, acquireTimeout: -1 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new ResourcePool(f, { max: 2, acquireTimeout: NaN }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new ResourcePool(f, { max: 2, idleTimeout: -1 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new ResourcePool(f, { max: 2, maxLifetime: -0.5 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new ResourcePool(f, { max: 2, min: 3 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new ResourcePool(f, { max: 2, min: 1, timers: {} as PoolTimers }))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => new ResourcePool({ create: f.create } as PoolFactory<Conn>, { max: 2 }))).toBe('ERR_INVALID_ARG_TYPE');
    const budget = Budget.create(1000);
    expect(codeOf(() => new ResourcePool(f, { max: 2, min: 1, budget }))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => new ResourcePool(f, { max: 2, min: 1, budget: {} as Budget, resourceSize: 1 }))).toBe('ERR_INVALID_ARG_TYPE');
    // min: 1 would have created one resource had validation not come first.
    expect(f.made).toHaveLength(0);
    expect(budget.used).toBe(0);
    budget.close();
  });

  test('bad acquire options throw without counting a request', async () => {
    const { pool } = makePool();
    expect(codeOf(() => pool.acquire({ timeout: -1 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => pool.acquire({ signal: {} as AbortSignal }))).toBe('ERR_INVALID_ARG_TYPE');
    expect(pool.metrics().requests).toBe(0);
    await pool.close();
  });
});

describe('lending', () => {
  test('idle resources are reused most recently used first', async () => {
    const { pool } = makePool({ max: 3 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    const c = await pool.acquire();
    pool.release(a);
    pool.release(c);
    pool.release(b);
    expect((await pool.acquire()).id).toBe(b.id);
    expect((await pool.acquire()).id).toBe(c.id);
    expect((await pool.acquire()).id).toBe(a.id);
    expect(pool.metrics().created).toBe(3);
  });

  test('release of something not lent (or twice) is refused and changes nothing', async () => {
    const { pool } = makePool();
    const a = await pool.acquire();
    expect(() => pool.release({ id: 99, closed: false })).toThrow(PoolNotLentError);
    pool.release(a);
    expect(codeOf(() => pool.release(a))).toBe('ERR_POOL_NOT_LENT');
    expect(pool.inUse).toBe(0);
    expect(pool.idle).toBe(1);
    await pool.close();
  });

  test('a waiting request gets the next released resource, in FIFO order', async () => {
    const { pool } = makePool({ max: 1 });
    const a = await pool.acquire();
    const order: number[] = [];
    const p1 = pool.acquire().then((r) => {
      order.push(1);
      return r;
    });
    const p2 = pool.acquire().then((r) => {
      order.push(2);
      return r;
    });
    expect(pool.waiting).toBe(2);
    pool.release(a);
    const r1 = await p1;
    pool.release(r1);
    const r2 = await p2;
    expect(order).toEqual([1, 2]);
    expect(r2).toBe(a);
    pool.release(r2);
    expect(pool.metrics()).toMatchObject({ requests: 3, successes: 3, created: 1, inUse: 0, waiting: 0 });
  });

  test('destroy() removes a broken resource and a waiter gets a fresh one', async () => {
    const { pool, f } = makePool({ max: 1 });
    const a = await pool.acquire();
    const waiting = pool.acquire();
    await pool.destroy(a);
    const b = await waiting;
    expect(b.id).toBe(2);
    expect(f.destroyedIds).toEqual([1]);
    pool.release(b);
  });

  test('use() releases however the function ends', async () => {
    const { pool } = makePool();
    await expect(pool.use(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await pool.use((c) => c.id)).toBe(1);
    expect(pool.inUse).toBe(0);
  });

  test('min resources are made at creation and kept', async () => {
    const { pool, f } = makePool({ max: 4, min: 2 });
    await pool.ready();
    expect(f.made).toHaveLength(2);
    expect(pool.idle).toBe(2);
  });
});

describe('maximum lifetime', () => {
  test('a resource at exactly its maximum age is reused; one past it is destroyed and replaced', async () => {
    const { pool, time, f } = makePool({ maxLifetime: 3_600_000 });
    const a = await pool.acquire();
    pool.release(a);
    time.now += 3_600_000;
    const again = await pool.acquire();
    expect(again).toBe(a);
    pool.release(again); // age == max: still taken back
    expect(pool.idle).toBe(1);
    time.now += 1;
    const fresh = await pool.acquire();
    expect(fresh).not.toBe(a);
    expect(f.destroyedIds).toEqual([a.id]);
    expect(pool.metrics()).toMatchObject({ created: 2, destroyed: 1, errors: 0 });
    pool.release(fresh);
  });

  test('a loan returned one past its maximum age is destroyed on release', async () => {
    const { pool, time, f } = makePool({ maxLifetime: 100 });
    const a = await pool.acquire();
    time.now += 101;
    pool.release(a);
    expect(f.destroyedIds).toEqual([a.id]);
    expect(pool.size).toBe(0);
  });

  test('the eviction sweep recycles old idle resources and keeps min', async () => {
    const { pool, time, f } = makePool({ max: 3, min: 1, maxLifetime: 500, evictionInterval: 100 });
    await pool.ready();
    time.advance(500); // sweeps at 100..500: age 500 is not past the limit
    expect(f.destroyedIds).toEqual([]);
    time.advance(100);
    await flush();
    expect(f.destroyedIds).toEqual([1]);
    expect(pool.size).toBe(1); // replaced to keep min
    expect(f.made).toHaveLength(2);
  });
});

describe('idle timeout', () => {
  test('idle exactly idleTimeout is kept, one more ms is evicted, never below min', async () => {
    const { pool, time, f } = makePool({ max: 3, min: 1, idleTimeout: 1000 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    pool.release(a);
    pool.release(b);
    time.now += 1000;
    expect(pool.evict()).toBe(0);
    time.now += 1;
    expect(pool.evict()).toBe(1);
    // The least recently used went first; min keeps the other.
    expect(f.destroyedIds).toEqual([a.id]);
    expect(pool.size).toBe(1);
    time.now += 10_000;
    expect(pool.evict()).toBe(0);
  });

  test('the eviction timer is armed through the injected timers and stops on close', async () => {
    const { pool, time } = makePool({ idleTimeout: 50, evictionInterval: 10 });
    expect(time.pending).toBe(1);
    const a = await pool.acquire();
    pool.release(a);
    time.advance(60);
    expect(pool.size).toBe(0);
    await pool.close();
    expect(time.pending).toBe(0);
  });
});

describe('timeouts and errors', () => {
  test('exhaustion is a PoolTimeoutError at exactly the timeout, counted as a timeout, not an error', async () => {
    const { pool, time } = makePool({ max: 1, acquireTimeout: 5000 });
    const a = await pool.acquire();
    const waiting = pool.acquire();
    const seen = waiting.catch((e: unknown) => e);
    time.advance(4999);
    await flush();
    expect(pool.waiting).toBe(1);
    time.advance(1);
    const err = (await seen) as PoolTimeoutError;
    expect(err).toBeInstanceOf(PoolTimeoutError);
    expect(err.code).toBe('ERR_POOL_TIMEOUT');
    expect(err).toMatchObject({ waited: 5000, timeout: 5000, max: 1, inUse: 1, waiting: 0 });
    expect(pool.metrics()).toMatchObject({ requests: 2, successes: 1, timeouts: 1, errors: 0, waiting: 0 });
    pool.release(a);
    // The timed-out request does not take the released resource.
    expect(pool.idle).toBe(1);
  });

  test('a failing create() rejects the request that asked for it and counts as an error', async () => {
    let fail = true;
    const f = factory();
    const create = f.create;
    f.create = () => {
      if (fail) throw new Error('refused by server');
      return create();
    };
    const { pool } = makePool({}, f);
    const err = await pool.acquire().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolCreateError);
    expect((err as PoolCreateError).code).toBe('ERR_POOL_CREATE');
    expect((err as Error & { cause: Error }).cause.message).toBe('refused by server');
    fail = false;
    const ok = await pool.acquire();
    expect(pool.metrics()).toMatchObject({ requests: 2, successes: 1, errors: 1, timeouts: 0, createFailures: 1, created: 1 });
    pool.release(ok);
  });

  test('an async create() rejection is an error too, and frees the slot', async () => {
    const { pool } = makePool({ max: 1 }, factory({ create: () => Promise.reject(new Error('nope')) }));
    await expect(pool.acquire()).rejects.toMatchObject({ code: 'ERR_POOL_CREATE' });
    expect(pool.pending).toBe(0);
    expect(pool.metrics().errors).toBe(1);
  });

  test('validate() false destroys the resource and serves the request with another', async () => {
    const bad = new Set<number>();
    const f = factory({ validate: (c: Conn) => !bad.has(c.id) });
    const { pool } = makePool({ max: 2 }, f);
    const a = await pool.acquire();
    pool.release(a);
    bad.add(a.id);
    const b = await pool.acquire();
    expect(b.id).toBe(2);
    expect(f.destroyedIds).toEqual([1]);
    expect(pool.metrics()).toMatchObject({ validateFailures: 1, errors: 0, successes: 2 });
    pool.release(b);
  });

  test('factory failures nobody can receive go to factoryError and never throw', async () => {
    const f = factory({
      destroy: () => {
        throw new Error('destroy failed');
      },
    });
    const { pool } = makePool({ maxLifetime: 10 }, f);
    const seen: string[] = [];
    pool.on('factoryError', (e: { operation: string }) => seen.push(e.operation));
    const a = await pool.acquire();
    await pool.destroy(a);
    expect(seen).toEqual(['destroy']);
    expect(pool.metrics().destroyFailures).toBe(1);
  });

  test('an aborted request rejects with the reason and is not counted for health', async () => {
    const { pool } = makePool({ max: 1 });
    const a = await pool.acquire();
    const ac = new AbortController();
    const p = pool.acquire({ signal: ac.signal });
    ac.abort(new Error('gone'));
    await expect(p).rejects.toThrow('gone');
    expect(pool.metrics()).toMatchObject({ cancelled: 1, waiting: 0, healthScore: 100 });
    pool.release(a);
  });
});

describe('what create() and use() are given', () => {
  test('create() that returns no object fails the request with ERR_POOL_CREATE', async () => {
    for (const value of [undefined, null, 42, 'conn']) {
      const pool = new ResourcePool<unknown>({ create: async () => value, destroy: () => {} }, { max: 2 });
      const err = await pool.acquire().catch((e: unknown) => e);
      expect([String(value), (err as { code?: string }).code]).toEqual([String(value), 'ERR_POOL_CREATE']);
      expect(pool.metrics()).toMatchObject({ size: 0, inUse: 0, successes: 0 });
      await pool.close();
    }
  });

  test('use(): a function that destroys or releases its resource keeps its result; a later loan of it is not released', async () => {
    const { pool, f } = makePool({ max: 1 });
    expect(await pool.use(async (c) => {
      await pool.destroy(c);
      return 'recovered';
    })).toBe('recovered');
    let other: Conn | null = null;
    expect(await pool.use(async (c) => {
      pool.release(c);
      other = await pool.acquire(); // the same resource, lent again
      return 'released';
    })).toBe('released');
    expect(other).toBe(f.made[1]);
    expect(pool.metrics().inUse).toBe(1); // the second loan is still out
    pool.release(other!);
    await pool.close();
  });
});

describe('a pool dropped without close()', () => {
  test('gives its budget charge back once collected, with idle and lifetime sweeps armed too', async () => {
    const v8 = await import('node:v8');
    const vm = await import('node:vm');
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    for (const opts of [{}, { idleTimeout: 60_000 }, { maxLifetime: 3_600_000 }]) {
      const memory = new LimitedAllocator('1MiB');
      await (async () => {
        const pool = new ResourcePool(factory(), { max: 2, budget: memory, resourceSize: 1000, ...opts });
        pool.release(await pool.acquire());
      })();
      expect(memory.allocatedBytes).toBe(1000);
      for (let i = 0; i < 50 && memory.allocatedBytes !== 0; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 10));
      }
      expect([JSON.stringify(opts), memory.allocatedBytes]).toEqual([JSON.stringify(opts), 0]);
      memory.close();
    }
  });
});

describe('a validate() that refuses every resource', () => {
  test('gives the event loop a turn between replacements, so the acquire timeout fires', async () => {
    let made = 0;
    const f = factory({ validate: () => false });
    const create = f.create;
    f.create = () => {
      // A cap far above what the turns between here and the timeout allow.
      if (++made > 200_000) throw new Error('create() called without end');
      return create();
    };
    const { pool, time } = makePool({ acquireTimeout: 50 }, f);
    const p = pool.acquire();
    p.catch(() => {});
    await flush();
    time.advance(50);
    expect(pool.metrics().timeouts).toBe(1);
    await expect(p).rejects.toBeInstanceOf(PoolTimeoutError);
    expect(made).toBeLessThan(200_000);
    expect(pool.metrics().validateFailures).toBeGreaterThan(0);
    await pool.close();
  });
});

describe('requests and creations in flight', () => {
  test('a request that times out while its create() runs: the resource goes idle, one timeout, no error', async () => {
    let finish!: (c: Conn) => void;
    const f = factory({ create: () => new Promise<Conn>((r) => (finish = r)) });
    const { pool, time } = makePool({ max: 1, acquireTimeout: 100 }, f);
    const seen = pool.acquire().catch((e: unknown) => e);
    expect(pool.pending).toBe(1);
    time.advance(100);
    expect(await seen).toBeInstanceOf(PoolTimeoutError);
    finish({ id: 7, closed: false });
    await flush();
    expect(pool.metrics()).toMatchObject({ timeouts: 1, errors: 0, created: 1, idle: 1, inUse: 0, pending: 0 });
    // the next request gets it at once
    const c = await pool.acquire();
    expect(c.id).toBe(7);
    pool.release(c);
  });

  test('close() while create() runs destroys the resource when it arrives, then resolves', async () => {
    let finish!: (c: Conn) => void;
    const f = factory({ create: () => new Promise<Conn>((r) => (finish = r)) });
    const { pool } = makePool({ max: 1 }, f);
    const req = pool.acquire().catch((e: unknown) => e);
    let closed = false;
    const done = pool.close().then(() => (closed = true));
    expect(await req).toBeInstanceOf(PoolClosedError);
    await flush();
    expect(closed).toBe(false);
    const c = { id: 9, closed: false };
    finish(c);
    await done;
    expect(c.closed).toBe(true);
    expect(pool.metrics()).toMatchObject({ size: 0, created: 1, destroyed: 1 });
  });

  test('a failing create() for min is reported to factoryError, never thrown', async () => {
    const seen: unknown[] = [];
    const f = factory({
      create: () => {
        throw new Error('db down');
      },
    });
    const time = new ManualTime();
    const pool = new ResourcePool<Conn>(f, { max: 2, min: 1, clock: time.clock, timers: time });
    pool.on('factoryError', (e: { operation: string; error: Error }) => seen.push(e.error.message));
    await pool.ready();
    expect(pool.metrics()).toMatchObject({ createFailures: 1, errors: 0, requests: 0 });
    await pool.close();
  });

  test('a destroy() that throws inside the eviction timer is counted and never escapes', async () => {
    const f = factory({
      destroy: () => {
        throw new Error('cannot close');
      },
    });
    const { pool, time } = makePool({ idleTimeout: 10, evictionInterval: 5 }, f);
    const a = await pool.acquire();
    pool.release(a);
    expect(() => time.advance(20)).not.toThrow();
    expect(pool.metrics()).toMatchObject({ destroyed: 1, destroyFailures: 1, size: 0 });
  });

  test('validate() that throws counts as a validate failure and the request still gets a resource', async () => {
    let calls = 0;
    const f = factory({
      validate: () => {
        calls++;
        if (calls === 2) throw new Error('ping failed');
        return true;
      },
    });
    const { pool } = makePool({ max: 2 }, f);
    const a = await pool.acquire(); // validate #1 (fresh)
    pool.release(a);
    const b = await pool.acquire(); // #2 throws on a, #3 on a fresh one
    expect(b).not.toBe(a);
    expect(pool.metrics()).toMatchObject({ validateFailures: 1, successes: 2, errors: 0, destroyed: 1 });
    pool.release(b);
  });
});

describe('health and metrics', () => {
  test('score bands at their exact edges', () => {
    expect(poolHealthScore({ successes: 0, timeouts: 0, errors: 0 })).toBe(100);
    expect(poolHealthScore({ successes: 95, timeouts: 3, errors: 2 })).toBe(95);
    expect(poolHealthStatus(95)).toBe('healthy');
    expect(poolHealthStatus(94.99)).toBe('degraded');
    expect(poolHealthScore({ successes: 80, timeouts: 10, errors: 10 })).toBe(80);
    expect(poolHealthStatus(80)).toBe('degraded');
    expect(poolHealthStatus(79.99)).toBe('unhealthy');
    expect(codeOf(() => poolHealthStatus(NaN as unknown as number))).toBe('ERR_OUT_OF_RANGE');
  });

  test('utilisation is (created − idle) / max over live resources', async () => {
    const { pool } = makePool({ max: 4 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    const c = await pool.acquire();
    pool.release(c);
    expect(pool.metrics()).toMatchObject({ size: 3, idle: 1, inUse: 2, utilisation: 0.5 });
    pool.release(a);
    pool.release(b);
  });

  test('wait p50/p99 come from the injected clock', async () => {
    const { pool, time } = makePool({ max: 1, acquireTimeout: Infinity });
    const a = await pool.acquire();
    const p = pool.acquire();
    time.now += 40;
    pool.release(a);
    const b = await p;
    const m = pool.metrics();
    expect(m.waitP50).toBe(0);
    expect(m.waitP99).toBe(40);
    pool.release(b);
  });

  test('uptime keeps counting across reset(); rates use a window floored at one second', async () => {
    const { pool, time } = makePool({ max: 2 });
    const a = await pool.acquire();
    pool.release(a);
    time.now += 250;
    let m = pool.metrics();
    expect(m.requests).toBe(1);
    expect(m.rates.requestsPerSec).toBe(1); // 1 request over max(250 ms, 1 s)
    time.now += 1750;
    expect(pool.metrics().rates.requestsPerSec).toBe(0.5);
    pool.reset();
    time.now += 10;
    m = pool.metrics();
    expect(m).toMatchObject({ requests: 0, successes: 0, created: 0, uptimeMs: 2010, elapsedMs: 10, healthScore: 100 });
    expect(m.rates.requestsPerSec).toBe(0);
    // live figures are not counters: they survive the reset
    expect(m.idle).toBe(1);
  });
});

describe('budget charging', () => {
  test('a fixed size is reserved before create(); a refusal creates nothing and is an error', async () => {
    const budget = Budget.create(250);
    const { pool, f } = makePool({ max: 3, budget, resourceSize: 100 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect(budget.used).toBe(200);
    const err = await pool.acquire().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolBudgetError);
    expect(err).toMatchObject({ code: 'ERR_POOL_BUDGET', requested: 100, limit: 250, current: 200 });
    expect(f.made).toHaveLength(2);
    expect(pool.metrics()).toMatchObject({ errors: 1, chargedBytes: 200 });
    pool.release(a);
    pool.release(b);
    await pool.close();
    expect(budget.used).toBe(0);
    budget.close();
  });

  test('a size function charges a LimitedAllocator per resource and gives it back on destroy', async () => {
    const alloc = new LimitedAllocator(1000);
    const { pool, f } = makePool({ max: 3, budget: alloc, resourceSize: (c: Conn) => c.id * 100 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect(alloc.allocatedBytes).toBe(300);
    await pool.destroy(a);
    expect(alloc.allocatedBytes).toBe(200);
    pool.release(b);
    await pool.close();
    expect(alloc.allocatedBytes).toBe(0);
    expect(f.destroyedIds.sort()).toEqual([1, 2]);
    alloc.close();
  });

  test('a created resource the budget refuses is destroyed and the request fails', async () => {
    const alloc = new LimitedAllocator(150);
    const { pool, f } = makePool({ max: 3, budget: alloc, resourceSize: (c: Conn) => c.id * 100 });
    const a = await pool.acquire();
    await expect(pool.acquire()).rejects.toMatchObject({ code: 'ERR_POOL_BUDGET', requested: 200 });
    expect(f.destroyedIds).toEqual([2]);
    expect(pool.size).toBe(1);
    pool.release(a);
    await pool.close();
    alloc.close();
  });
});

describe('drain and close', () => {
  test('drain() serves the waiting, waits for loans, then destroys everything', async () => {
    const { pool, f } = makePool({ max: 1 });
    const a = await pool.acquire();
    const waiting = pool.acquire();
    let drained = false;
    const d = pool.drain().then(() => {
      drained = true;
    });
    await expect(pool.acquire()).rejects.toBeInstanceOf(PoolClosedError);
    pool.release(a);
    const b = await waiting;
    expect(b).toBe(a);
    await flush();
    expect(drained).toBe(false);
    pool.release(b);
    await d;
    expect(f.destroyedIds).toEqual([1]);
    expect(pool.metrics()).toMatchObject({ size: 0, inUse: 0, rejected: 1 });
  });

  test('close() rejects the waiting at once and resolves after the last loan is destroyed', async () => {
    const { pool, f, time } = makePool({ max: 1, min: 1 });
    const a = await pool.acquire();
    const waiting = pool.acquire().catch((e: unknown) => e);
    const closed = pool.close();
    expect(await waiting).toBeInstanceOf(PoolClosedError);
    expect(pool.closed).toBe(true);
    pool.release(a);
    await closed;
    expect(f.destroyedIds).toEqual([1]);
    expect(time.pending).toBe(0);
    expect(await pool.close()).toBeUndefined(); // idempotent
  });

  test('Symbol.asyncDispose closes the pool', async () => {
    const f = factory();
    {
      await using pool = new ResourcePool(f, { max: 1 });
      pool.release(await pool.acquire());
    }
    expect(f.destroyedIds).toEqual([1]);
  });
});
