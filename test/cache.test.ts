import { afterEach, describe, expect, it, vi } from 'vitest';
import { codeOf } from './helpers';
import { LimitedAllocator } from '../src/allocator';
import { BudgetedCache, CacheLease, type BudgetedCacheOptions, type DisposeReason } from '../src/cache';

const closers: { close(): void }[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c.close();
});

interface Model {
  name: string;
  weights: Buffer;
  destroyed: boolean;
}

function model(name: string, bytes = 10): Model {
  return { name, weights: Buffer.alloc(bytes, 1), destroyed: false };
}

/** A cache of models charged by their weights' size, with an injected clock and a dispose log. */
function setup(options: Partial<BudgetedCacheOptions<string, Model>> = {}, limit = 100) {
  const clock = { t: 0 };
  const disposed: [string, DisposeReason][] = [];
  const allocator = options.allocator ?? new LimitedAllocator(limit);
  if (!options.allocator) closers.push(allocator);
  const cache = new BudgetedCache<string, Model>({
    allocator,
    sizeOf: (m) => m.weights.length,
    now: () => clock.t,
    dispose: (m, key, reason) => {
      m.destroyed = true;
      disposed.push([key, reason]);
    },
    ...options,
  });
  closers.push(cache);
  return { cache, clock, disposed, allocator };
}

describe('LRU order', () => {
  it('evicts the least recently used entry; get() and set() make an entry most recent', () => {
    const { cache, disposed } = setup({ maxEntries: 3 });
    cache.set('a', model('a'));
    cache.set('b', model('b'));
    cache.set('c', model('c'));
    expect([...cache.keys()]).toEqual(['c', 'b', 'a']);
    cache.get('a');
    expect([...cache.keys()]).toEqual(['a', 'c', 'b']);
    cache.set('d', model('d'));
    expect(disposed).toEqual([['b', 'evict']]);
    expect([...cache.keys()]).toEqual(['d', 'a', 'c']);
    // peek and has do not change the order
    cache.peek('c');
    cache.has('c');
    cache.set('e', model('e'));
    expect(disposed.map(([k]) => k)).toEqual(['b', 'c']);
    expect([...cache.keys()]).toEqual(['e', 'd', 'a']);
    expect(cache.stats().evictions).toBe(2);
  });

  it('returns the same object on repeated gets', () => {
    const { cache } = setup();
    const m = model('a');
    cache.set('a', m);
    expect(cache.get('a')).toBe(m);
    expect(cache.get('a')).toBe(cache.get('a'));
    expect(cache.peek('a')).toBe(m);
  });
});

describe('keys() while the cache changes', () => {
  it('yields the keys live at the call, most recent first, once each, whatever the loop reads or writes', () => {
    const { cache } = setup({ maxEntries: 10 });
    for (const k of ['a', 'b', 'c', 'd', 'e']) cache.set(k, model(k));
    const seen: string[] = [];
    for (const k of cache.keys()) {
      seen.push(k);
      expect(seen.length).toBeLessThanOrEqual(5); // an iterator that follows a moved entry never ends
      cache.get(k); // the key just yielded becomes most recent
      if (k === 'e') cache.get('b'); // and one not reached yet
      if (k === 'd') {
        cache.set('f', model('f')); // added meanwhile: not yielded
        expect(cache.delete('a')).toBe(true); // removed before it is reached: skipped
      }
    }
    expect(seen).toEqual(['e', 'd', 'c', 'b']);
    expect([...cache.keys()]).toEqual(['b', 'c', 'f', 'd', 'e']);
  });

  it('removing the key just yielded does not end the iteration; a slot reused meanwhile changes nothing', () => {
    const { cache } = setup({ maxEntries: 10 });
    for (const k of ['a', 'b', 'c']) cache.set(k, model(k));
    const seen: string[] = [];
    for (const k of cache.keys()) {
      seen.push(k);
      cache.delete(k);
      cache.set(`${k}2`, model(`${k}2`)); // takes the freed slot
    }
    expect(seen).toEqual(['c', 'b', 'a']);
    expect([...cache.keys()]).toEqual(['a2', 'b2', 'c2']);
  });
});

describe('byte budget', () => {
  it('charges entries to the allocator and evicts LRU entries when the budget would be exceeded', () => {
    const { cache, allocator, disposed } = setup({}, 100);
    expect(cache.set('a', model('a', 40))).toBe(true);
    expect(cache.set('b', model('b', 40))).toBe(true);
    expect(allocator.allocatedBytes).toBe(80);
    expect(cache.bytes).toBe(80);
    cache.get('a');
    expect(cache.set('c', model('c', 40))).toBe(true); // b goes
    expect(disposed).toEqual([['b', 'evict']]);
    expect(allocator.allocatedBytes).toBe(80);
    expect(cache.set('d', model('d', 100))).toBe(true); // everything else goes
    expect([...cache.keys()]).toEqual(['d']);
    expect(allocator.allocatedBytes).toBe(100);
    expect(cache.bytes).toBe(100);
  });

  it('refuses an entry larger than the budget without evicting anything', () => {
    const { cache, allocator } = setup({}, 100);
    cache.set('a', model('a', 50));
    expect(cache.set('huge', model('huge', 101))).toBe(false);
    expect(cache.has('a')).toBe(true);
    expect(cache.has('huge')).toBe(false);
    expect(allocator.allocatedBytes).toBe(50);
    expect(cache.stats().rejected).toBe(1);
  });

  it('keeps to maxBytes below the allocator limit', () => {
    const { cache, allocator } = setup({ maxBytes: 50 }, 1000);
    cache.set('a', model('a', 30));
    cache.set('b', model('b', 30));
    expect([...cache.keys()]).toEqual(['b']);
    expect(allocator.allocatedBytes).toBe(30);
    expect(cache.set('c', model('c', 51))).toBe(false);
  });

  it('on a shared budget only evicts its own entries, and gives up when others hold the rest', () => {
    const name = `cache-test-${process.pid}`;
    const allocator = LimitedAllocator.shared(name, 100);
    const other = LimitedAllocator.shared(name);
    closers.push(allocator, other);
    const { cache } = setup({ allocator });
    cache.set('a', model('a', 20));
    cache.set('b', model('b', 20));
    other.reserveBytes(60); // 100 of 100 in use
    expect(cache.set('c', model('c', 20))).toBe(true); // evicts a
    expect([...cache.keys()]).toEqual(['c', 'b']);
    expect(cache.set('d', model('d', 45))).toBe(false); // evicts b and c: still only 40 free
    expect(cache.size).toBe(0);
    expect(allocator.allocatedBytes).toBe(60);
    expect(other.heldBytes).toBe(60);
    expect(cache.stats()).toMatchObject({ rejected: 1, evictions: 3, bytes: 0 });
  });

  it('can own a private allocator', () => {
    const cache = new BudgetedCache<string, Buffer>({ maxBytes: '1KiB' });
    closers.push(cache);
    expect(cache.allocator.limit).toBe(1024);
    cache.set('a', Buffer.alloc(1000)); // ArrayBuffer views are measured by default
    expect(cache.allocator.allocatedBytes).toBe(1000);
    cache.close();
    expect(cache.allocator.closed).toBe(true);
    expect(cache.set('b', Buffer.alloc(1))).toBe(false);
  });

  it('replacing an entry disposes the old value and recharges', () => {
    const { cache, allocator, disposed } = setup();
    const a1 = model('a1', 30);
    cache.set('a', a1);
    cache.set('a', model('a2', 50));
    expect(disposed).toEqual([['a', 'set']]);
    expect(a1.destroyed).toBe(true);
    expect(allocator.allocatedBytes).toBe(50);
    expect(cache.get('a')!.name).toBe('a2');
    // the same value again is not disposed
    cache.set('a', cache.get('a')!, { size: 60 });
    expect(disposed).toHaveLength(1);
    expect(allocator.allocatedBytes).toBe(60);
  });

  it('overwriting a key: bytes follow the new size exactly, the entry becomes most recent, its ttl restarts', () => {
    const { cache, allocator, disposed, clock } = setup({ ttlMs: 100 });
    cache.set('a', model('a1', 30));
    cache.set('b', model('b', 20));
    clock.t = 50;
    cache.set('a', model('a2', 10)); // smaller
    expect(allocator.allocatedBytes).toBe(30);
    expect(cache.stats()).toMatchObject({ entries: 2, bytes: 30 });
    cache.set('a', model('a3', 40)); // larger, with room
    expect(allocator.allocatedBytes).toBe(60);
    expect(disposed).toEqual([
      ['a', 'set'],
      ['a', 'set'],
    ]);
    // 'a' is the most recent: the next eviction takes 'b'.
    cache.set('c', model('c', 50));
    expect([...cache.keys()].sort()).toEqual(['a', 'c']);
    expect(disposed.at(-1)).toEqual(['b', 'evict']);
    // The overwrite at t=50 restarted a's time-to-live: alive at 150, gone after.
    clock.t = 150;
    expect(cache.get('a')!.name).toBe('a3');
    clock.t = 151;
    expect(cache.get('a')).toBeUndefined();
  });

  it('overwriting with a value that needs room evicts others, never the entry itself; one that cannot fit is refused', () => {
    const { cache, allocator, disposed } = setup({}, 100);
    cache.set('a', model('a1', 40));
    cache.set('b', model('b', 40));
    cache.set('a', model('a2', 70)); // 40 + 70 > 100: 'b' goes, 'a' stays
    expect([...cache.keys()]).toEqual(['a']);
    expect(allocator.allocatedBytes).toBe(70);
    expect(disposed).toEqual([
      ['a', 'set'],
      ['b', 'evict'],
    ]);
    expect(cache.set('a', model('a3', 101))).toBe(false); // above the whole budget
    expect(cache.has('a')).toBe(false);
    expect(allocator.allocatedBytes).toBe(0);
  });

  it('overwriting an acquired entry keeps the lease on the old value until it is released', () => {
    const { cache, allocator, disposed } = setup();
    const a1 = model('a1', 30);
    cache.set('a', a1);
    const lease = cache.acquire('a')!;
    cache.set('a', model('a2', 20));
    expect(lease.value).toBe(a1);
    expect(a1.destroyed).toBe(false);
    expect(allocator.allocatedBytes).toBe(50); // the leased bytes stay charged
    lease.release();
    expect(disposed).toEqual([['a', 'set']]);
    expect(allocator.allocatedBytes).toBe(20);
    expect(cache.get('a')!.name).toBe('a2');
  });

  it('clear() and delete() give every byte back', () => {
    const { cache, allocator, disposed } = setup();
    cache.set('a', model('a', 30));
    cache.set('b', model('b', 30));
    expect(cache.delete('a')).toBe(true);
    expect(cache.delete('a')).toBe(false);
    cache.clear();
    expect(disposed).toEqual([
      ['a', 'delete'],
      ['b', 'clear'],
    ]);
    expect(allocator.allocatedBytes).toBe(0);
    expect(cache.bytes).toBe(0);
  });
});

describe('time-to-live', () => {
  it('returns an entry up to exactly its TTL and never after', () => {
    const { cache, clock, disposed, allocator } = setup({ ttlMs: 1000 });
    clock.t = 5000;
    cache.set('a', model('a'));
    clock.t = 6000; // exactly 1000 ms old: not strictly older than the TTL
    expect(cache.get('a')?.name).toBe('a');
    expect(cache.has('a')).toBe(true);
    clock.t = 6000.001;
    expect(cache.peek('a')).toBeUndefined();
    expect(cache.has('a')).toBe(false);
    expect([...cache.keys()]).toEqual([]);
    expect(cache.get('a')).toBeUndefined();
    expect(disposed).toEqual([['a', 'expire']]);
    expect(allocator.allocatedBytes).toBe(0);
    expect(cache.stats().expirations).toBe(1);
  });

  it('counts from set(), not from the last get(), and honours a per-entry TTL', () => {
    const { cache, clock } = setup({ ttlMs: 100 });
    cache.set('a', model('a'));
    cache.set('b', model('b'), { ttlMs: 10 });
    cache.set('forever', model('f'), { ttlMs: Infinity });
    clock.t = 10;
    expect(cache.get('b')).toBeDefined();
    clock.t = 11;
    expect(cache.get('b')).toBeUndefined();
    clock.t = 100;
    expect(cache.get('a')).toBeDefined();
    clock.t = 101;
    expect(cache.get('a')).toBeUndefined();
    clock.t = 1e12;
    expect(cache.get('forever')).toBeDefined();
  });

  it('a TTL of 0 keeps an entry only while the clock stands still', () => {
    const { cache, clock } = setup({ ttlMs: 0 });
    cache.set('a', model('a'));
    expect(cache.get('a')).toBeDefined();
    clock.t = 1;
    expect(cache.get('a')).toBeUndefined();
  });

  it('purgeStale() drops every expired entry at once', () => {
    const { cache, clock, allocator } = setup({ ttlMs: 50 });
    cache.set('a', model('a'));
    clock.t = 30;
    cache.set('b', model('b'));
    clock.t = 51;
    expect(cache.purgeStale()).toBe(1);
    expect(cache.size).toBe(1);
    expect(allocator.allocatedBytes).toBe(10);
  });

  it('getOrCreate recreates an expired entry', async () => {
    const { cache, clock } = setup({ ttlMs: 10 });
    let calls = 0;
    const factory = (key: string) => model(`${key}${++calls}`);
    expect((await cache.getOrCreate('a', factory)).name).toBe('a1');
    clock.t = 10;
    expect((await cache.getOrCreate('a', factory)).name).toBe('a1');
    clock.t = 11;
    expect((await cache.getOrCreate('a', factory)).name).toBe('a2');
  });
});

describe('hit rate and figures', () => {
  it('counts hits and misses', () => {
    const { cache } = setup();
    expect(cache.hitRate).toBe(0);
    cache.set('a', model('a'));
    cache.get('a');
    cache.get('a');
    cache.get('a');
    cache.get('missing');
    expect(cache.hitRate).toBe(0.75);
    cache.peek('a'); // not counted
    expect(cache.stats()).toMatchObject({ hits: 3, misses: 1, hitRate: 0.75, entries: 1, bytes: 10, allocatorBytes: 10, allocatorLimit: 100 });
  });
});

describe('holders of evicted entries', () => {
  it('a holder of an evicted entry still reads it', () => {
    const { cache } = setup({}, 20);
    const held = cache.get('a') ?? (cache.set('a', model('a', 20)), cache.get('a')!);
    cache.set('b', model('b', 20)); // evicts a
    expect(cache.has('a')).toBe(false);
    expect(held.name).toBe('a');
    expect(held.weights.length).toBe(20);
    expect(held.weights[0]).toBe(1);
  });

  it('an acquired entry that is deleted keeps its bytes charged, and its dispose waits for the last release', () => {
    const { cache, allocator, disposed } = setup({}, 30);
    cache.set('a', model('a', 20));
    const lease = cache.acquire('a')!;
    const lease2 = cache.acquire('a')!;
    expect(lease).toBeInstanceOf(CacheLease);
    expect(cache.has('a')).toBe(true);
    cache.delete('a'); // removed, but still held
    expect(cache.has('a')).toBe(false);
    expect(disposed).toEqual([]);
    expect(lease.value.destroyed).toBe(false);
    expect(allocator.allocatedBytes).toBe(20); // still charged while held
    expect(cache.stats().retained).toBe(1);
    lease.release();
    lease.release(); // idempotent
    expect(disposed).toEqual([]);
    {
      using _l = lease2;
    }
    expect(disposed).toEqual([['a', 'delete']]);
    expect(lease2.value.destroyed).toBe(true);
    expect(allocator.allocatedBytes).toBe(0);
    expect(cache.stats()).toMatchObject({ retained: 0, bytes: 0 });
    expect(cache.acquire('missing')).toBeUndefined();
  });

  it('an acquired entry that expires stays readable until released', () => {
    const { cache, clock, disposed } = setup({ ttlMs: 5 });
    cache.set('a', model('a'));
    const lease = cache.acquire('a')!;
    clock.t = 6;
    expect(cache.get('a')).toBeUndefined();
    expect(lease.value.destroyed).toBe(false);
    lease.release();
    expect(disposed).toEqual([['a', 'expire']]);
  });
});

describe('getOrCreate', () => {
  it('shares one factory call between concurrent callers and caches the result', async () => {
    const { cache, allocator } = setup();
    let calls = 0;
    let finish!: (m: Model) => void;
    const factory = (key: string) => {
      calls++;
      return new Promise<Model>((resolve) => {
        finish = resolve;
      }).then((m) => ({ ...m, name: key }));
    };
    const p1 = cache.getOrCreate('a', factory);
    const p2 = cache.getOrCreate('a', factory);
    const p3 = cache.getOrCreate('a', factory);
    expect(calls).toBe(1);
    expect(cache.stats().pending).toBe(1);
    finish(model('x', 25));
    const [m1, m2, m3] = await Promise.all([p1, p2, p3]);
    expect(m1).toBe(m2);
    expect(m2).toBe(m3);
    expect(cache.get('a')).toBe(m1);
    expect(allocator.allocatedBytes).toBe(25);
    expect(await cache.getOrCreate('a', factory)).toBe(m1);
    expect(calls).toBe(1);
    expect(cache.stats()).toMatchObject({ misses: 1, coalesced: 2, hits: 4, pending: 0 });
  });

  it('a rejected creation is not cached and the next call retries', async () => {
    const { cache } = setup();
    let calls = 0;
    const factory = async (key: string) => {
      if (++calls === 1) throw new Error('load failed');
      return model(key);
    };
    const p1 = cache.getOrCreate('a', factory);
    const p2 = cache.getOrCreate('a', factory);
    await expect(p1).rejects.toThrow('load failed');
    await expect(p2).rejects.toThrow('load failed');
    expect(cache.has('a')).toBe(false);
    expect((await cache.getOrCreate('a', factory)).name).toBe('a');
    expect(calls).toBe(2);
  });

  it('a synchronous throw rejects the promise', async () => {
    const { cache } = setup();
    await expect(
      cache.getOrCreate('a', () => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(cache.stats().pending).toBe(0);
  });

  it('set() or delete() while a creation is in flight wins', async () => {
    const { cache } = setup();
    let finish!: (m: Model) => void;
    const slow = () => new Promise<Model>((r) => (finish = r));
    const p = cache.getOrCreate('a', slow);
    const mine = model('mine');
    cache.set('a', mine);
    finish(model('created'));
    expect((await p).name).toBe('created'); // the caller gets what it waited for
    expect(cache.get('a')).toBe(mine); // the cache keeps what was set
    const q = cache.getOrCreate('b', slow);
    cache.delete('b');
    finish(model('late'));
    await q;
    expect(cache.has('b')).toBe(false);
  });

  it('a factory that asks for its own key joins its own creation', async () => {
    const { cache } = setup();
    let calls = 0;
    let inner: Promise<Model> | undefined;
    const m = await cache.getOrCreate('a', async (key) => {
      calls++;
      inner = cache.getOrCreate('a', () => model('other'));
      return model(key);
    });
    expect(calls).toBe(1);
    expect(await inner).toBe(m);
  });

  it('sync factories: getOrCreate caches at once; getOrCreateSync returns the value', async () => {
    const { cache } = setup();
    const p = cache.getOrCreate('a', (k) => model(k));
    expect(cache.has('a')).toBe(true);
    expect((await p).name).toBe('a');
    const b = cache.getOrCreateSync('b', (k) => model(k), { size: 7 });
    expect(cache.getOrCreateSync('b', () => model('never'))).toBe(b);
    expect(cache.bytes).toBe(17);
    expect(codeOf(() => cache.getOrCreateSync('c', () => Promise.resolve(model('c')) as unknown as Model))).toBe('ERR_INVALID_ARG_VALUE');
    expect(cache.has('c')).toBe(false);
  });

  it('a created value that does not fit is returned but not cached', async () => {
    const { cache, allocator } = setup({}, 50);
    const big = await cache.getOrCreate('big', () => model('big', 60));
    expect(big.name).toBe('big');
    expect(cache.has('big')).toBe(false);
    expect(allocator.allocatedBytes).toBe(0);
    expect(cache.stats().rejected).toBe(1);
    const sized = await cache.getOrCreate('s', async () => model('s', 1), { size: (m) => m.weights.length * 10 });
    expect(sized.name).toBe('s');
    expect(cache.bytes).toBe(10);
  });
});

describe('degradation', () => {
  function filled() {
    const ctx = setup({ maxBytes: 1000 }, 10_000);
    for (let i = 0; i < 10; i++) ctx.cache.set(`k${i}`, model(`k${i}`, 100));
    return ctx;
  }

  it('evictOnLevel caps the cache at a fraction of its capacity until the level falls', () => {
    const { cache, disposed, allocator } = filled();
    cache.get('k0'); // most recently used survives
    expect(cache.evictOnLevel('reduced')).toBe(500);
    expect(cache.bytes).toBe(500);
    expect(cache.levelFraction).toBe(0.5);
    expect([...cache.keys()]).toEqual(['k0', 'k9', 'k8', 'k7', 'k6']);
    expect(disposed.every(([, r]) => r === 'shrink')).toBe(true);
    cache.set('new', model('new', 100)); // still capped
    expect(cache.bytes).toBe(500);
    expect(cache.evictOnLevel('MINIMAL')).toBe(300);
    expect(cache.evictOnLevel(3)).toBe(200);
    expect(cache.size).toBe(0);
    expect(cache.set('x', model('x', 1))).toBe(false);
    expect(cache.evictOnLevel('normal')).toBe(0);
    expect(cache.set('x', model('x', 1000))).toBe(true);
    expect(allocator.allocatedBytes).toBe(1000);
  });

  it('evictOnLevel without maxBytes uses the allocator limit', () => {
    const { cache } = setup({}, 1000);
    for (let i = 0; i < 10; i++) cache.set(`k${i}`, model(`k${i}`, 100));
    cache.evictOnLevel('minimal');
    expect(cache.bytes).toBe(200);
  });

  it('evictOnLevel accepts custom fractions and rejects unknown levels', () => {
    const { cache } = setup({ maxBytes: 1000, levelFractions: { reduced: 0.8 } }, 10_000);
    for (let i = 0; i < 10; i++) cache.set(`k${i}`, model(`k${i}`, 100));
    cache.evictOnLevel('reduced');
    expect(cache.bytes).toBe(800);
    expect(codeOf(() => cache.evictOnLevel('panic'))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => cache.evictOnLevel(4))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => cache.evictOnLevel({} as unknown as string))).toBe('ERR_INVALID_ARG_TYPE');
    expect(cache.bytes).toBe(800);
  });

  it('shrinkTo evicts down to a fraction of the bytes held now; an acquired entry leaves but gives its bytes back on release', () => {
    const { cache } = filled();
    const lease = cache.acquire('k0')!;
    expect(cache.shrinkTo(0.5)).toBe(500);
    expect(cache.shrinkTo(0)).toBe(400);
    expect([...cache.keys()]).toEqual([]);
    expect(cache.bytes).toBe(100);
    lease.release();
    expect(cache.bytes).toBe(0);
    expect(cache.shrinkTo(0)).toBe(0);
    expect(codeOf(() => cache.shrinkTo(1.5))).toBe('ERR_OUT_OF_RANGE');
  });
});

describe('dispose hook and arguments', () => {
  it('an error thrown by dispose does not interrupt the cache; it is rethrown asynchronously', () => {
    const boom = new Error('dispose failed');
    const { cache, allocator } = setup(
      {
        dispose: () => {
          throw boom;
        },
      },
      20,
    );
    cache.set('a', model('a', 20));
    const ticks: (() => void)[] = [];
    const spy = vi.spyOn(process, 'nextTick').mockImplementation(((fn: () => void) => {
      ticks.push(fn);
    }) as typeof process.nextTick);
    let stored: boolean;
    try {
      stored = cache.set('b', model('b', 20));
      expect(ticks).toHaveLength(1);
      expect(allocator.allocatedBytes).toBe(20);
      cache.clear();
    } finally {
      spy.mockRestore();
    }
    expect(stored).toBe(true);
    expect(allocator.allocatedBytes).toBe(0);
    expect(ticks).toHaveLength(2);
    expect(() => ticks[0]!()).toThrow(boom);
  });

  it('rejects bad sizes and options, changing nothing', () => {
    const { cache, allocator } = setup();
    for (const bad of [-1, NaN, 1.5, Infinity, 2 ** 53]) {
      expect(codeOf(() => cache.set('a', model('a'), { size: bad }))).toBe('ERR_OUT_OF_RANGE');
    }
    expect(codeOf(() => cache.set('a', model('a'), { size: '10' as unknown as number }))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => cache.set('a', model('a'), { ttlMs: -1 }))).toBe('ERR_OUT_OF_RANGE');
    const plain = new BudgetedCache<string, object>({ allocator });
    closers.push(plain);
    expect(codeOf(() => plain.set('o', {}))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => new BudgetedCache({}))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => new BudgetedCache({ allocator: {} as LimitedAllocator }))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => new BudgetedCache({ maxBytes: 10, maxEntries: 0 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new BudgetedCache({ maxBytes: 10, ttlMs: NaN }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new BudgetedCache({ maxBytes: 10, sizeOf: 3 as unknown as () => number }))).toBe('ERR_INVALID_ARG_TYPE');
    expect(cache.size).toBe(0);
    expect(allocator.allocatedBytes).toBe(0);
  });
});
