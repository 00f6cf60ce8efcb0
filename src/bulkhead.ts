/**
 * A bulkhead: a bounded concurrency gate with a bounded wait queue, wait
 * timeouts, an overflow strategy, an adaptive limit that follows the
 * degradation level, and pool-style metrics with a health score.
 *
 * Permits are granted in FIFO order. A permit is released exactly once: its
 * release function ignores second calls, so a caller's bug cannot push the
 * in-use count below zero or above the limit.
 *
 * Health, as a connection pool defines it:
 * `score = 100 − timeout % − error %`, both as percentages of the requests
 * that have reached an outcome (permits granted + waits timed out + requests
 * rejected); healthy at 95 or more, degraded at 80 or more, else unhealthy.
 * Counters are cumulative since creation or {@link Bulkhead.resetMetrics};
 * wait percentiles are over the most recent `waitSamples` grants, so memory
 * stays bounded however long the bulkhead lives.
 *
 * @module
 */
import { InvalidArgTypeError, OutOfRangeError, ResourceError } from './errors';
import { validateInteger, validateNumber, validateObject, validateOneOf, validateString } from './validate';

/**
 * Degradation levels, from least to most severe: the same four names as the
 * degradation controller's, declared here so the bulkhead does not depend on it.
 */
export type BulkheadLevel = 'normal' | 'reduced' | 'minimal' | 'emergency';

const LEVELS: readonly BulkheadLevel[] = Object.freeze(['normal', 'reduced', 'minimal', 'emergency'] as const);

/**
 * Fractions of `maxConcurrent` allowed at each level, after the batch sizes
 * of the degradation table (100 %, 50 %, 25 %, 0 %). The limit never goes
 * below `minConcurrent`.
 */
export const DEFAULT_LEVEL_FACTORS: Readonly<Record<BulkheadLevel, number>> = Object.freeze({
  normal: 1,
  reduced: 0.5,
  minimal: 0.25,
  emergency: 0,
});

/**
 * Anything that has a degradation `level` and emits `'change'` with
 * `{ from, to }` — the degradation controller, or a stand-in.
 */
export interface LevelSource {
  readonly level: string;
  on(event: 'change', listener: (change: { from: string; to: string }) => void): unknown;
  off?(event: 'change', listener: (change: { from: string; to: string }) => void): unknown;
  removeListener?(event: 'change', listener: (change: { from: string; to: string }) => void): unknown;
}

/** Options of the adaptive limit. */
export interface AdaptiveOptions {
  /** Follow this source's level (read now, then on every `'change'`). */
  source?: LevelSource;
  /** Fraction of `maxConcurrent` per level. @default DEFAULT_LEVEL_FACTORS */
  factors?: Partial<Record<BulkheadLevel, number>>;
  /** The limit never goes below this. @default 1 */
  minConcurrent?: number;
}

/** What to do with a request when the queue is full. */
export type OverflowStrategy = 'reject' | 'drop-oldest';

/** Options of {@link Bulkhead}. */
export interface BulkheadOptions {
  /** Permits that may be held at once (at the `normal` level). */
  maxConcurrent: number;
  /** Requests that may wait for a permit. @default Infinity */
  maxQueue?: number;
  /** Milliseconds a request may wait before it fails with {@link BulkheadTimeoutError}. @default Infinity */
  waitTimeout?: number;
  /**
   * When the queue is full: `reject` refuses the new request, `drop-oldest`
   * sheds the request that has waited longest (it fails with
   * {@link BulkheadRejectedError}, `reason: 'dropped'`) and queues the new one.
   * @default 'reject'
   */
  overflow?: OverflowStrategy;
  /** Follow a degradation level source, or configure how levels map to limits. */
  adaptive?: AdaptiveOptions;
  /** Recent waits kept for the percentiles. @default 4096 */
  waitSamples?: number;
  /** Name used in error messages. @default 'bulkhead' */
  name?: string;
}

/** Options of one acquisition. */
export interface AcquireOptions {
  /** Overrides the bulkhead's `waitTimeout` for this request. */
  timeout?: number;
  /** Withdraws the request while it waits; it rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Ends a permit. Call it once; later calls do nothing. `failed` counts the work as an error. */
export type Release = (failed?: boolean) => void;

export type BulkheadHealth = 'healthy' | 'degraded' | 'unhealthy';

/** A snapshot of a bulkhead's state and counters. */
export interface BulkheadMetrics {
  name: string;
  maxConcurrent: number;
  /** The limit in force now (adaptive). */
  limit: number;
  level: BulkheadLevel;
  inUse: number;
  /** Requests waiting (queue length). */
  queued: number;
  maxQueue: number;
  /** Permits granted. */
  acquisitions: number;
  /** Permits released as successful. */
  successes: number;
  /** Permits released as failed (the work threw). */
  errors: number;
  /** Waits that timed out. */
  timeouts: number;
  /** Requests refused: queue full, dropped by drop-oldest, or bulkhead closed. */
  rejections: number;
  /** Of `rejections`, those shed by drop-oldest. */
  dropped: number;
  /** Requests withdrawn by their caller's signal (not counted for health). */
  cancelled: number;
  /** inUse / limit (0..1; above 1 while a lowered limit drains). */
  utilisation: number;
  /** Median wait of recent grants, ms. */
  waitP50: number;
  /** 99th percentile wait of recent grants, ms. */
  waitP99: number;
  /** Longest wait of recent grants, ms. */
  waitMax: number;
  /** Grants the percentiles are computed over. */
  waitSamples: number;
  healthScore: number;
  health: BulkheadHealth;
}

/** A request waited longer than its timeout. */
export class BulkheadTimeoutError extends ResourceError {
  constructor(
    readonly bulkhead: string,
    /** Milliseconds waited. */
    readonly waited: number,
    /** The timeout, ms. */
    readonly timeout: number,
    readonly limit: number,
    readonly inUse: number,
    readonly queued: number,
  ) {
    super(
      'ERR_BULKHEAD_TIMEOUT',
      `${bulkhead}: no permit within ${timeout} ms (waited ${Math.round(waited)} ms; ${inUse} of ${limit} permits in use, ${queued} waiting)`,
    );
  }
}

/** Why a request was refused. */
export type RejectionReason = 'queue-full' | 'dropped' | 'closed';

/** A request was refused without waiting its turn. */
export class BulkheadRejectedError extends ResourceError {
  constructor(
    readonly bulkhead: string,
    readonly reason: RejectionReason,
    readonly limit: number,
    readonly inUse: number,
    readonly queued: number,
    readonly maxQueue: number,
  ) {
    super(
      'ERR_BULKHEAD_REJECTED',
      reason === 'closed'
        ? `${bulkhead} is closed`
        : reason === 'dropped'
          ? `${bulkhead}: request dropped from a full queue (${maxQueue} waiting) to make room for a newer one`
          : `${bulkhead}: queue full (${queued} of ${maxQueue} waiting, ${inUse} of ${limit} permits in use)`,
    );
  }
}

/**
 * Health score from counters: 100 − timeout % − error %, over requests that
 * reached an outcome (acquisitions + timeouts + rejections); 100 before any.
 * Always in [0, 100]. Counts must be integers >= 0 (`ERR_OUT_OF_RANGE`
 * otherwise), and `errors` cannot exceed `acquisitions`, since only a granted
 * permit can fail (`ERR_OUT_OF_RANGE`).
 */
export function bulkheadHealthScore(c: { acquisitions: number; timeouts: number; rejections: number; errors: number }): number {
  validateObject(c, 'counts');
  const acquisitions = validateInteger(c.acquisitions, 'counts.acquisitions');
  const timeouts = validateInteger(c.timeouts, 'counts.timeouts');
  const rejections = validateInteger(c.rejections, 'counts.rejections');
  const errors = validateInteger(c.errors, 'counts.errors');
  if (errors > acquisitions) throw new OutOfRangeError('counts.errors', `<= counts.acquisitions (${acquisitions})`, errors);
  return scoreOf(acquisitions, timeouts, rejections, errors);
}

/** The score of consistent counts; errors above acquisitions count as acquisitions. */
function scoreOf(acquisitions: number, timeouts: number, rejections: number, errors: number): number {
  const requests = acquisitions + timeouts + rejections;
  if (requests === 0) return 100;
  // One division keeps exact boundaries exact (95 of 100 is 95, not 94.999…).
  return (100 * (requests - timeouts - Math.min(errors, acquisitions))) / requests;
}

/** Health band of a score: healthy >= 95, degraded >= 80, else unhealthy. */
export function bulkheadHealthStatus(score: number): BulkheadHealth {
  validateNumber(score, 'score');
  return score >= 95 ? 'healthy' : score >= 80 ? 'degraded' : 'unhealthy';
}

interface Waiter {
  /** Called with the permit already counted as granted. */
  resolve: () => void;
  reject: (err: unknown) => void;
  enqueuedAt: number;
  /** enqueuedAt + the bulkhead's waitTimeout, for waiters on the shared deadline timer. */
  deadline: number;
  /** False once granted, timed out, dropped, aborted or closed. */
  queued: boolean;
  /** Own timer of a request with a timeout other than the bulkhead's. */
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  prev: Waiter | null;
  next: Waiter | null;
}

const now = (): number => performance.now();

/** A bounded concurrency gate with a queue. */
export class Bulkhead {
  readonly name: string;
  readonly maxConcurrent: number;
  readonly maxQueue: number;
  readonly waitTimeout: number;
  readonly overflow: OverflowStrategy;

  #limit: number;
  #level: BulkheadLevel = 'normal';
  readonly #factors: Record<BulkheadLevel, number>;
  readonly #minConcurrent: number;
  #source: LevelSource | undefined;
  readonly #onSourceChange = (change: { from: string; to: string }): void => this.#followSource(change?.to);

  #inUse = 0;
  #head: Waiter | null = null;
  #tail: Waiter | null = null;
  #queued = 0;
  #closed = false;

  #acquisitions = 0;
  #successes = 0;
  #errors = 0;
  #timeouts = 0;
  #rejections = 0;
  #dropped = 0;
  #cancelled = 0;

  readonly #waits: Float64Array;
  #waitCount = 0;

  /**
   * Waiters with the bulkhead's own wait timeout, in queue order. Their
   * deadlines only grow along it, so one timer armed for the first live one
   * serves them all, instead of a timer per waiter. Entries that left the
   * queue are skipped lazily.
   */
  #deadlines: Waiter[] = [];
  #deadlineHead = 0;
  #deadlineTimer: NodeJS.Timeout | undefined;

  constructor(options: BulkheadOptions) {
    validateObject(options, 'options');
    this.maxConcurrent = validateInteger(options.maxConcurrent, 'options.maxConcurrent', 1);
    this.maxQueue = options.maxQueue === undefined || options.maxQueue === Infinity ? Infinity : validateInteger(options.maxQueue, 'options.maxQueue', 0);
    this.waitTimeout = timeoutOf(options.waitTimeout, 'options.waitTimeout');
    this.overflow = options.overflow === undefined ? 'reject' : validateOneOf(options.overflow, 'options.overflow', ['reject', 'drop-oldest'] as const);
    this.name = options.name === undefined ? 'bulkhead' : validateString(options.name, 'options.name');
    const samples = options.waitSamples === undefined ? 4096 : validateInteger(options.waitSamples, 'options.waitSamples', 1, 1 << 20);
    this.#waits = new Float64Array(samples);

    const adaptive = options.adaptive === undefined ? {} : validateObject<AdaptiveOptions>(options.adaptive, 'options.adaptive');
    this.#factors = { ...DEFAULT_LEVEL_FACTORS };
    if (adaptive.factors !== undefined) {
      validateObject(adaptive.factors, 'options.adaptive.factors');
      for (const [k, v] of Object.entries(adaptive.factors)) {
        const level = validateOneOf(k, 'options.adaptive.factors key', LEVELS);
        if (v !== undefined) this.#factors[level] = validateNumber(v, `options.adaptive.factors.${level}`, 0, 1);
      }
    }
    this.#minConcurrent =
      adaptive.minConcurrent === undefined ? 1 : validateInteger(adaptive.minConcurrent, 'options.adaptive.minConcurrent', 0, this.maxConcurrent);
    this.#limit = this.#limitFor('normal');
    if (adaptive.source !== undefined) {
      const source = adaptive.source;
      if (typeof source !== 'object' || source === null || typeof source.on !== 'function') {
        throw new InvalidArgTypeError('options.adaptive.source', "an object with a 'level' and an on('change', fn) method", source);
      }
      this.#source = source;
      this.setLevel(validateOneOf(source.level, 'options.adaptive.source.level', LEVELS));
      source.on('change', this.#onSourceChange);
    }
  }

  /** Permits held now. */
  get inUse(): number {
    return this.#inUse;
  }

  /** Requests waiting now. */
  get queued(): number {
    return this.#queued;
  }

  /** The concurrency limit in force now. */
  get limit(): number {
    return this.#limit;
  }

  /** The degradation level the limit follows. */
  get level(): BulkheadLevel {
    return this.#level;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sets the degradation level: the limit becomes
   * `max(minConcurrent, floor(maxConcurrent × factor[level]))`. Lowering it
   * lets permits already held finish; raising it admits waiters at once.
   */
  setLevel(level: BulkheadLevel): void {
    validateOneOf(level, 'level', LEVELS);
    this.#level = level;
    this.#limit = this.#limitFor(level);
    this.#dispatch();
  }

  /**
   * Waits for a permit and resolves with its release function. Rejects with
   * {@link BulkheadTimeoutError} after the wait timeout,
   * {@link BulkheadRejectedError} when the queue is full, the request is
   * dropped or the bulkhead is closed, or the signal's reason when aborted.
   */
  acquire(options?: AcquireOptions): Promise<Release> {
    const { timeout, signal } = this.#acquireOptions(options);
    if (this.#closed) return Promise.reject(this.#reject('closed'));
    if (signal?.aborted) {
      this.#cancelled++;
      return Promise.reject(signal.reason);
    }
    if (this.#head === null && this.#inUse < this.#limit) {
      this.#grant(0);
      return Promise.resolve(this.#permit());
    }
    return new Promise<Release>((resolve, reject) => {
      this.#enqueue(() => resolve(this.#permit()), reject, timeout, signal);
    });
  }

  /**
   * Runs `fn` under a permit and releases it when `fn` settles (counting a
   * throw or rejection as an error). Rejects like {@link acquire} when no
   * permit is granted; then `fn` is not called.
   */
  run<T>(fn: () => T | PromiseLike<T>, options?: AcquireOptions): Promise<Awaited<T>> {
    if (typeof fn !== 'function') throw new InvalidArgTypeError('fn', 'of type function', fn);
    const { timeout, signal } = this.#acquireOptions(options);
    if (this.#closed) return Promise.reject(this.#reject('closed'));
    if (signal?.aborted) {
      this.#cancelled++;
      return Promise.reject(signal.reason);
    }
    if (this.#head === null && this.#inUse < this.#limit) {
      this.#grant(0);
      return this.#invoke(fn);
    }
    return new Promise<Awaited<T>>((resolve, reject) => {
      this.#enqueue(() => this.#invokeInto(fn, resolve, reject), reject, timeout, signal);
    });
  }

  /** Counters, limit, queue and wait percentiles, with the health score. */
  metrics(): BulkheadMetrics {
    const n = Math.min(this.#waitCount, this.#waits.length);
    const sorted = this.#waits.slice(0, n).sort();
    const score = this.#score();
    return {
      name: this.name,
      maxConcurrent: this.maxConcurrent,
      limit: this.#limit,
      level: this.#level,
      inUse: this.#inUse,
      queued: this.#queued,
      maxQueue: this.maxQueue,
      acquisitions: this.#acquisitions,
      successes: this.#successes,
      errors: this.#errors,
      timeouts: this.#timeouts,
      rejections: this.#rejections,
      dropped: this.#dropped,
      cancelled: this.#cancelled,
      utilisation: this.#limit > 0 ? this.#inUse / this.#limit : this.#inUse > 0 ? 1 : 0,
      waitP50: percentile(sorted, 50),
      waitP99: percentile(sorted, 99),
      waitMax: n > 0 ? sorted[n - 1]! : 0,
      waitSamples: n,
      healthScore: score,
      health: bulkheadHealthStatus(score),
    };
  }

  /** The health score and band alone. */
  health(): { score: number; status: BulkheadHealth } {
    const score = this.#score();
    return { score, status: bulkheadHealthStatus(score) };
  }

  /** Zeroes the counters and the wait window (not the permits held or the queue). */
  resetMetrics(): void {
    this.#acquisitions = this.#successes = this.#errors = this.#timeouts = 0;
    this.#rejections = this.#dropped = this.#cancelled = 0;
    this.#waitCount = 0;
  }

  /**
   * Refuses new requests, rejects every waiting one with
   * {@link BulkheadRejectedError} (`reason: 'closed'`) and stops following
   * the level source. Permits already held are released as usual. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const source = this.#source;
    if (source !== undefined) {
      if (typeof source.off === 'function') source.off('change', this.#onSourceChange);
      else if (typeof source.removeListener === 'function') source.removeListener('change', this.#onSourceChange);
      this.#source = undefined;
    }
    while (this.#head !== null) {
      const w = this.#head;
      this.#unlink(w);
      w.reject(this.#reject('closed'));
    }
    this.#pruneDeadlines();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ---- internals -------------------------------------------------------------

  /**
   * The health score. After resetMetrics() a permit granted before the reset
   * can still fail, so errors may exceed acquisitions; they are capped there
   * and the score stays in [0, 100].
   */
  #score(): number {
    return scoreOf(this.#acquisitions, this.#timeouts, this.#rejections, this.#errors);
  }

  #limitFor(level: BulkheadLevel): number {
    return Math.max(this.#minConcurrent, Math.floor(this.maxConcurrent * this.#factors[level]));
  }

  #followSource(level: unknown): void {
    if (this.#closed) return;
    if (typeof level === 'string' && (LEVELS as readonly string[]).includes(level)) {
      this.setLevel(level as BulkheadLevel);
      return;
    }
    // Never throw into the emitter: an unknown level is reported and ignored.
    process.emitWarning(`${this.name}: ignored unknown degradation level ${JSON.stringify(level)}`, { code: 'RG_BULKHEAD_UNKNOWN_LEVEL' });
  }

  #acquireOptions(options: AcquireOptions | undefined): { timeout: number; signal: AbortSignal | undefined } {
    if (options === undefined) return { timeout: this.waitTimeout, signal: undefined };
    validateObject(options, 'options');
    const timeout = options.timeout === undefined ? this.waitTimeout : timeoutOf(options.timeout, 'options.timeout');
    const signal = options.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new InvalidArgTypeError('options.signal', 'an instance of AbortSignal', signal);
    }
    return { timeout, signal };
  }

  #grant(waited: number): void {
    this.#inUse++;
    this.#acquisitions++;
    this.#waits[this.#waitCount++ % this.#waits.length] = waited;
  }

  #permit(): Release {
    let done = false;
    return (failed?: boolean): void => {
      if (done) return;
      done = true;
      this.#finish(failed === true);
    };
  }

  #invoke<T>(fn: () => T | PromiseLike<T>): Promise<Awaited<T>> {
    let result: T | PromiseLike<T>;
    try {
      result = fn();
    } catch (err) {
      this.#finish(true);
      return Promise.reject(err);
    }
    return Promise.resolve(result).then(
      (value) => {
        this.#finish(false);
        return value;
      },
      (err: unknown) => {
        this.#finish(true);
        throw err;
      },
    );
  }

  /**
   * {@link #invoke} settling the caller's promise directly, so a queued run
   * does not pay for one promise adopting another.
   */
  #invokeInto<T>(fn: () => T | PromiseLike<T>, resolve: (v: Awaited<T>) => void, reject: (e: unknown) => void): void {
    let result: T | PromiseLike<T>;
    try {
      result = fn();
    } catch (err) {
      this.#finish(true);
      reject(err);
      return;
    }
    // Always through a microtask, also for a plain value: finishing inside
    // #dispatch would recurse once per queued synchronous task.
    Promise.resolve(result).then(
      (value) => {
        this.#finish(false);
        resolve(value);
      },
      (err: unknown) => {
        this.#finish(true);
        reject(err);
      },
    );
  }

  #finish(failed: boolean): void {
    if (failed) this.#errors++;
    else this.#successes++;
    this.#inUse--;
    this.#dispatch();
  }

  /** Grants permits to waiters while the limit allows. */
  #dispatch(): void {
    if (this.#head === null || this.#inUse >= this.#limit) return;
    const t = now();
    while (this.#head !== null && this.#inUse < this.#limit) {
      const w = this.#head;
      this.#unlink(w);
      this.#grant(t - w.enqueuedAt);
      w.resolve();
    }
    this.#pruneDeadlines();
  }

  #enqueue(resolve: () => void, reject: (e: unknown) => void, timeout: number, signal: AbortSignal | undefined): void {
    if (this.#queued >= this.maxQueue) {
      if (this.overflow === 'reject' || this.#head === null) {
        reject(this.#reject('queue-full'));
        return;
      }
      const oldest = this.#head;
      this.#unlink(oldest);
      this.#dropped++;
      oldest.reject(this.#reject('dropped'));
    }
    const t = now();
    const w: Waiter = {
      resolve,
      reject,
      enqueuedAt: t,
      deadline: t + timeout,
      queued: true,
      timer: undefined,
      signal,
      onAbort: undefined,
      prev: this.#tail,
      next: null,
    };
    if (this.#tail === null) this.#head = w;
    else this.#tail.next = w;
    this.#tail = w;
    this.#queued++;
    if (timeout === this.waitTimeout && timeout !== Infinity) {
      this.#deadlines.push(w);
      if (this.#deadlineTimer === undefined) this.#armDeadlines(timeout);
    } else if (timeout !== Infinity) {
      w.timer = setTimeout(() => this.#expire(w, timeout), timeout);
    }
    if (signal !== undefined) {
      w.onAbort = () => {
        this.#unlink(w);
        this.#cancelled++;
        w.reject(signal.reason);
        this.#pruneDeadlines();
      };
      signal.addEventListener('abort', w.onAbort, { once: true });
    }
  }

  #expire(w: Waiter, timeout: number): void {
    this.#unlink(w);
    this.#timeouts++;
    w.reject(new BulkheadTimeoutError(this.name, now() - w.enqueuedAt, timeout, this.#limit, this.#inUse, this.#queued));
  }

  #armDeadlines(ms: number): void {
    // Timers may fire up to a millisecond early: round up, and re-arm if early.
    this.#deadlineTimer = setTimeout(() => this.#onDeadline(), Math.max(1, Math.ceil(ms)));
  }

  /** Times out every waiter on the shared timer whose deadline has passed. */
  #onDeadline(): void {
    this.#deadlineTimer = undefined;
    const t = now();
    const list = this.#deadlines;
    while (this.#deadlineHead < list.length) {
      const w = list[this.#deadlineHead]!;
      if (w.queued) {
        if (w.deadline > t) break;
        this.#expire(w, this.waitTimeout);
      }
      list[this.#deadlineHead++] = undefined as unknown as Waiter;
    }
    this.#pruneDeadlines();
    const rest = this.#deadlines;
    if (this.#deadlineHead < rest.length) this.#armDeadlines(rest[this.#deadlineHead]!.deadline - t);
  }

  /**
   * Drops entries that left the queue from the front of the deadline list,
   * compacts it, and disarms the timer when no waiter needs it (so an idle
   * bulkhead never keeps the process alive).
   */
  #pruneDeadlines(): void {
    const list = this.#deadlines;
    while (this.#deadlineHead < list.length && !list[this.#deadlineHead]!.queued) {
      list[this.#deadlineHead++] = undefined as unknown as Waiter;
    }
    if (this.#deadlineHead === list.length || this.#queued === 0) {
      if (list.length > 0) this.#deadlines = [];
      this.#deadlineHead = 0;
      if (this.#deadlineTimer !== undefined) {
        clearTimeout(this.#deadlineTimer);
        this.#deadlineTimer = undefined;
      }
    } else if (this.#deadlineHead > 1024 && this.#deadlineHead * 2 > list.length) {
      this.#deadlines = list.slice(this.#deadlineHead);
      this.#deadlineHead = 0;
    }
  }

  /** Removes a waiter from the queue and disarms its timer and signal. */
  #unlink(w: Waiter): void {
    if (w.prev !== null) w.prev.next = w.next;
    else this.#head = w.next;
    if (w.next !== null) w.next.prev = w.prev;
    else this.#tail = w.prev;
    w.prev = w.next = null;
    w.queued = false;
    this.#queued--;
    if (w.timer !== undefined) clearTimeout(w.timer);
    if (w.onAbort !== undefined) w.signal!.removeEventListener('abort', w.onAbort);
  }

  #reject(reason: RejectionReason): BulkheadRejectedError {
    this.#rejections++;
    return new BulkheadRejectedError(this.name, reason, this.#limit, this.#inUse, this.#queued, this.maxQueue);
  }
}

function timeoutOf(v: unknown, name: string): number {
  if (v === undefined || v === Infinity) return Infinity;
  validateNumber(v, name, 0);
  if ((v as number) > 2 ** 31 - 1) throw new OutOfRangeError(name, 'a number of milliseconds <= 2147483647, or Infinity', v);
  return v as number;
}

/** Nearest-rank percentile of sorted values (0 when empty). */
function percentile(sorted: Float64Array, p: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  return sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!;
}
