/**
 * A generic pool of resources the caller supplies (connections, parsers,
 * workers, buffers): created on demand up to `max`, kept warm down to `min`,
 * lent out most-recently-used first, recycled by idle time and by age, and
 * measured as a connection pool is (requests, successes, timeouts, errors,
 * utilisation, wait percentiles, health).
 *
 * Rules, each exact at its boundary:
 * - **Maximum lifetime**: a resource whose age (clock now − creation time) is
 *   at most `maxLifetime` is still lent or taken back; one whose age is above
 *   it is destroyed (and replaced when the pool is below `min` or someone
 *   waits). Checked when an idle resource is picked, when a loan comes back
 *   and by the eviction sweep.
 * - **Idle timeout**: an idle resource idle for more than `idleTimeout` ms is
 *   destroyed by the eviction sweep, as long as that keeps the pool at or
 *   above `min`.
 * - **Acquire timeout**: a request still waiting `acquireTimeout` ms after it
 *   was made fails with {@link PoolTimeoutError} (`ERR_POOL_TIMEOUT`), which
 *   counts as a *timeout*, never as an *error*.
 * - **Errors**: a failing `create()` (or a size the budget refuses) rejects
 *   the request that asked for the resource, with {@link PoolCreateError} /
 *   {@link PoolBudgetError}, and counts as an error.
 * - **Health**: `100 − timeout % − error %` of the requests that reached an
 *   outcome (successes + timeouts + errors); `healthy` at 95 or more,
 *   `degraded` at 80 or more, else `unhealthy`; 100 before any outcome.
 *
 * Every time-based rule reads the injectable `clock` and arms timers through
 * the injectable `timers`, so tests drive time by hand. No timer or factory
 * callback throws into the event loop: factory failures that no request can
 * receive are counted (`createFailures`, `destroyFailures`,
 * `validateFailures`) and emitted as `'factoryError'` when someone listens.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { LimitedAllocator } from './allocator';
import { Budget } from './budget';
import { InvalidArgTypeError, OutOfRangeError, ResourceError } from './errors';
import { validateFunction, validateInteger, validateNumber, validateObject, validateString } from './validate';

/** What a pool needs to make, check and dispose of its resources. */
export interface PoolFactory<T> {
  /** Makes one resource. A throw or rejection fails the request that asked for it. */
  create(): T | Promise<T>;
  /** Disposes of one resource. Failures are counted, never thrown. */
  destroy(resource: T): void | Promise<void>;
  /**
   * Optional check before a resource is lent: false (or a throw) destroys it
   * and the request is served by another resource.
   */
  validate?(resource: T): boolean | Promise<boolean>;
}

/** Timer functions the pool arms its timeouts with (defaults: the global ones). */
export interface PoolTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Something resource sizes are charged to: a {@link Budget} or a {@link LimitedAllocator}. */
export type PoolBudget = Budget | LimitedAllocator;

/** Options of {@link ResourcePool}. */
export interface PoolOptions<T> {
  /** Most resources alive at once (lent, idle, being created). Integer ≥ 1. */
  max: number;
  /** Resources kept alive even when idle. Integer, 0..max. @default 0 */
  min?: number;
  /** Milliseconds a request may wait; `Infinity` waits for ever. @default 5000 */
  acquireTimeout?: number;
  /** Milliseconds an idle resource is kept (above `min`). @default Infinity */
  idleTimeout?: number;
  /** Milliseconds a resource may live; older ones are destroyed and replaced. @default Infinity */
  maxLifetime?: number;
  /**
   * Milliseconds between eviction sweeps (idle timeout and lifetime). Only
   * armed when one of them is finite. @default 1000
   */
  evictionInterval?: number;
  /** Charge each resource's size to this budget while it is alive. */
  budget?: PoolBudget;
  /**
   * Bytes charged per resource: a number (reserved before `create()` runs, so
   * a refusal creates nothing) or a function of the created resource.
   * Required with `budget`.
   */
  resourceSize?: number | ((resource: T) => number);
  /** Time source, ms. @default performance.now */
  clock?: () => number;
  /** Timer functions. @default the global setTimeout / clearTimeout */
  timers?: PoolTimers;
  /** Recent waits kept for the percentiles. Integer ≥ 1. @default 4096 */
  waitSamples?: number;
  /** Name used in messages and errors. @default 'pool' */
  name?: string;
}

/** Options of one acquisition. */
export interface PoolAcquireOptions {
  /** Overrides the pool's `acquireTimeout` for this request. */
  timeout?: number;
  /** Withdraws the request while it waits; it rejects with the signal's reason. */
  signal?: AbortSignal;
}

export type PoolHealth = 'healthy' | 'degraded' | 'unhealthy';

/** Per-second rates over the time since the last reset, floored at one second. */
export interface PoolRates {
  requestsPerSec: number;
  successesPerSec: number;
  timeoutsPerSec: number;
  errorsPerSec: number;
}

/** A snapshot of a pool's state and counters. */
export interface PoolMetrics {
  name: string;
  max: number;
  min: number;
  /** Requests (acquire calls accepted) since the last reset. */
  requests: number;
  /** Requests that received a resource. */
  successes: number;
  /** Requests that waited longer than their timeout. */
  timeouts: number;
  /** Requests failed by create(), validate() or the budget. */
  errors: number;
  /** Requests withdrawn by their caller's signal (not counted for health). */
  cancelled: number;
  /** Requests refused because the pool was closing or closed (not counted for health). */
  rejected: number;
  /** Resources created since the last reset. */
  created: number;
  /** Resources destroyed since the last reset. */
  destroyed: number;
  /** create() failures since the last reset (including those no request received). */
  createFailures: number;
  /** destroy() failures since the last reset. */
  destroyFailures: number;
  /** Resources validate() refused or threw on, since the last reset. */
  validateFailures: number;
  /** Resources alive now (idle + lent + being validated). */
  size: number;
  /** create() calls in flight. */
  pending: number;
  idle: number;
  inUse: number;
  waiting: number;
  /** (size − idle) / max: the share of the pool's capacity that is alive and not idle (0..1). */
  utilisation: number;
  /** Bytes charged to the budget now. */
  chargedBytes: number;
  /** Median wait of recent successful requests, ms. */
  waitP50: number;
  /** 99th percentile wait of recent successful requests, ms. */
  waitP99: number;
  /** Successful requests the percentiles are computed over. */
  waitSamples: number;
  /** Milliseconds since the pool was created (not affected by reset()). */
  uptimeMs: number;
  /** Milliseconds since the last reset (or creation). */
  elapsedMs: number;
  rates: PoolRates;
  healthScore: number;
  health: PoolHealth;
}

/** Base class of the pool's own failures. */
export class PoolError extends ResourceError {
  constructor(
    code: string,
    message: string,
    /** Pool name. */
    readonly pool: string,
  ) {
    super(code, message);
  }
}

/** A request waited longer than its timeout (the pool was exhausted). */
export class PoolTimeoutError extends PoolError {
  constructor(
    pool: string,
    /** Milliseconds waited. */
    readonly waited: number,
    /** The timeout, ms. */
    readonly timeout: number,
    readonly max: number,
    readonly inUse: number,
    readonly waiting: number,
  ) {
    super(
      'ERR_POOL_TIMEOUT',
      `${pool}: no resource within ${timeout} ms (waited ${Math.round(waited)} ms; ${inUse} of ${max} in use, ${waiting} waiting)`,
      pool,
    );
  }
}

/** The pool is draining or closed. */
export class PoolClosedError extends PoolError {
  constructor(pool: string) {
    super('ERR_POOL_CLOSED', `${pool} is closed`, pool);
  }
}

/** The factory's create() failed for this request; `cause` is what it threw. */
export class PoolCreateError extends PoolError {
  constructor(pool: string, cause: unknown) {
    super('ERR_POOL_CREATE', `${pool}: create() failed: ${cause instanceof Error ? cause.message : String(cause)}`, pool);
    Object.defineProperty(this, 'cause', { value: cause, configurable: true, writable: true });
  }
}

/** The budget refused a new resource's size. */
export class PoolBudgetError extends PoolError {
  constructor(
    pool: string,
    /** Bytes the resource needed. */
    readonly requested: number,
    /** The budget's limit. */
    readonly limit: number,
    /** Bytes the budget had in use. */
    readonly current: number,
  ) {
    super(
      'ERR_POOL_BUDGET',
      `${pool}: the budget cannot take a resource of ${requested} bytes (${current} of ${limit} bytes in use)`,
      pool,
    );
  }
}

/** release() or destroy() was given something this pool has not lent. */
export class PoolNotLentError extends PoolError {
  constructor(pool: string) {
    super('ERR_POOL_NOT_LENT', `${pool}: the resource was not lent by this pool (or was already returned)`, pool);
  }
}

/** Health score from counters: 100 − timeout % − error % of the requests that reached an outcome. */
export function poolHealthScore(c: { successes: number; timeouts: number; errors: number }): number {
  validateObject(c, 'counts');
  const successes = validateInteger(c.successes, 'counts.successes');
  const timeouts = validateInteger(c.timeouts, 'counts.timeouts');
  const errors = validateInteger(c.errors, 'counts.errors');
  const outcomes = successes + timeouts + errors;
  if (outcomes === 0) return 100;
  // One division keeps exact boundaries exact (95 of 100 is 95, not 94.999…).
  return (100 * (outcomes - timeouts - errors)) / outcomes;
}

/** Health band of a score: healthy >= 95, degraded >= 80, else unhealthy. */
export function poolHealthStatus(score: number): PoolHealth {
  validateNumber(score, 'score');
  return score >= 95 ? 'healthy' : score >= 80 ? 'degraded' : 'unhealthy';
}

/** What a `'factoryError'` event carries. */
export interface PoolFactoryError {
  operation: 'create' | 'destroy' | 'validate';
  error: unknown;
}

interface Entry<T> {
  readonly resource: T;
  readonly createdAt: number;
  idleSince: number;
  /** 0 idle, 1 lent, 2 being validated. */
  state: 0 | 1 | 2;
  readonly bytes: number;
  /** Loans so far: tells one loan of the resource from a later one. */
  loans: number;
}

interface Waiter<T> {
  resolve(resource: T): void;
  reject(error: unknown): void;
  readonly at: number;
  readonly timeout: number;
  timer: unknown;
  settled: boolean;
  /** True while the waiter sits in the queue (not yet given a resource to make or validate). */
  queued: boolean;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | null;
}

/** Budget charges a pool holds, released by the finalizer if the pool is dropped unclosed. */
interface Charges {
  budget: PoolBudget | null;
  bytes: number;
}

const defaultTimers: PoolTimers = {
  setTimeout: (cb, ms) => setTimeout(cb, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};
const defaultClock = (): number => performance.now();
// Node's setTimeout takes at most 2^31 − 1 ms.
const MAX_TIMER = 2 ** 31 - 1;

function chargeBytes(budget: PoolBudget, bytes: number): boolean {
  return budget instanceof LimitedAllocator ? budget.reserveBytes(bytes) : budget.tryReserve(bytes);
}

function releaseCharge(budget: PoolBudget, bytes: number): void {
  if (bytes === 0 || budget.closed) return;
  if (budget instanceof LimitedAllocator) budget.releaseBytes(bytes);
  else budget.release(bytes);
}

const registry = new FinalizationRegistry<Charges>((charges) => {
  try {
    if (charges.budget !== null && charges.bytes > 0) releaseCharge(charges.budget, charges.bytes);
  } catch {
    // A finalizer must not throw; the budget may have been closed meanwhile.
  }
});

function validateTimeout(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(name, 'of type number', value);
  if (!(value >= 0)) throw new OutOfRangeError(name, '>= 0 (milliseconds; Infinity for none)', value);
  return value as number;
}

/**
 * A pool of resources made by a {@link PoolFactory}.
 *
 * ```ts
 * const pool = new ResourcePool({ create: () => connect(), destroy: (c) => c.end() }, { max: 10 });
 * const conn = await pool.acquire();
 * try { await conn.query('select 1'); } finally { pool.release(conn); }
 * await pool.close();
 * ```
 */
export class ResourcePool<T> extends EventEmitter {
  readonly name: string;
  readonly max: number;
  readonly min: number;
  readonly acquireTimeout: number;
  readonly idleTimeout: number;
  readonly maxLifetime: number;
  readonly evictionInterval: number;

  readonly #factory: PoolFactory<T>;
  readonly #validate: ((resource: T) => boolean | Promise<boolean>) | null;
  readonly #clock: () => number;
  readonly #timers: PoolTimers;
  readonly #fixedSize: number;
  readonly #sizeOf: ((resource: T) => number) | null;
  readonly #charges: Charges;

  /** Every live resource. */
  readonly #entries = new Map<T, Entry<T>>();
  /** Idle resources, most recently used last. */
  #idle: Entry<T>[] = [];
  /** Waiting requests, FIFO from #head; settled ones are skipped and compacted away. */
  #queue: Waiter<T>[] = [];
  #head = 0;
  #waiting = 0;
  /** Requests taken off the queue whose resource is being made or validated. */
  readonly #assigned = new Set<Waiter<T>>();
  #creating = 0;
  #inUse = 0;
  #validating = 0;
  /** destroy() calls in flight, awaited by drain/close. */
  readonly #destroying = new Set<Promise<void>>();
  #state: 'open' | 'draining' | 'closed' = 'open';
  #drained: Promise<void> | null = null;
  #wakeDrain: (() => void) | null = null;
  #evictTimer: unknown = null;
  #ready: Promise<void>;

  readonly #createdAt: number;
  #since: number;
  #c = { requests: 0, successes: 0, timeouts: 0, errors: 0, cancelled: 0, rejected: 0, created: 0, destroyed: 0, createFailures: 0, destroyFailures: 0, validateFailures: 0 };
  readonly #waits: Float64Array;
  #waitNext = 0;
  #waitCount = 0;

  constructor(factory: PoolFactory<T>, options: PoolOptions<T>) {
    super();
    // ---- validate everything before taking anything ----
    validateObject(factory, 'factory');
    validateFunction(factory.create, 'factory.create');
    validateFunction(factory.destroy, 'factory.destroy');
    if (factory.validate !== undefined) validateFunction(factory.validate, 'factory.validate');
    validateObject(options, 'options');
    const max = validateInteger(options.max, 'options.max', 1);
    const min = options.min === undefined ? 0 : validateInteger(options.min, 'options.min', 0, max);
    const acquireTimeout = options.acquireTimeout === undefined ? 5000 : validateTimeout(options.acquireTimeout, 'options.acquireTimeout');
    const idleTimeout = options.idleTimeout === undefined ? Infinity : validateTimeout(options.idleTimeout, 'options.idleTimeout');
    const maxLifetime = options.maxLifetime === undefined ? Infinity : validateTimeout(options.maxLifetime, 'options.maxLifetime');
    const evictionInterval = options.evictionInterval === undefined ? 1000 : validateNumber(options.evictionInterval, 'options.evictionInterval', 1, MAX_TIMER);
    const budget = options.budget === undefined ? null : options.budget;
    if (options.budget !== undefined && !(budget instanceof Budget) && !(budget instanceof LimitedAllocator)) {
      throw new InvalidArgTypeError('options.budget', 'an instance of Budget or LimitedAllocator', budget);
    }
    let fixedSize = 0;
    let sizeOf: ((resource: T) => number) | null = null;
    const rs = options.resourceSize;
    if (rs !== undefined) {
      if (typeof rs === 'function') sizeOf = rs;
      else fixedSize = validateInteger(rs, 'options.resourceSize', 0);
    }
    if (budget !== null && rs === undefined) {
      throw new InvalidArgTypeError('options.resourceSize', 'a number or a function when options.budget is given', rs);
    }
    if (budget !== null && budget.closed) throw new OutOfRangeError('options.budget', 'an open budget', 'a closed budget');
    const clock = options.clock === undefined ? defaultClock : validateFunction<() => number>(options.clock, 'options.clock');
    let timers = defaultTimers;
    if (options.timers !== undefined) {
      validateObject(options.timers, 'options.timers');
      validateFunction(options.timers.setTimeout, 'options.timers.setTimeout');
      validateFunction(options.timers.clearTimeout, 'options.timers.clearTimeout');
      timers = options.timers;
    }
    const waitSamples = options.waitSamples === undefined ? 4096 : validateInteger(options.waitSamples, 'options.waitSamples', 1, 1 << 24);
    const name = options.name === undefined ? 'pool' : validateString(options.name, 'options.name');
    const start = clock();
    if (typeof start !== 'number' || !Number.isFinite(start)) {
      throw new InvalidArgTypeError('options.clock', 'a function returning a finite number', start);
    }

    this.name = name;
    this.max = max;
    this.min = min;
    this.acquireTimeout = acquireTimeout;
    this.idleTimeout = idleTimeout;
    this.maxLifetime = maxLifetime;
    this.evictionInterval = evictionInterval;
    this.#factory = factory;
    this.#validate = factory.validate ? factory.validate.bind(factory) : null;
    this.#clock = clock;
    this.#timers = timers;
    this.#fixedSize = fixedSize;
    this.#sizeOf = sizeOf;
    this.#charges = { budget, bytes: 0 };
    this.#waits = new Float64Array(waitSamples);
    this.#createdAt = start;
    this.#since = start;
    if (budget !== null) registry.register(this, this.#charges, this);
    this.#ready = this.#ensureMin();
    this.#armEviction();
  }

  // ---- lending --------------------------------------------------------------------

  /**
   * Lends a resource: an idle one (most recently used first), a new one while
   * the pool is below `max`, or the next one returned. Rejects with
   * {@link PoolTimeoutError} after the timeout, {@link PoolCreateError} or
   * {@link PoolBudgetError} when the resource made for this request could not
   * be made, {@link PoolClosedError} once the pool drains or closes.
   */
  acquire(options?: PoolAcquireOptions): Promise<T> {
    let timeout = this.acquireTimeout;
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      validateObject(options, 'options');
      if (options.timeout !== undefined) timeout = validateTimeout(options.timeout, 'options.timeout');
      if (options.signal !== undefined) {
        if (!(options.signal instanceof AbortSignal)) throw new InvalidArgTypeError('options.signal', 'an instance of AbortSignal', options.signal);
        signal = options.signal;
      }
    }
    if (this.#state !== 'open') {
      this.#c.rejected++;
      return Promise.reject(new PoolClosedError(this.name));
    }
    if (signal?.aborted) {
      this.#c.cancelled++;
      return Promise.reject(signal.reason);
    }
    this.#c.requests++;
    const now = this.#clock();
    // Fast path: nobody waits and an idle resource needs no validation.
    if (this.#waiting === 0 && this.#validate === null) {
      while (this.#idle.length > 0) {
        const e = this.#idle.pop()!;
        if (now - e.createdAt > this.maxLifetime) {
          this.#destroyEntry(e);
          continue;
        }
        e.state = 1;
        e.loans++;
        this.#inUse++;
        this.#c.successes++;
        this.#recordWait(0);
        if (this.#entries.size + this.#creating < this.min) void this.#ensureMin();
        return Promise.resolve(e.resource);
      }
    }
    return new Promise<T>((resolve, reject) => {
      const w: Waiter<T> = { resolve, reject, at: now, timeout, timer: null, settled: false, queued: true, signal, onAbort: null };
      if (timeout !== Infinity) {
        w.timer = this.#timers.setTimeout(() => this.#onTimeout(w), Math.min(timeout, MAX_TIMER));
      }
      if (signal !== undefined) {
        w.onAbort = () => this.#onAbort(w);
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.#queue.push(w);
      this.#waiting++;
      this.#dispatch();
    });
  }

  /** Returns a lent resource. Throws {@link PoolNotLentError} for anything else. */
  release(resource: T): void {
    const e = this.#entries.get(resource);
    if (e === undefined || e.state !== 1) throw new PoolNotLentError(this.name);
    this.#inUse--;
    if (this.#state === 'closed' || this.#age(e) > this.maxLifetime) {
      this.#destroyEntry(e);
      if (this.#state === 'open') void this.#ensureMin();
    } else {
      e.state = 0;
      e.idleSince = this.#clock();
      this.#idle.push(e);
    }
    this.#dispatch();
    this.#checkDrained();
  }

  /**
   * Takes a lent resource out of the pool and destroys it (it is broken).
   * A replacement is made when requests wait or the pool is below `min`.
   */
  destroy(resource: T): Promise<void> {
    const e = this.#entries.get(resource);
    if (e === undefined || e.state !== 1) throw new PoolNotLentError(this.name);
    this.#inUse--;
    const done = this.#destroyEntry(e);
    if (this.#state === 'open') void this.#ensureMin();
    this.#dispatch();
    this.#checkDrained();
    return done;
  }

  /** Acquires a resource, runs `fn` with it and releases it, however `fn` ends. */
  use<R>(fn: (resource: T) => R | Promise<R>, options?: PoolAcquireOptions): Promise<R> {
    // Bad arguments throw here, before anything is requested.
    validateFunction(fn, 'fn');
    return this.#useWith(this.acquire(options), fn);
  }

  async #useWith<R>(acquired: Promise<T>, fn: (resource: T) => R | Promise<R>): Promise<R> {
    const r = await acquired;
    const e = this.#entries.get(r)!;
    const loan = e.loans;
    try {
      return await fn(r);
    } finally {
      // fn may have given it back itself (it may since be lent again), or
      // destroyed it as broken: only this loan is given back here.
      if (this.#entries.get(r) === e && e.state === 1 && e.loans === loan) this.release(r);
    }
  }

  /** Resolves once the resources made at construction to reach `min` have settled. */
  ready(): Promise<void> {
    return this.#ready;
  }

  // ---- recycling --------------------------------------------------------------------

  /**
   * Runs the eviction sweep now: destroys idle resources past `maxLifetime`,
   * then those idle for more than `idleTimeout` while the pool stays at or
   * above `min`, then tops the pool up to `min`. Returns how many it destroyed.
   * The pool runs it every `evictionInterval` ms on its own.
   */
  evict(): number {
    if (this.#state === 'closed') return 0;
    const now = this.#clock();
    let destroyed = 0;
    const keep: Entry<T>[] = [];
    // Oldest idle first, so the least recently used go before the MRU ones.
    for (const e of this.#idle) {
      if (now - e.createdAt > this.maxLifetime) {
        this.#destroyEntry(e);
        destroyed++;
      } else if (now - e.idleSince > this.idleTimeout && this.#entries.size + this.#creating > this.min) {
        this.#destroyEntry(e);
        destroyed++;
      } else {
        keep.push(e);
      }
    }
    this.#idle = keep;
    if (this.#state === 'open') void this.#ensureMin();
    this.#dispatch();
    this.#checkDrained();
    return destroyed;
  }

  // ---- closing ------------------------------------------------------------------------

  /**
   * Stops taking requests (new ones reject with {@link PoolClosedError}), lets
   * the requests already waiting be served or time out, waits for every loan
   * to come back, then destroys every resource. Resolves when all destroy()
   * calls have settled. Idempotent.
   */
  drain(): Promise<void> {
    return this.#shutdown(false);
  }

  /**
   * Like {@link drain}, but requests still waiting are rejected at once with
   * {@link PoolClosedError}. Loans still out are awaited, then destroyed.
   */
  close(): Promise<void> {
    return this.#shutdown(true);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** True once drain() or close() was called. */
  get closed(): boolean {
    return this.#state !== 'open';
  }

  // ---- figures ----------------------------------------------------------------------

  get size(): number {
    return this.#entries.size;
  }
  get idle(): number {
    return this.#idle.length;
  }
  get inUse(): number {
    return this.#inUse;
  }
  /** Requests not served yet: queued, or waiting for a resource being made or validated. */
  get waiting(): number {
    return this.#waiting + this.#assigned.size;
  }
  get pending(): number {
    return this.#creating;
  }

  /**
   * Sizes of the pool's internal structures (for leak checks): live entries,
   * idle list, waiter queue slots (including settled ones not yet compacted),
   * destroy calls in flight, wait samples kept.
   */
  internals(): { entries: number; idleList: number; queueSlots: number; destroying: number; waitSamples: number } {
    return {
      entries: this.#entries.size,
      idleList: this.#idle.length,
      queueSlots: this.#queue.length,
      destroying: this.#destroying.size,
      waitSamples: this.#waitCount,
    };
  }

  /** Counters, state, wait percentiles, rates and health. */
  metrics(): PoolMetrics {
    const now = this.#clock();
    const c = this.#c;
    const sorted = this.#waits.slice(0, this.#waitCount).sort();
    const elapsedMs = Math.max(0, now - this.#since);
    // Rates over at least one second, so a pool just reset does not report
    // a burst of a few requests as thousands per second.
    const windowSec = Math.max(1000, elapsedMs) / 1000;
    const healthScore = poolHealthScore(c);
    return {
      name: this.name,
      max: this.max,
      min: this.min,
      ...c,
      size: this.#entries.size,
      pending: this.#creating,
      idle: this.#idle.length,
      inUse: this.#inUse,
      waiting: this.#waiting + this.#assigned.size,
      utilisation: (this.#entries.size - this.#idle.length) / this.max,
      chargedBytes: this.#charges.bytes,
      waitP50: percentile(sorted, 50),
      waitP99: percentile(sorted, 99),
      waitSamples: this.#waitCount,
      uptimeMs: Math.max(0, now - this.#createdAt),
      elapsedMs,
      rates: {
        requestsPerSec: c.requests / windowSec,
        successesPerSec: c.successes / windowSec,
        timeoutsPerSec: c.timeouts / windowSec,
        errorsPerSec: c.errors / windowSec,
      },
      healthScore,
      health: poolHealthStatus(healthScore),
    };
  }

  /** Health score and band (see the module documentation). */
  health(): { score: number; status: PoolHealth } {
    const score = poolHealthScore(this.#c);
    return { score, status: poolHealthStatus(score) };
  }

  /**
   * Sets the counters and wait samples back to zero. The uptime keeps
   * counting from the pool's creation; rates count from now.
   */
  reset(): void {
    const c = this.#c;
    for (const k of Object.keys(c) as (keyof typeof c)[]) c[k] = 0;
    this.#waitNext = 0;
    this.#waitCount = 0;
    this.#since = this.#clock();
  }

  // ---- internals ------------------------------------------------------------------------

  #age(e: Entry<T>): number {
    return this.#clock() - e.createdAt;
  }

  #dispatch(): void {
    while (this.#waiting > 0) {
      if (this.#idle.length > 0) {
        const e = this.#idle.pop()!;
        if (this.#clock() - e.createdAt > this.maxLifetime) {
          this.#destroyEntry(e);
          continue;
        }
        this.#lend(e, this.#shift());
        continue;
      }
      if (this.#state === 'closed') return;
      if (this.#entries.size + this.#creating < this.max) {
        this.#createFor(this.#shift());
        continue;
      }
      return;
    }
  }

  /** Takes the first unsettled waiter off the queue (there is one: #waiting > 0). */
  #shift(): Waiter<T> {
    for (;;) {
      const w = this.#queue[this.#head++]!;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      w.queued = false;
      if (!w.settled) {
        this.#waiting--;
        this.#assigned.add(w);
        if (this.#head === this.#queue.length) {
          this.#queue.length = 0;
          this.#head = 0;
        }
        return w;
      }
    }
  }

  /** Puts a waiter back at the front (its resource failed validation). */
  #unshift(w: Waiter<T>): void {
    if (this.#head > 0) this.#queue[--this.#head] = w;
    else this.#queue.unshift(w);
    w.queued = true;
    this.#assigned.delete(w);
    this.#waiting++;
  }

  #lend(e: Entry<T>, w: Waiter<T>): void {
    if (this.#validate === null) {
      this.#grant(e, w);
      return;
    }
    e.state = 2;
    this.#validating++;
    let check: Promise<boolean>;
    try {
      check = Promise.resolve(this.#validate(e.resource));
    } catch (err) {
      check = Promise.reject(err);
    }
    check.then(
      (ok) => this.#validated(e, w, ok === true, null),
      (err: unknown) => this.#validated(e, w, false, err),
    );
  }

  #validated(e: Entry<T>, w: Waiter<T>, ok: boolean, err: unknown): void {
    this.#validating--;
    if (!ok) {
      this.#c.validateFailures++;
      if (err !== null) this.#report('validate', err);
      e.state = 0;
      this.#destroyEntry(e);
      if (!w.settled) this.#unshift(w);
      // The replacement waits for the next turn of the event loop: with a
      // create() and validate() that settle at once, replacing in this turn
      // ran in microtasks without end, and no timer (the waiter's own
      // timeout included) could run.
      this.#checkDrained();
      setImmediate(() => {
        try {
          this.#dispatch();
          this.#checkDrained();
        } catch (err) {
          this.#report('create', err);
        }
      });
      return;
    } else if (w.settled || this.#state === 'closed') {
      e.state = 0;
      if (this.#state === 'closed') this.#destroyEntry(e);
      else {
        e.idleSince = this.#clock();
        this.#idle.push(e);
      }
    } else {
      this.#grant(e, w);
      return;
    }
    this.#dispatch();
    this.#checkDrained();
  }

  #grant(e: Entry<T>, w: Waiter<T>): void {
    e.state = 1;
    e.loans++;
    this.#inUse++;
    this.#settle(w);
    this.#c.successes++;
    this.#recordWait(this.#clock() - w.at);
    w.resolve(e.resource);
  }

  #settle(w: Waiter<T>): void {
    w.settled = true;
    this.#assigned.delete(w);
    if (w.timer !== null) {
      this.#timers.clearTimeout(w.timer);
      w.timer = null;
    }
    if (w.onAbort !== null) {
      w.signal!.removeEventListener('abort', w.onAbort);
      w.onAbort = null;
    }
  }

  #onTimeout(w: Waiter<T>): void {
    try {
      if (w.settled) return;
      w.timer = null;
      // A waiter still in the queue leaves it; one whose resource is being
      // made or validated is simply settled (the resource goes to the next).
      if (this.#inQueue(w)) this.#waiting--;
      this.#settle(w);
      this.#c.timeouts++;
      w.reject(new PoolTimeoutError(this.name, this.#clock() - w.at, w.timeout, this.max, this.#inUse, this.#waiting));
      this.#checkDrained();
    } catch (err) {
      this.#report('create', err);
    }
  }

  #onAbort(w: Waiter<T>): void {
    if (w.settled) return;
    if (this.#inQueue(w)) this.#waiting--;
    this.#settle(w);
    this.#c.cancelled++;
    w.reject(w.signal!.reason);
    this.#checkDrained();
  }

  #inQueue(w: Waiter<T>): boolean {
    if (!w.queued) return false;
    // The waiter leaves the queue lazily; drop settled slots once they
    // outnumber the live ones, so a pool whose requests all time out does
    // not keep a growing queue.
    w.queued = false;
    const slots = this.#queue.length - this.#head;
    if (this.#waiting === 1) {
      this.#queue = [];
      this.#head = 0;
    } else if (slots > 64 && slots > 2 * this.#waiting) {
      this.#queue = this.#queue.slice(this.#head).filter((q) => q.queued);
      this.#head = 0;
    }
    return true;
  }

  #createFor(w: Waiter<T> | null): Promise<void> {
    const budget = this.#charges.budget;
    let reserved = 0;
    if (budget !== null && this.#sizeOf === null) {
      if (budget.closed || !chargeBytes(budget, this.#fixedSize)) {
        this.#refuseBudget(w, this.#fixedSize);
        return Promise.resolve();
      }
      reserved = this.#fixedSize;
      this.#charges.bytes += reserved;
    }
    this.#creating++;
    let made: Promise<T>;
    try {
      made = Promise.resolve(this.#factory.create());
    } catch (err) {
      made = Promise.reject(err);
    }
    return made.then(
      (resource) => this.#created(resource, reserved, w),
      (err: unknown) => this.#createFailed(err, reserved, w),
    );
  }

  #refuseBudget(w: Waiter<T> | null, bytes: number): void {
    const b = this.#charges.budget!;
    const error = new PoolBudgetError(this.name, bytes, b.limit, b instanceof LimitedAllocator ? b.allocatedBytes : b.used);
    this.#c.createFailures++;
    if (w !== null && !w.settled) {
      this.#settle(w);
      this.#c.errors++;
      w.reject(error);
    } else {
      this.#report('create', error);
    }
  }

  #created(resource: T, reserved: number, w: Waiter<T> | null): void {
    this.#creating--;
    let bytes = reserved;
    const budget = this.#charges.budget;
    if (this.#sizeOf !== null) {
      let size: number;
      try {
        size = this.#sizeOf(resource);
        validateInteger(size, 'resourceSize(resource)', 0);
      } catch (err) {
        this.#failNew(resource, w, new PoolCreateError(this.name, err));
        return;
      }
      if (budget !== null) {
        if (budget.closed || !chargeBytes(budget, size)) {
          this.#destroyRaw(resource);
          this.#refuseBudget(w, size);
          this.#afterChange();
          return;
        }
        this.#charges.bytes += size;
      }
      bytes = budget !== null ? size : 0;
    }
    const notObject = resource === null || (typeof resource !== 'object' && typeof resource !== 'function');
    if (notObject || this.#entries.has(resource)) {
      // The same object twice would make two loans of one resource; a value
      // that is not an object (undefined from a create() that forgot to
      // return) cannot be told apart from the next one.
      if (bytes > 0) this.#uncharge(bytes);
      this.#c.createFailures++;
      const error = new PoolCreateError(
        this.name,
        new Error(notObject ? `create() must return an object (it returned ${resource === null ? 'null' : typeof resource})` : 'create() returned a resource the pool already holds'),
      );
      if (w !== null && !w.settled) {
        this.#settle(w);
        this.#c.errors++;
        w.reject(error);
      } else this.#report('create', error);
      this.#afterChange();
      return;
    }
    const now = this.#clock();
    const e: Entry<T> = { resource, createdAt: now, idleSince: now, state: 0, bytes, loans: 0 };
    this.#entries.set(resource, e);
    this.#c.created++;
    if (this.#state === 'closed') {
      this.#destroyEntry(e);
    } else if (w !== null && !w.settled) {
      // A fresh resource is validated like any other when the factory has validate().
      this.#lend(e, w);
    } else {
      this.#idle.push(e);
    }
    this.#afterChange();
  }

  #failNew(resource: T, w: Waiter<T> | null, error: PoolCreateError): void {
    this.#destroyRaw(resource);
    this.#c.createFailures++;
    if (w !== null && !w.settled) {
      this.#settle(w);
      this.#c.errors++;
      w.reject(error);
    } else this.#report('create', error);
    this.#afterChange();
  }

  #createFailed(err: unknown, reserved: number, w: Waiter<T> | null): void {
    this.#creating--;
    if (reserved > 0) this.#uncharge(reserved);
    this.#c.createFailures++;
    if (w !== null && !w.settled) {
      this.#settle(w);
      this.#c.errors++;
      w.reject(new PoolCreateError(this.name, err));
    } else {
      this.#report('create', err);
    }
    this.#afterChange();
  }

  #afterChange(): void {
    this.#dispatch();
    this.#checkDrained();
  }

  /** Creates resources (for nobody in particular) until the pool holds `min`. */
  #ensureMin(): Promise<void> {
    if (this.#state !== 'open') return Promise.resolve();
    const made: Promise<void>[] = [];
    while (this.#entries.size + this.#creating < this.min) {
      const before = this.#creating;
      made.push(this.#createFor(null));
      if (this.#creating === before) break; // refused by the budget
    }
    return made.length === 0 ? Promise.resolve() : Promise.all(made).then(() => undefined);
  }

  #destroyEntry(e: Entry<T>): Promise<void> {
    this.#entries.delete(e.resource);
    if (e.bytes > 0) this.#uncharge(e.bytes);
    return this.#destroyRaw(e.resource);
  }

  #destroyRaw(resource: T): Promise<void> {
    this.#c.destroyed++;
    let done: Promise<void>;
    try {
      done = Promise.resolve(this.#factory.destroy(resource)).then(
        () => undefined,
        (err: unknown) => this.#destroyFailed(err),
      );
    } catch (err) {
      this.#destroyFailed(err);
      return Promise.resolve();
    }
    this.#destroying.add(done);
    void done.then(() => {
      this.#destroying.delete(done);
      this.#checkDrained();
    });
    return done;
  }

  #destroyFailed(err: unknown): void {
    this.#c.destroyFailures++;
    this.#report('destroy', err);
  }

  #uncharge(bytes: number): void {
    this.#charges.bytes -= bytes;
    try {
      releaseCharge(this.#charges.budget!, bytes);
    } catch (err) {
      this.#report('destroy', err);
    }
  }

  #report(operation: PoolFactoryError['operation'], error: unknown): void {
    // Reported to whoever listens; counted either way, never thrown.
    if (this.listenerCount('factoryError') > 0) {
      try {
        this.emit('factoryError', { operation, error } satisfies PoolFactoryError);
      } catch {
        // A listener that throws is not the pool's to propagate.
      }
    }
  }

  #recordWait(ms: number): void {
    this.#waits[this.#waitNext] = ms;
    this.#waitNext = (this.#waitNext + 1) % this.#waits.length;
    if (this.#waitCount < this.#waits.length) this.#waitCount++;
  }

  #armEviction(): void {
    if (this.#state === 'closed' || (this.idleTimeout === Infinity && this.maxLifetime === Infinity)) return;
    const h = ResourcePool.#evictionTimer<T>(new WeakRef(this), this.#timers, this.evictionInterval);
    (h as { unref?: () => void } | null)?.unref?.();
    this.#evictTimer = h;
  }

  /**
   * The sweep's timer. It holds the pool weakly (and is made where no
   * instance is in scope), so a pool dropped without close() can still be
   * collected and its finalizer give its budget charge back.
   */
  static #evictionTimer<U>(ref: WeakRef<ResourcePool<U>>, timers: PoolTimers, ms: number): unknown {
    return timers.setTimeout(() => {
      const pool = ref.deref();
      if (pool === undefined) return;
      pool.#evictTimer = null;
      try {
        pool.evict();
      } catch (err) {
        pool.#report('destroy', err);
      }
      pool.#armEviction();
    }, ms);
  }

  #shutdown(rejectWaiting: boolean): Promise<void> {
    if (rejectWaiting && this.#state !== 'closed') {
      this.#state = 'closed';
      for (let i = this.#head; i < this.#queue.length; i++) {
        const w = this.#queue[i]!;
        if (w.settled) continue;
        this.#settle(w);
        this.#c.rejected++;
        w.reject(new PoolClosedError(this.name));
      }
      this.#queue = [];
      this.#head = 0;
      this.#waiting = 0;
      // Requests whose resource is still being made or validated are waiting too.
      for (const w of [...this.#assigned]) {
        this.#settle(w);
        this.#c.rejected++;
        w.reject(new PoolClosedError(this.name));
      }
    } else if (this.#state === 'open') {
      this.#state = 'draining';
    }
    if (this.#drained === null) {
      this.#drained = new Promise<void>((resolve) => {
        this.#wakeDrain = resolve;
      });
    }
    this.#checkDrained();
    return this.#drained;
  }

  #checkDrained(): void {
    if (this.#wakeDrain === null) return;
    if (this.#state === 'draining' && this.#waiting === 0 && this.#creating === 0 && this.#validating === 0) {
      this.#state = 'closed';
    }
    if (this.#state !== 'closed') return;
    if (this.#inUse > 0 || this.#creating > 0 || this.#validating > 0) return;
    if (this.#evictTimer !== null) {
      this.#timers.clearTimeout(this.#evictTimer);
      this.#evictTimer = null;
    }
    for (const e of this.#idle) this.#destroyEntry(e);
    this.#idle = [];
    if (this.#destroying.size > 0) return;
    const wake = this.#wakeDrain;
    this.#wakeDrain = null;
    if (this.#charges.budget !== null) registry.unregister(this);
    wake();
  }
}

/** Nearest-rank percentile of sorted values (0 when empty). */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}
