/**
 * Meters for the sandbox limits a task keeps through what it is given, as
 * the IO meter does for bytes: memory growth per sliding window, threads it
 * starts, network use (concurrent connections, requests per second, bytes
 * sent and received) and an idle watch. Each refuses a request whole, with a
 * typed error naming the limit and what was used, and counts nothing it
 * refused; none blocks; every time-based rule reads an injectable clock.
 *
 * This module must not load the native addon: task workers import it.
 *
 * @module
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { InvalidArgTypeError, OutOfRangeError } from '../errors';
import { CountLimitError, OverReleaseError, RateLimitError, TimeoutError } from './errors';
import { SlidingWindow, amountOf, clockOption, windowOf, type LimitClock } from './window';

/** Bytes in one WebAssembly page, the unit of a growth limit in pages. */
const PAGE = 65_536;

function limitOrInfinity(v: unknown, name: string): number {
  if (v === undefined || v === Infinity) return Infinity;
  return amountOf(v, name);
}

function noteActivity(fn: unknown, name: string): (() => void) | undefined {
  if (fn === undefined) return undefined;
  if (typeof fn !== 'function') throw new InvalidArgTypeError(name, 'of type function', fn);
  return fn as () => void;
}

// ---- memory growth rate -------------------------------------------------------------

/** Options of {@link GrowthRateMeter}. */
export interface GrowthRateOptions {
  /** Growth allowed per window, in `unit`s. */
  limit: number;
  /** The sliding window, ms. */
  windowMs: number;
  /** `bytes`, or `pages` (64 KiB WebAssembly pages). @default 'bytes' */
  unit?: 'bytes' | 'pages';
  clock?: LimitClock;
  onActivity?: () => void;
}

/**
 * At most `limit` bytes (or pages) of memory growth within any `windowMs`.
 * Call {@link grow} before growing: a refused request does not consume the
 * window.
 */
export class GrowthRateMeter {
  readonly unit: 'bytes' | 'pages';
  readonly #window: SlidingWindow;
  readonly #onActivity: (() => void) | undefined;
  #total = 0;

  constructor(options: GrowthRateOptions) {
    if (typeof options !== 'object' || options === null) throw new InvalidArgTypeError('options', 'of type object', options);
    const unit = options.unit === undefined ? 'bytes' : options.unit;
    if (unit !== 'bytes' && unit !== 'pages') throw new OutOfRangeError('options.unit', "'bytes' or 'pages'", unit);
    const clock = clockOption(options.clock, 'options.clock');
    this.#window = new SlidingWindow(amountOf(options.limit, 'options.limit'), windowOf(options.windowMs, 'options.windowMs'), clock);
    this.#onActivity = noteActivity(options.onActivity, 'options.onActivity');
    this.unit = unit;
  }

  get limit(): number {
    return this.#window.limit;
  }
  get windowMs(): number {
    return this.#window.windowMs;
  }
  /** Growth within the current window, in units. */
  get inWindow(): number {
    return this.#window.used();
  }
  /** Growth granted in total, in units. */
  get total(): number {
    return this.#total;
  }
  /** Growth granted in total, bytes. */
  get totalBytes(): number {
    return this.unit === 'pages' ? this.#total * PAGE : this.#total;
  }

  /** Grants `amount` units of growth, or throws `ERR_MEMORY_GROWTH_RATE` granting none. */
  grow(amount: number): void {
    if (!this.tryGrow(amount)) {
      const w = this.#window;
      throw new RateLimitError('ERR_MEMORY_GROWTH_RATE', 'memory growth', w.limit, w.windowMs, w.used(), amount, this.unit);
    }
  }

  /** Grants `amount` units if the window allows it; false (nothing granted) otherwise. */
  tryGrow(amount: number): boolean {
    amountOf(amount, 'amount');
    if (!this.#window.tryTake(amount)) return false;
    this.#total += amount;
    this.#onActivity?.();
    return true;
  }
}

// ---- counted handles (threads) ------------------------------------------------------------

/** A count of things held at once, with a limit; over-release is refused. */
const HELD_CODES: readonly unknown[] = ['ERR_OPEN_FILES_LIMIT', 'ERR_THREADS_LIMIT', 'ERR_CONNECTIONS_LIMIT'];

export class HeldCounter {
  readonly limit: number;
  readonly #code: 'ERR_OPEN_FILES_LIMIT' | 'ERR_THREADS_LIMIT' | 'ERR_CONNECTIONS_LIMIT';
  readonly #resource: string;
  #held = 0;
  #peak = 0;

  constructor(limit: number | undefined, resource: string, code: 'ERR_OPEN_FILES_LIMIT' | 'ERR_THREADS_LIMIT' | 'ERR_CONNECTIONS_LIMIT') {
    this.limit = limitOrInfinity(limit, 'limit');
    if (typeof resource !== 'string') throw new InvalidArgTypeError('resource', 'of type string', resource);
    if (resource === '') throw new OutOfRangeError('resource', 'a non-empty name', resource);
    if (!HELD_CODES.includes(code)) throw new OutOfRangeError('code', HELD_CODES.map((c) => `'${c}'`).join(', '), code);
    this.#resource = resource;
    this.#code = code;
  }

  get held(): number {
    return this.#held;
  }
  get peak(): number {
    return this.#peak;
  }

  /** Takes `n` (refused whole above the limit). */
  acquire(n = 1): void {
    amountOf(n, 'n');
    if (this.#held + n > this.limit) throw new CountLimitError(this.#code, this.#resource, this.limit, this.#held, n);
    this.#held += n;
    if (this.#held > this.#peak) this.#peak = this.#held;
  }

  /** Gives back `n`; more than held is refused with `ERR_OVER_RELEASE`, changing nothing. */
  release(n = 1): void {
    amountOf(n, 'n');
    if (n > this.#held) throw new OverReleaseError(this.#resource, this.#held, n);
    this.#held -= n;
  }
}

/** Options of {@link ThreadMeter}. */
export interface ThreadMeterOptions {
  /** Workers the task may have running at once. @default Infinity */
  threads?: number;
  onActivity?: () => void;
}

/**
 * Workers a task starts: counted from `startWorker()` until the worker
 * exits (however it exits), refused above the limit with `ERR_THREADS_LIMIT`.
 */
export class ThreadMeter {
  readonly #count: HeldCounter;
  readonly #onActivity: (() => void) | undefined;
  #started = 0;

  constructor(options: ThreadMeterOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new InvalidArgTypeError('options', 'of type object', options);
    this.#count = new HeldCounter(options.threads, 'threads', 'ERR_THREADS_LIMIT');
    this.#onActivity = noteActivity(options.onActivity, 'options.onActivity');
  }

  get limit(): number {
    return this.#count.limit;
  }
  /** Workers running now. */
  get running(): number {
    return this.#count.held;
  }
  get peak(): number {
    return this.#count.peak;
  }
  /** Workers started in total. */
  get started(): number {
    return this.#started;
  }

  /** `new Worker(filename, options)`, counted until its `'exit'`. */
  startWorker(filename: string | URL, options?: WorkerOptions): Worker {
    // Checked before the count is taken, so a refused call leaves the peak as it was.
    if (!(filename instanceof URL) && (typeof filename !== 'string' || filename === '')) {
      throw new InvalidArgTypeError('filename', 'a non-empty string or an instance of URL', filename);
    }
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new InvalidArgTypeError('options', 'of type object', options);
    }
    this.#count.acquire(1);
    let worker: Worker;
    try {
      worker = new Worker(filename, options);
    } catch (err) {
      this.#count.release(1);
      throw err;
    }
    this.#started++;
    this.#onActivity?.();
    worker.once('exit', () => {
      this.#count.release(1);
      this.#onActivity?.();
    });
    return worker;
  }
}

// ---- network --------------------------------------------------------------------------------

/** Options of {@link NetworkMeter}. */
export interface NetworkMeterOptions {
  /** Connections (requests in flight) at once. @default Infinity */
  connections?: number;
  /** Requests per second (a sliding window of 1000 ms). @default Infinity */
  requestsPerSecond?: number;
  /** Bytes of request bodies in total. @default Infinity */
  bytesSent?: number;
  /** Bytes of response bodies in total. @default Infinity */
  bytesReceived?: number;
  clock?: LimitClock;
  onActivity?: () => void;
  /** The fetch to use. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/**
 * Network use through the meter: `fetch()` is refused before anything is
 * sent when a connection, the request rate or the bytes-sent budget would
 * pass its limit; the response body is read whole and charged against
 * bytes received (refused, and not returned, above it).
 */
export class NetworkMeter {
  readonly #connections: HeldCounter;
  readonly #rate: SlidingWindow | null;
  readonly bytesSentLimit: number;
  readonly bytesReceivedLimit: number;
  readonly #onActivity: (() => void) | undefined;
  readonly #fetch: typeof fetch;
  #sent = 0;
  #received = 0;
  #requests = 0;

  constructor(options: NetworkMeterOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new InvalidArgTypeError('options', 'of type object', options);
    const clock = clockOption(options.clock, 'options.clock');
    const rps = limitOrInfinity(options.requestsPerSecond, 'options.requestsPerSecond');
    this.bytesSentLimit = limitOrInfinity(options.bytesSent, 'options.bytesSent');
    this.bytesReceivedLimit = limitOrInfinity(options.bytesReceived, 'options.bytesReceived');
    const f = options.fetch === undefined ? globalThis.fetch : options.fetch;
    if (typeof f !== 'function') throw new InvalidArgTypeError('options.fetch', 'of type function', f);
    this.#onActivity = noteActivity(options.onActivity, 'options.onActivity');
    this.#connections = new HeldCounter(options.connections, 'network connections', 'ERR_CONNECTIONS_LIMIT');
    this.#rate = rps === Infinity ? null : new SlidingWindow(rps, 1000, clock);
    this.#fetch = f;
  }

  get connections(): number {
    return this.#connections.held;
  }
  get peakConnections(): number {
    return this.#connections.peak;
  }
  get bytesSent(): number {
    return this.#sent;
  }
  get bytesReceived(): number {
    return this.#received;
  }
  /** Requests let through. */
  get requests(): number {
    return this.#requests;
  }

  /**
   * Takes a connection for a request of `bodyBytes`: checks the connection
   * limit, the request rate and the bytes-sent budget, all before counting
   * any. Returns the function that gives the connection back (once).
   */
  open(bodyBytes = 0): () => void {
    amountOf(bodyBytes, 'bodyBytes');
    const c = this.#connections;
    if (c.held + 1 > c.limit) throw new CountLimitError('ERR_CONNECTIONS_LIMIT', 'network connections', c.limit, c.held, 1);
    if (this.#sent + bodyBytes > this.bytesSentLimit) {
      throw new CountLimitError('ERR_NETWORK_BYTES_LIMIT', 'network bytes sent', this.bytesSentLimit, this.#sent, bodyBytes);
    }
    const r = this.#rate;
    if (r !== null && !r.tryTake(1)) throw new RateLimitError('ERR_NETWORK_RATE', 'network requests', r.limit, r.windowMs, r.used(), 1, 'requests');
    c.acquire(1);
    this.#sent += bodyBytes;
    this.#requests++;
    this.#onActivity?.();
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      c.release(1);
      this.#onActivity?.();
    };
  }

  /** Charges `bytes` received; refused whole above the budget. */
  chargeReceived(bytes: number): void {
    amountOf(bytes, 'bytes');
    if (this.#received + bytes > this.bytesReceivedLimit) {
      throw new CountLimitError('ERR_NETWORK_BYTES_LIMIT', 'network bytes received', this.bytesReceivedLimit, this.#received, bytes);
    }
    this.#received += bytes;
    this.#onActivity?.();
  }

  /**
   * `fetch(input, init)` through the meter. The request body must be a
   * string or bytes (its size is charged before sending). The response body
   * is read whole and returned as a new `Response`.
   */
  fetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
    // The arguments are checked here, synchronously; the limits when the request starts.
    if (typeof input !== 'string' && !(input instanceof URL) && !(typeof Request === 'function' && (input as unknown) instanceof Request)) {
      throw new InvalidArgTypeError('input', 'a string, an instance of URL or a Request', input);
    }
    if (typeof init !== 'object' || init === null) throw new InvalidArgTypeError('init', 'of type object', init);
    const body = init.body;
    let size = 0;
    if (typeof body === 'string') size = Buffer.byteLength(body);
    else if (body instanceof Uint8Array || body instanceof ArrayBuffer) size = body.byteLength;
    else if (body !== undefined && body !== null) {
      throw new InvalidArgTypeError('init.body', 'a string, a Uint8Array or an ArrayBuffer (so its size can be charged)', body);
    }
    return this.#fetchSized(input, init, size);
  }

  async #fetchSized(input: string | URL, init: RequestInit, size: number): Promise<Response> {
    const done = this.open(size);
    try {
      const res = await this.#fetch(input, init);
      const declared = Number(res.headers.get('content-length'));
      if (Number.isInteger(declared) && declared > 0 && this.#received + declared > this.bytesReceivedLimit) {
        await res.body?.cancel().catch(() => undefined);
        throw new CountLimitError('ERR_NETWORK_BYTES_LIMIT', 'network bytes received', this.bytesReceivedLimit, this.#received, declared);
      }
      const data = new Uint8Array(await res.arrayBuffer());
      this.chargeReceived(data.byteLength);
      return new Response(res.status === 204 || res.status === 304 ? null : data, { status: res.status, statusText: res.statusText, headers: res.headers });
    } finally {
      done();
    }
  }
}

// ---- idle ------------------------------------------------------------------------------------

/** Timer functions an idle watch arms its check with. */
export interface IdleTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Options of {@link IdleWatch}. */
export interface IdleWatchOptions {
  /** Milliseconds without activity after which the watch fires. */
  idleMs: number;
  /** Called once with a `TimeoutError` (`operation: 'idle'`) when the task has been idle too long. */
  onIdle: (error: TimeoutError) => void;
  clock?: LimitClock;
  timers?: IdleTimers;
}

/**
 * Fires when nothing called {@link touch} for more than `idleMs`: a task idle
 * exactly `idleMs` is still alive, one more millisecond ends it. Pass
 * `watch.touch` as the meters' `onActivity`.
 */
export class IdleWatch {
  readonly idleMs: number;
  readonly #clock: LimitClock;
  readonly #timers: IdleTimers;
  readonly #onIdle: (error: TimeoutError) => void;
  #last: number;
  #timer: unknown = null;
  #fired = false;
  #closed = false;

  constructor(options: IdleWatchOptions) {
    if (typeof options !== 'object' || options === null) throw new InvalidArgTypeError('options', 'of type object', options);
    this.idleMs = windowOf(options.idleMs, 'options.idleMs');
    // Node's timers take at most 2^31 - 1 ms; a longer delay would fire at once.
    if (this.idleMs > 2 ** 31 - 1) throw new OutOfRangeError('options.idleMs', `at most ${2 ** 31 - 1} ms`, this.idleMs);
    if (typeof options.onIdle !== 'function') throw new InvalidArgTypeError('options.onIdle', 'of type function', options.onIdle);
    if (options.timers !== undefined && (typeof options.timers !== 'object' || options.timers === null)) {
      throw new InvalidArgTypeError('options.timers', 'an object with setTimeout and clearTimeout', options.timers);
    }
    const timers = options.timers ?? { setTimeout: (cb: () => void, ms: number) => setTimeout(cb, ms), clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout) };
    if (typeof timers.setTimeout !== 'function' || typeof timers.clearTimeout !== 'function') {
      throw new InvalidArgTypeError('options.timers', 'an object with setTimeout and clearTimeout', timers);
    }
    this.#clock = clockOption(options.clock, 'options.clock');
    this.#timers = timers;
    this.#onIdle = options.onIdle;
    this.#last = this.#clock();
    this.#arm(this.idleMs);
  }

  /** Records activity now. */
  readonly touch = (): void => {
    if (!this.#closed && !this.#fired) this.#last = this.#clock();
  };

  /** Milliseconds since the last activity. */
  get idleFor(): number {
    return this.#clock() - this.#last;
  }

  get fired(): boolean {
    return this.#fired;
  }

  /** Checks now; returns the error it fired with, or null. */
  check(): TimeoutError | null {
    if (this.#closed || this.#fired) return null;
    const idle = this.#clock() - this.#last;
    if (idle <= this.idleMs) return null;
    this.#fired = true;
    this.close();
    const err = new TimeoutError(this.idleMs, idle, 'task', 'idle');
    try {
      this.#onIdle(err);
    } catch {
      // The callback's failure is its own; the watch never throws into a timer.
    }
    return err;
  }

  /** Stops the watch. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== null) {
      this.#timers.clearTimeout(this.#timer);
      this.#timer = null;
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #arm(ms: number): void {
    const h = this.#timers.setTimeout(() => {
      this.#timer = null;
      if (this.check() === null && !this.#closed) {
        // Due when the last activity is more than idleMs old: one ms past the edge.
        this.#arm(Math.max(1, this.#last + this.idleMs + 1 - this.#clock()));
      }
    }, ms);
    (h as { unref?: () => void } | null)?.unref?.();
    this.#timer = h;
  }
}
