/**
 * BudgetedCache: a least-recently-used cache with a time-to-live whose
 * entries' sizes are charged to a {@link LimitedAllocator}.
 *
 * Room is made by evicting the least recently used entries, both when the
 * cache's own cap would be exceeded and when the allocator's budget (which
 * other code, or other threads, may share) refuses the bytes. A degradation
 * controller can lower the cap with {@link BudgetedCache.evictOnLevel}, or
 * shrink the cache once with {@link BudgetedCache.shrinkTo}.
 *
 * Entries strictly older than their time-to-live are never returned: an
 * entry set at `t` with a TTL of `ttl` is returned up to and including
 * `t + ttl` on the cache's clock, and dropped after.
 *
 * Evicting never breaks a caller that holds a value. A value from get() is
 * an ordinary reference and stays usable after eviction; if the `dispose`
 * hook destroys values, hold them with {@link BudgetedCache.acquire}
 * instead. An acquired entry is evicted like any other (so one long-lived
 * holder cannot stop the cache from caching), but leaving the cache does not
 * end it: an entry evicted, deleted, replaced or expired while acquired is no
 * longer found and no longer counted in `size` or `entries`, its bytes stay
 * charged to the allocator (and in `bytes`) and `dispose` waits until the
 * last lease is released.
 *
 * Re-entrancy: while the cache runs a `dispose` callback for one of its own
 * operations, calls that change the cache (set, delete, clear, purgeStale,
 * shrinkTo, evictOnLevel, getOrCreate, getOrCreateSync, close) throw
 * {@link CacheReentrancyError} (`ERR_CACHE_REENTRANT`) and change nothing;
 * reads (get, acquire, peek, has, keys, stats) are allowed. So a callback
 * that re-inserts what was evicted cannot make an operation loop. A
 * `dispose` run by the last {@link CacheLease.release} is outside any cache
 * operation and may change the cache.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { LimitedAllocator } from './allocator';
import { CacheReentrancyError, IllegalConstructorError, InvalidArgTypeError, InvalidArgValueError, OutOfRangeError } from './errors';
import { parseSize, validateBytes, validateFraction, validateFunction, validateInteger, validateObject, type Size } from './validate';

/** Why an entry left the cache, as passed to the `dispose` hook. */
export type DisposeReason =
  /** Least recently used, evicted to make room. */
  | 'evict'
  /** Evicted by shrinkTo() or evictOnLevel(). */
  | 'shrink'
  /** Older than its time-to-live. */
  | 'expire'
  /** Removed by delete(). */
  | 'delete'
  /** Replaced by set() with a different value. */
  | 'set'
  /** Removed by clear() or close(). */
  | 'clear';

/** Degradation levels that {@link BudgetedCache.evictOnLevel} understands (also 0-3). */
export type CacheLevel = 'normal' | 'reduced' | 'minimal' | 'emergency';

/** Guards the lease constructor: only the cache creates leases. */
const TOKEN: unique symbol = Symbol('resource-guard.cache');

const LEVELS: readonly CacheLevel[] = ['normal', 'reduced', 'minimal', 'emergency'];

/** Options of {@link BudgetedCache}. */
export interface BudgetedCacheOptions<K, V> {
  /**
   * The allocator entries are charged to. It may be shared with other code
   * and other threads; the cache only ever releases what it reserved.
   * @default a private allocator of `maxBytes`
   */
  allocator?: LimitedAllocator;
  /**
   * The most bytes the cache itself may hold (a number or a size string such
   * as `'64MiB'`). Required without `allocator`.
   * @default Infinity (only the allocator's budget limits the cache)
   */
  maxBytes?: Size;
  /**
   * The most entries.
   * @default Infinity
   */
  maxEntries?: number;
  /**
   * Time-to-live of entries in milliseconds, from when they were set.
   * @default Infinity (entries do not expire)
   */
  ttlMs?: number;
  /**
   * The size of a value in bytes, when set() or getOrCreate() is not told.
   * @default byteLength of ArrayBuffers and their views; anything else needs a size
   */
  sizeOf?: (value: V, key: K) => number;
  /**
   * Called when an entry leaves the cache (for an acquired entry: when its
   * last lease is released). Errors it throws do not interrupt the cache;
   * they are rethrown asynchronously, as Node reports uncaught errors. It
   * may read the cache but not change it (see the module documentation:
   * changing calls throw `ERR_CACHE_REENTRANT`).
   * @default none
   */
  dispose?: (value: V, key: K, reason: DisposeReason) => void;
  /**
   * The clock, in milliseconds. Inject one to test expiry at exact boundaries.
   * @default performance.now
   */
  now?: () => number;
  /**
   * Fraction of the cache's capacity kept at each degradation level by
   * {@link BudgetedCache.evictOnLevel}.
   * @default { reduced: 0.5, minimal: 0.25, emergency: 0 }
   */
  levelFractions?: Partial<Record<Exclude<CacheLevel, 'normal'>, number>>;
}

/** Options of one {@link BudgetedCache.set}. */
export interface SetOptions {
  /** Size in bytes. @default `sizeOf(value, key)` */
  size?: number;
  /** Time-to-live of this entry. @default the cache's `ttlMs` */
  ttlMs?: number;
}

/** Options of one {@link BudgetedCache.getOrCreate}. */
export interface CreateOptions<V> {
  /** Size in bytes, or a function of the created value. @default the cache's `sizeOf` */
  size?: number | ((value: V) => number);
  /** Time-to-live of this entry. @default the cache's `ttlMs` */
  ttlMs?: number;
}

/** Figures of a cache. */
export interface BudgetedCacheStats {
  /** Entries in the cache (expired ones are dropped when met or by purgeStale()). */
  entries: number;
  /** Bytes charged for entries, including removed ones still acquired. */
  bytes: number;
  /** The cap now: `maxBytes`, lowered by evictOnLevel(). */
  capBytes: number;
  maxEntries: number;
  /** Lookups that found a live entry (including getOrCreate calls that joined a creation in flight). */
  hits: number;
  misses: number;
  /** `hits / (hits + misses)`, 0 before any lookup. */
  hitRate: number;
  /** Entries evicted for room, by shrinkTo() or by evictOnLevel(). */
  evictions: number;
  expirations: number;
  /** Values that could not be cached because they did not fit. */
  rejected: number;
  /** getOrCreate calls that shared a creation already in flight. */
  coalesced: number;
  /** Creations in flight. */
  pending: number;
  /** Removed entries still acquired (their bytes stay charged). */
  retained: number;
  /** Bytes of the removed entries still acquired (included in `bytes`). */
  retainedBytes: number;
  /** The allocator's budget: bytes in use by everyone, and its limit. */
  allocatorBytes: number;
  allocatorLimit: number;
}

class Entry<K, V> {
  /** Its place in the recency list (see BudgetedCache#prev), or -1 once removed. */
  slot = -1;
  pins = 0;
  live = true;
  /** Why it was removed while acquired (null: replaced by the same value, no dispose). */
  reason: DisposeReason | null = null;
  constructor(
    readonly key: K,
    // Rewritten in place when the key is set again while no lease holds it.
    public value: V,
    public size: number,
    public expires: number,
  ) {}
}

/** The keys of `order` whose entries are still in the cache when reached. */
function* liveKeys<K, V>(order: readonly Entry<K, V>[]): IterableIterator<K> {
  for (const e of order) if (e.live) yield e.key;
}

class Pending<V> {
  promise!: Promise<V>;
}

/**
 * A least-recently-used cache with a time-to-live whose entries' sizes are
 * charged to a {@link LimitedAllocator}. See the module documentation.
 */
export class BudgetedCache<K, V> {
  readonly #allocator: LimitedAllocator;
  readonly #ownsAllocator: boolean;
  readonly #maxBytes: number;
  readonly #maxEntries: number;
  readonly #ttl: number;
  readonly #sizeOf: (value: V, key: K) => number;
  readonly #dispose: ((value: V, key: K, reason: DisposeReason) => void) | undefined;
  readonly #now: () => number;
  readonly #fractions: readonly [number, number, number, number];
  readonly #map = new Map<K, Entry<K, V>>();
  readonly #pending = new Map<K, Pending<V>>();
  // The recency list. Its links are slot numbers in typed arrays rather than
  // fields of the entries: marking an entry used then writes integers only,
  // with none of the write barriers that storing object references costs, so
  // a hit stays close to lru-cache's, which is built the same way.
  /** Slot of the most recently used entry, -1 when empty. */
  #head = -1;
  /** Slot of the least recently used entry, -1 when empty. */
  #tail = -1;
  #prev = new Int32Array(16);
  #next = new Int32Array(16);
  /** The entry in each slot (undefined: free). */
  #bySlot: Array<Entry<K, V> | undefined> = [];
  /** Free slots below #bySlot.length. */
  #free: number[] = [];
  #bytes = 0;
  #cap: number;
  #levelFraction = 1;
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #expirations = 0;
  #rejected = 0;
  #coalesced = 0;
  #retained = 0;
  #retainedBytes = 0;
  /** Depth of dispose callbacks run by the cache's own operations. */
  #disposing = 0;
  #closed = false;

  constructor(options: BudgetedCacheOptions<K, V>) {
    // Every option is read and validated before anything is taken: a rejected
    // construction opens no budget slot and leaves nothing behind.
    validateObject(options, 'options');
    const maxBytes = options.maxBytes === undefined ? Infinity : parseSize(options.maxBytes, 'options.maxBytes');
    const given = options.allocator;
    if (given !== undefined && !(given instanceof LimitedAllocator)) {
      throw new InvalidArgTypeError('options.allocator', 'an instance of LimitedAllocator', given);
    }
    if (given === undefined && maxBytes === Infinity) {
      throw new InvalidArgValueError('options', options, 'must give an allocator or maxBytes');
    }
    const maxEntries = options.maxEntries;
    this.#maxEntries = maxEntries === undefined || maxEntries === Infinity ? Infinity : validateInteger(maxEntries, 'options.maxEntries', 1);
    const ttlMs = options.ttlMs;
    this.#ttl = ttlMs === undefined ? Infinity : validateTtl(ttlMs, 'options.ttlMs');
    const sizeOf = options.sizeOf;
    this.#sizeOf = sizeOf === undefined ? defaultSizeOf : validateFunction(sizeOf, 'options.sizeOf');
    const dispose = options.dispose;
    this.#dispose = dispose === undefined ? undefined : validateFunction(dispose, 'options.dispose');
    const clock = options.now;
    this.#now = clock === undefined ? () => performance.now() : validateFunction(clock, 'options.now');
    const levelFractions = options.levelFractions;
    const f = levelFractions === undefined ? {} : validateObject<NonNullable<BudgetedCacheOptions<K, V>['levelFractions']>>(levelFractions, 'options.levelFractions');
    const reduced = f.reduced === undefined ? 0.5 : validateFraction(f.reduced, 'options.levelFractions.reduced', true);
    const minimal = f.minimal === undefined ? 0.25 : validateFraction(f.minimal, 'options.levelFractions.minimal', true);
    const emergency = f.emergency === undefined ? 0 : validateFraction(f.emergency, 'options.levelFractions.emergency', true);
    this.#fractions = [1, reduced, minimal, emergency];
    this.#maxBytes = maxBytes;
    this.#cap = maxBytes;
    // The only resource the cache takes, last.
    if (given !== undefined) {
      this.#allocator = given;
      this.#ownsAllocator = false;
    } else {
      this.#allocator = new LimitedAllocator(maxBytes);
      this.#ownsAllocator = true;
    }
  }

  // ---- lookups ------------------------------------------------------------------

  /** The value for `key`, marking it most recently used; undefined when absent or expired. */
  get(key: K): V | undefined {
    // #hit written out: a hit on an entry without a time-to-live is the
    // common case and takes no call but the map's and the list's.
    const e = this.#map.get(key);
    if (e === undefined || (e.expires !== Infinity && this.#now() > e.expires)) return this.#miss(e);
    this.#hits++;
    this.#touch(e);
    return e.value;
  }

  /** A get that found nothing, or an entry that has expired (dropped now). */
  #miss(e: Entry<K, V> | undefined): undefined {
    if (e !== undefined) {
      this.#remove(e, 'expire');
      this.#expirations++;
    }
    this.#misses++;
    return undefined;
  }

  /**
   * Like {@link get}, but holds the value until the lease is released: if
   * the entry leaves the cache meanwhile (evicted, deleted, replaced,
   * expired) its bytes stay charged and `dispose` waits for the last release.
   */
  acquire(key: K): CacheLease<V> | undefined {
    const e = this.#hit(key);
    if (e === undefined) {
      this.#misses++;
      return undefined;
    }
    e.pins++;
    return new CacheLease(TOKEN, e.value, () => this.#unpin(e));
  }

  /** The value without marking it used or counting a hit. */
  peek(key: K): V | undefined {
    const e = this.#map.get(key);
    return e === undefined || this.#expired(e) ? undefined : e.value;
  }

  /** Whether a live entry exists (does not mark it used). */
  has(key: K): boolean {
    const e = this.#map.get(key);
    return e !== undefined && !this.#expired(e);
  }

  /**
   * The cached value, or the value `factory(key)` creates (awaited if it is a
   * promise), which is then cached. Concurrent calls for a key share one
   * factory call. A value that does not fit is returned but not cached. If
   * the key is set or deleted while a creation is in flight, that wins: the
   * created value is handed to the callers but not cached.
   */
  getOrCreate(key: K, factory: (key: K) => V | PromiseLike<V>, options?: CreateOptions<V>): Promise<V> {
    validateFunction(factory, 'factory');
    if (options !== undefined) validateCreateOptions(options);
    if (this.#disposing !== 0) throw new CacheReentrancyError('getOrCreate');
    const e = this.#hit(key);
    if (e !== undefined) return Promise.resolve(e.value);
    const inFlight = this.#pending.get(key);
    if (inFlight !== undefined) {
      this.#hits++;
      this.#coalesced++;
      return inFlight.promise;
    }
    const record = new Pending<V>();
    let resolve!: (value: V) => void;
    let reject!: (reason: unknown) => void;
    record.promise = new Promise<V>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Registered before the factory runs, so a call it makes for the same
    // key joins this creation instead of starting another.
    this.#pending.set(key, record);
    // The miss is counted when the creation succeeds: a factory that fails,
    // or a value that cannot be sized, leaves hits and misses as they were.
    const settle = (value: V): void => {
      if (this.#pending.get(key) === record) {
        this.#pending.delete(key);
        try {
          const size = this.#sizeCreated(key, value, options);
          this.#misses++;
          this.#store(key, value, size, options?.ttlMs ?? this.#ttl);
        } catch (err) {
          reject(err);
          return;
        }
      } else {
        this.#misses++;
      }
      resolve(value);
    };
    const fail = (err: unknown): void => {
      if (this.#pending.get(key) === record) this.#pending.delete(key);
      reject(err);
    };
    let out: V | PromiseLike<V>;
    try {
      out = factory(key);
    } catch (err) {
      fail(err);
      return record.promise;
    }
    if (isThenable<V>(out)) out.then(settle, fail);
    else settle(out);
    return record.promise;
  }

  /**
   * The synchronous form of {@link getOrCreate} for factories that return
   * the value itself (a factory returning a promise is refused).
   */
  getOrCreateSync(key: K, factory: (key: K) => V, options?: CreateOptions<V>): V {
    validateFunction(factory, 'factory');
    if (options !== undefined) validateCreateOptions(options);
    if (this.#disposing !== 0) throw new CacheReentrancyError('getOrCreateSync');
    const e = this.#hit(key);
    if (e !== undefined) return e.value;
    const value = factory(key);
    if (isThenable(value)) {
      throw new InvalidArgValueError('factory', factory, 'returned a promise; use getOrCreate() for asynchronous factories');
    }
    // Sized before anything is counted: a value that cannot be sized leaves the counters as they were.
    const size = this.#sizeCreated(key, value, options);
    this.#misses++;
    this.#store(key, value, size, options?.ttlMs ?? this.#ttl);
    return value;
  }

  // ---- updates --------------------------------------------------------------------

  /**
   * Caches `value` under `key`, evicting least recently used entries for
   * room. Returns false (and caches nothing) when it cannot fit: larger than
   * the cap or the budget, or the budget is held by others. An existing
   * entry for the key is replaced either way.
   */
  set(key: K, value: V, options?: SetOptions): boolean {
    let size: number;
    let ttl = this.#ttl;
    if (options !== undefined) {
      validateObject(options, 'options');
      size = options.size === undefined ? this.#measure(value, key) : validateBytes(options.size, 'options.size');
      if (options.ttlMs !== undefined) ttl = validateTtl(options.ttlMs, 'options.ttlMs');
    } else {
      size = this.#measure(value, key);
    }
    return this.#store(key, value, size, ttl);
  }

  /** Removes the entry for `key` (and forgets a creation in flight). */
  delete(key: K): boolean {
    if (this.#disposing !== 0) throw new CacheReentrancyError('delete');
    this.#pending.delete(key);
    const e = this.#map.get(key);
    if (e === undefined) return false;
    this.#remove(e, 'delete');
    return true;
  }

  /** Removes every entry. */
  clear(): void {
    if (this.#disposing !== 0) throw new CacheReentrancyError('clear');
    this.#pending.clear();
    while (this.#tail !== -1) this.#remove(this.#bySlot[this.#tail]!, 'clear');
  }

  /** Drops expired entries now; returns how many. */
  purgeStale(): number {
    if (this.#disposing !== 0) throw new CacheReentrancyError('purgeStale');
    let n = 0;
    const now = this.#now();
    for (let s = this.#tail; s !== -1; ) {
      const e = this.#bySlot[s]!;
      const prev = this.#prev[s]!;
      if (now > e.expires) {
        this.#remove(e, 'expire');
        this.#expirations++;
        n++;
      }
      s = prev;
    }
    return n;
  }

  /**
   * Evicts least recently used entries until the cache holds at most
   * `fraction` of the bytes it holds now, or nothing is left to evict.
   * Acquired entries are evicted too; their bytes are given back on their
   * last release. Returns the bytes given back now.
   */
  shrinkTo(fraction: number): number {
    validateFraction(fraction, 'fraction', true);
    if (this.#disposing !== 0) throw new CacheReentrancyError('shrinkTo');
    return this.#evictDownTo(Math.floor(this.#bytes * fraction), 'shrink');
  }

  /**
   * Applies a degradation level: caps the cache at the level's fraction of
   * its capacity (`maxBytes`, or the allocator's limit) until another level
   * is applied, evicting down to it now. `normal` (or 0) lifts the cap.
   * Accepts 'normal' | 'reduced' | 'minimal' | 'emergency' in any case, or
   * 0-3. Returns the bytes given back.
   */
  evictOnLevel(level: CacheLevel | number | string): number {
    const index = levelIndex(level);
    if (this.#disposing !== 0) throw new CacheReentrancyError('evictOnLevel');
    const fraction = this.#fractions[index]!;
    this.#levelFraction = fraction;
    if (fraction >= 1) {
      this.#cap = this.#maxBytes;
      return 0;
    }
    const base = this.#maxBytes !== Infinity ? this.#maxBytes : this.#allocator.limit;
    this.#cap = Math.min(this.#maxBytes, Math.floor(base * fraction));
    return this.#evictDownTo(this.#cap, 'shrink');
  }

  // ---- figures --------------------------------------------------------------------

  /** Entries in the cache. */
  get size(): number {
    return this.#map.size;
  }

  /** Bytes charged for entries. */
  get bytes(): number {
    return this.#bytes;
  }

  get allocator(): LimitedAllocator {
    return this.#allocator;
  }

  /** `hits / (hits + misses)`, 0 before any lookup. */
  get hitRate(): number {
    const n = this.#hits + this.#misses;
    return n === 0 ? 0 : this.#hits / n;
  }

  /** The fraction of capacity the last evictOnLevel() allows (1 = no cap). */
  get levelFraction(): number {
    return this.#levelFraction;
  }

  /**
   * Keys of the entries live at the call, most recently used first. The
   * order is taken at the call: reads and writes while iterating do not
   * change what the iterator yields, and an entry removed before the
   * iterator reaches it is skipped (entries added meanwhile are not yielded).
   */
  keys(): IterableIterator<K> {
    const now = this.#now();
    const order: Entry<K, V>[] = [];
    for (let s = this.#head; s !== -1; s = this.#next[s]!) {
      const e = this.#bySlot[s]!;
      if (!(now > e.expires)) order.push(e);
    }
    return liveKeys(order);
  }

  stats(): BudgetedCacheStats {
    const n = this.#hits + this.#misses;
    return {
      entries: this.#map.size,
      bytes: this.#bytes,
      capBytes: this.#cap,
      maxEntries: this.#maxEntries,
      hits: this.#hits,
      misses: this.#misses,
      hitRate: n === 0 ? 0 : this.#hits / n,
      evictions: this.#evictions,
      expirations: this.#expirations,
      rejected: this.#rejected,
      coalesced: this.#coalesced,
      pending: this.#pending.size,
      retained: this.#retained,
      retainedBytes: this.#retainedBytes,
      allocatorBytes: this.#allocator.closed ? 0 : this.#allocator.allocatedBytes,
      allocatorLimit: this.#allocator.closed ? 0 : this.#allocator.limit,
    };
  }

  /** Clears the cache and closes the allocator if the cache created it. Idempotent. */
  close(): void {
    if (this.#closed) return;
    if (this.#disposing !== 0) throw new CacheReentrancyError('close');
    this.clear();
    this.#closed = true;
    if (this.#ownsAllocator) this.#allocator.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ---- private ------------------------------------------------------------------

  /** A lookup that counts as a hit when it finds a live entry, which it marks most recently used. */
  #hit(key: K): Entry<K, V> | undefined {
    const e = this.#live(key);
    if (e !== undefined) {
      this.#hits++;
      this.#touch(e);
    }
    return e;
  }

  /** The live entry for `key`, dropping it if expired. */
  #live(key: K): Entry<K, V> | undefined {
    const e = this.#map.get(key);
    if (e === undefined) return undefined;
    if (e.expires !== Infinity && this.#now() > e.expires) {
      this.#remove(e, 'expire');
      this.#expirations++;
      return undefined;
    }
    return e;
  }

  #expired(e: Entry<K, V>): boolean {
    return e.expires !== Infinity && this.#now() > e.expires;
  }

  #measure(value: V, key: K): number {
    const size = this.#sizeOf(value, key);
    return validateBytes(size, 'sizeOf(value)');
  }

  /** The size of a created value (options validated already). */
  #sizeCreated(key: K, value: V, options: CreateOptions<V> | undefined): number {
    const given = options?.size;
    if (given === undefined) return this.#measure(value, key);
    if (typeof given === 'function') return validateBytes(given(value), 'options.size(value)');
    return given;
  }

  #store(key: K, value: V, size: number, ttl: number): boolean {
    if (this.#disposing !== 0) throw new CacheReentrancyError('set');
    if (this.#closed) {
      this.#rejected++;
      return false;
    }
    if (this.#pending.size !== 0) this.#pending.delete(key);
    const old = this.#map.get(key);
    if (old !== undefined) {
      if (old.pins === 0 && this.#overwrite(old, value, size, ttl)) return true;
      this.#remove(old, old.value === value ? null : 'set');
    }
    if (!this.#makeRoom(size)) {
      this.#rejected++;
      return false;
    }
    const e = new Entry(key, value, size, ttl === Infinity ? Infinity : this.#now() + ttl);
    this.#map.set(key, e);
    this.#bytes += size;
    this.#link(e);
    return true;
  }

  /**
   * Overwrites an entry no lease holds, in place: no new entry and no
   * change to the map, only the bytes that differ charged or given back.
   * Done only when the new size fits without evicting anything (a smaller
   * or equal size always does); otherwise it returns false and the caller
   * replaces the entry as a new one, evicting others as needed.
   */
  #overwrite(e: Entry<K, V>, value: V, size: number, ttl: number): boolean {
    const grow = size - e.size;
    if (grow > 0) {
      const allocator = this.#allocator;
      if (allocator.closed || this.#bytes + grow > this.#cap || !allocator.reserveBytes(grow)) return false;
    } else if (grow < 0) {
      const allocator = this.#allocator;
      if (!allocator.closed) allocator.releaseBytes(-grow);
    }
    this.#bytes += grow;
    const previous = e.value;
    e.value = value;
    e.size = size;
    e.expires = ttl === Infinity ? Infinity : this.#now() + ttl;
    this.#touch(e);
    const dispose = this.#dispose;
    if (dispose !== undefined && previous !== value) {
      this.#disposing++;
      try {
        dispose(previous, e.key, 'set');
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      } finally {
        this.#disposing--;
      }
    }
    return true;
  }

  /** Evicts until `size` more bytes fit under the cap, the entry count and the budget, and reserves them. */
  #makeRoom(size: number): boolean {
    const allocator = this.#allocator;
    // Bytes of removed entries still held cannot be evicted: what cannot fit beside them is refused at once.
    if (allocator.closed || size + this.#retainedBytes > this.#cap || size > allocator.limit) return false;
    while (this.#bytes + size > this.#cap || this.#map.size >= this.#maxEntries) {
      if (!this.#evictOne('evict')) return false;
    }
    while (!allocator.reserveBytes(size)) {
      if (!this.#evictOne('evict')) return false;
    }
    return true;
  }

  /**
   * Evicts the least recently used entry. An acquired one leaves the cache
   * too; its bytes come back on its last release.
   */
  #evictOne(reason: DisposeReason): boolean {
    if (this.#tail === -1) return false;
    const e = this.#bySlot[this.#tail]!;
    this.#remove(e, reason);
    this.#evictions++;
    return true;
  }

  #evictDownTo(target: number, reason: DisposeReason): number {
    const before = this.#bytes;
    while (this.#bytes > target && this.#evictOne(reason));
    return before - this.#bytes;
  }

  /** Puts a new entry at the head of the recency list, in a free slot. */
  #link(e: Entry<K, V>): void {
    let s = this.#free.pop();
    if (s === undefined) {
      s = this.#bySlot.length;
      if (s === this.#prev.length) {
        const prev = new Int32Array(s * 2);
        const next = new Int32Array(s * 2);
        prev.set(this.#prev);
        next.set(this.#next);
        this.#prev = prev;
        this.#next = next;
      }
      this.#bySlot.push(e);
    } else {
      this.#bySlot[s] = e;
    }
    e.slot = s;
    const head = this.#head;
    this.#prev[s] = -1;
    this.#next[s] = head;
    if (head !== -1) this.#prev[head] = s;
    else this.#tail = s;
    this.#head = s;
  }

  /** Marks a listed entry most recently used. */
  #touch(e: Entry<K, V>): void {
    const s = e.slot;
    const head = this.#head;
    if (s === head) return;
    const prevs = this.#prev;
    const nexts = this.#next;
    const p = prevs[s]!;
    const n = nexts[s]!;
    nexts[p] = n;
    if (n !== -1) prevs[n] = p;
    else this.#tail = p;
    prevs[s] = -1;
    nexts[s] = head;
    prevs[head] = s;
    this.#head = s;
  }

  /**
   * Unlinks an entry. Its bytes and its dispose wait while it is acquired.
   * `reason` null: replaced by the same value, so nothing is disposed.
   */
  #remove(e: Entry<K, V>, reason: DisposeReason | null): void {
    this.#map.delete(e.key);
    const s = e.slot;
    const p = this.#prev[s]!;
    const n = this.#next[s]!;
    if (p !== -1) this.#next[p] = n;
    else this.#head = n;
    if (n !== -1) this.#prev[n] = p;
    else this.#tail = p;
    this.#bySlot[s] = undefined;
    this.#free.push(s);
    e.slot = -1;
    e.live = false;
    if (e.pins > 0) {
      e.reason = reason;
      this.#retained++;
      this.#retainedBytes += e.size;
      return;
    }
    this.#finish(e);
    const dispose = this.#dispose;
    if (dispose === undefined || reason === null) return;
    this.#disposing++;
    try {
      dispose(e.value, e.key, reason);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    } finally {
      this.#disposing--;
    }
  }

  /** Gives an entry's bytes back. */
  #finish(e: Entry<K, V>): void {
    this.#bytes -= e.size;
    const allocator = this.#allocator;
    if (!allocator.closed) allocator.releaseBytes(e.size);
  }

  /**
   * A lease was released: the last one finishes a removed entry. Its dispose
   * runs outside any cache operation, so it may change the cache.
   */
  #unpin(e: Entry<K, V>): void {
    if (--e.pins > 0 || e.live) return;
    this.#retained--;
    this.#retainedBytes -= e.size;
    this.#finish(e);
    const dispose = this.#dispose;
    const reason = e.reason;
    if (dispose === undefined || reason === null) return;
    try {
      dispose(e.value, e.key, reason);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }
}

/** A hold on a cache entry; see {@link BudgetedCache.acquire}. */
export class CacheLease<V> {
  #release: (() => void) | null;
  /** The cached value. */
  readonly value: V;

  /** @internal Leases come from {@link BudgetedCache.acquire}. */
  constructor(token: typeof TOKEN, value: V, release: () => void) {
    if (token !== TOKEN) throw new IllegalConstructorError('CacheLease', 'BudgetedCache#acquire()');
    this.value = value;
    this.#release = release;
  }

  get released(): boolean {
    return this.#release === null;
  }

  /** Lets the entry go. Idempotent. */
  release(): void {
    const release = this.#release;
    if (release === null) return;
    this.#release = null;
    release();
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

// ---- helpers --------------------------------------------------------------------

function defaultSizeOf(value: unknown): number {
  if (ArrayBuffer.isView(value)) return value.byteLength;
  if (value instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer)) {
    return value.byteLength;
  }
  throw new InvalidArgValueError(
    'size',
    value,
    'is required: pass { size } or a sizeOf option (only ArrayBuffers and their views are measured automatically)',
  );
}

function validateTtl(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(name, 'of type number', value);
  if (value === Infinity || (Number.isFinite(value) && value >= 0)) return value;
  throw new OutOfRangeError(name, 'a number of milliseconds >= 0, or Infinity', value);
}

function validateCreateOptions<V>(options: CreateOptions<V>): void {
  validateObject(options, 'options');
  const size = options.size;
  if (size !== undefined && typeof size !== 'function') validateBytes(size, 'options.size');
  if (options.ttlMs !== undefined) validateTtl(options.ttlMs, 'options.ttlMs');
}

function levelIndex(level: unknown): number {
  if (typeof level === 'number') {
    if (Number.isInteger(level) && level >= 0 && level <= 3) return level;
    throw new OutOfRangeError('level', 'an integer from 0 to 3', level);
  }
  if (typeof level !== 'string') throw new InvalidArgTypeError('level', 'of type string or number', level);
  const i = LEVELS.indexOf(level.toLowerCase() as CacheLevel);
  if (i < 0) throw new InvalidArgValueError('level', level, `must be one of ${LEVELS.map((l) => `'${l}'`).join(', ')}`);
  return i;
}

function isThenable<V>(value: unknown): value is PromiseLike<V> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
