/**
 * Load shedding for HTTP servers: answer 503 with `Retry-After` while the
 * degradation level is at or above a configured level, or while a custom
 * health check fails; or shed a share of requests that grows with the level.
 *
 * One {@link LoadShedder} decides; thin adapters put it in front of a
 * server: {@link LoadShedder.middleware} for node:http and Express,
 * {@link LoadShedder.koa} for Koa, and the Fastify plugin in `fastify.ts`.
 * While nothing can be shed (the custom check passes and the current level
 * sheds no share) a request costs one count and one test of cached state:
 * its path is not looked at. Only when shedding applies are exempt paths
 * matched and shed requests counted. The level is read from the controller
 * (a getter), and the custom check runs on its own interval, never on the
 * request path.
 *
 * See docs/shedding.md.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getHeapStatistics } from 'node:v8';
import {
  DEGRADATION_LEVELS,
  DegradationController,
  isDegradationLevel,
  type DegradationLevel,
  type DegradationOptions,
} from './degradation';
import { InvalidArgTypeError, InvalidArgValueError, OutOfRangeError } from './errors';
import {
  createResourceSampler,
  statusFromFigures,
  type ResourceFigures,
  type ResourceSampler,
  type ResourceSamplerOptions,
} from './health';
import { validateBoolean, validateFunction, validateInteger, validateNumber, validateObject, validateOneOf, validateString } from './validate';

/** Why a request was shed. */
export type ShedCause = 'level' | 'check' | 'check-timeout' | 'check-error';

export const SHED_CAUSES: readonly ShedCause[] = Object.freeze(['level', 'check', 'check-timeout', 'check-error'] as const);

/** A decision to shed one request. */
export interface ShedDecision {
  readonly cause: ShedCause;
  /** The degradation level at the time. */
  readonly level: DegradationLevel;
  /** Seconds sent in `Retry-After`. */
  readonly retryAfter: number;
}

/** A custom health check: true (or a truthy value) when healthy. May be async. */
export type HealthCheck = () => unknown | Promise<unknown>;

export interface LoadShedderOptions {
  /**
   * The controller whose level decides. Without one, the shedder makes its
   * own and feeds it the real figures every `sampleIntervalMs`
   * (closed by {@link LoadShedder.close}).
   */
  controller?: DegradationController;
  /** Thresholds of the controller the shedder makes (ignored with `controller`). */
  degradation?: DegradationOptions;
  /** Reader of the figures for the controller the shedder makes. @default createResourceSampler() */
  figures?: () => Partial<ResourceFigures>;
  /** Options of the sampler the shedder makes for its own controller (when no `figures`). */
  sampler?: ResourceSamplerOptions;
  /** How often the shedder's own controller is fed, ms. @default 1000 */
  sampleIntervalMs?: number;
  /** Shed every request from this level on. @default 'emergency' */
  shedAt?: DegradationLevel;
  /**
   * Fractional mode: the share of requests shed at each level, 0..1,
   * non-decreasing with the level. `true` means
   * `{ normal: 0, reduced: 0, minimal: 0.5, emergency: 1 }`. Replaces `shedAt`.
   */
  fraction?: boolean | Partial<Record<DegradationLevel, number>>;
  /**
   * How shed requests are picked in fractional mode: by default a counter
   * spreads them evenly (exactly the share, give or take one request); give
   * a random source in [0, 1) to pick at random instead.
   */
  random?: () => number;
  /** Custom check; while it fails (false, throws, rejects or times out), every non-exempt request is shed. */
  healthCheck?: HealthCheck;
  /** How often the custom check runs, ms (it also runs once at start). @default 1000 */
  healthCheckIntervalMs?: number;
  /** A check that has not settled after this long counts as failed (`check-timeout`), ms. @default 1000 */
  healthCheckTimeoutMs?: number;
  /** Seconds in `Retry-After`. @default 10 */
  retryAfter?: number;
  /**
   * Paths never shed: exact paths (`'/healthz'`), prefixes ending in `*`
   * (`'/internal/*'`) or regular expressions, matched against the path
   * without its query string. Added to the defaults unless `defaultExempt` is false.
   */
  exempt?: ReadonlyArray<string | RegExp>;
  /** Exempt `/health`, `/healthz`, `/ready`, `/readyz`, `/live`, `/livez`, `/status` and `/metrics`. @default true */
  defaultExempt?: boolean;
  /** Body of a 503: a string, or a function of the decision. @default a short JSON error */
  body?: string | ((decision: ShedDecision) => string);
  /** Content type of the body. @default 'application/json; charset=utf-8' (text/plain for a string body) */
  contentType?: string;
  /**
   * Called before a 503 is sent. Return `'pass'` to let the request through
   * after all, or `'handled'` when it answered the request itself.
   */
  onShed?: (decision: ShedDecision, req: IncomingMessage, res: ServerResponse) => 'pass' | 'handled' | void;
  /** Where a failing health check or `onShed` reports; without a listener they are counted only. */
  onError?: (err: unknown) => void;
}

export interface LoadShedderStats {
  /** Requests seen (exempt ones included). */
  requests: number;
  /**
   * Requests let through because their path (or Fastify route) is exempt,
   * counted while shedding applies: while nothing can be shed, a request's
   * path is not looked at.
   */
  exempt: number;
  /** Requests shed, in all. */
  shed: number;
  /** Requests shed per cause. */
  shedByCause: Record<ShedCause, number>;
  /** Requests shed per level at the time. */
  shedByLevel: Record<DegradationLevel, number>;
  /** The custom check's state: null when healthy or absent, else the cause of its failure. */
  checkFailure: Exclude<ShedCause, 'level'> | null;
}

const DEFAULT_EXEMPT = ['/health', '/healthz', '/ready', '/readyz', '/live', '/livez', '/status', '/metrics'];
const DEFAULT_FRACTION: Readonly<Record<DegradationLevel, number>> = Object.freeze({
  normal: 0,
  reduced: 0,
  minimal: 0.5,
  emergency: 1,
});

/**
 * Exempt paths. Exact paths are kept by length, so the check for a request
 * compares its path only with those of the same length, in place, without
 * cutting the query string off (no new string, no hashing).
 */
type Matcher = { exactByLength: Array<string[] | undefined>; prefixes: string[]; patterns: RegExp[] };

/**
 * The first half of a decision, for the adapters in other modules of this
 * package (the Fastify plugin): counts the request and returns true when it
 * goes through because nothing can be shed now, without looking at its path.
 * On false the adapter finishes with {@link decideCounted} or
 * {@link countExempt}. Set by a static block of LoadShedder, which alone can
 * reach its private fields.
 * @internal
 */
export let admit: (shedder: LoadShedder) => boolean;
/**
 * The second half of a decision for a request {@link admit} counted and did
 * not let through: null to serve it (its path is exempt, or the fractional
 * share spares it), or why to shed it.
 * @internal
 */
export let decideCounted: (shedder: LoadShedder, path: string) => ShedDecision | null;
/**
 * Counts a request {@link admit} counted and did not let through as exempt
 * (a Fastify route that opted out).
 * @internal
 */
export let countExempt: (shedder: LoadShedder) => void;

/** Decides which requests to shed; see the module text. */
export class LoadShedder {
  readonly #controller: DegradationController;
  readonly #ownController: boolean;
  readonly #share: Float64Array; // per level index
  /** The first level index whose share is above 0 (4 when none is): below it nothing is shed. */
  readonly #shedFrom: number;
  readonly #random: (() => number) | null;
  readonly #retryAfter: number;
  readonly #retryAfterText: string;
  readonly #matcher: Matcher;
  readonly #body: string | ((d: ShedDecision) => string);
  readonly #contentType: string;
  readonly #onShed: LoadShedderOptions['onShed'] | null;
  readonly #onError: ((err: unknown) => void) | null;
  readonly #check: HealthCheck | null;
  readonly #checkTimeoutMs: number;
  readonly #decisions: ShedDecision[][];
  #seq = 0;
  #checkFailure: Exclude<ShedCause, 'level'> | null = null;
  #checkRunning: Promise<void> | null = null;
  #checkTimer: NodeJS.Timeout | null = null;
  #sampleTimer: NodeJS.Timeout | null = null;
  #sampler: ResourceSampler | null = null;
  #closed = false;
  #requests = 0;
  #exempt = 0;
  readonly #byCause = new Float64Array(SHED_CAUSES.length);
  readonly #byLevel = new Float64Array(DEGRADATION_LEVELS.length);
  readonly #byPair = new Float64Array(SHED_CAUSES.length * DEGRADATION_LEVELS.length);

  constructor(options: LoadShedderOptions = {}) {
    validateObject(options, 'options');
    const o = options;
    // ---- validate everything before taking anything ----
    if (o.controller !== undefined && !(o.controller instanceof DegradationController)) {
      throw new InvalidArgTypeError('options.controller', 'an instance of DegradationController', o.controller);
    }
    if (o.degradation !== undefined) validateObject(o.degradation, 'options.degradation');
    const figures = o.figures === undefined ? null : validateFunction<() => Partial<ResourceFigures>>(o.figures, 'options.figures');
    if (o.sampler !== undefined) validateObject(o.sampler, 'options.sampler');
    const sampleMs = o.sampleIntervalMs === undefined ? 1000 : validateNumber(o.sampleIntervalMs, 'options.sampleIntervalMs', 1, 3_600_000);
    const shedAt = o.shedAt === undefined ? 'emergency' : validateOneOf(o.shedAt, 'options.shedAt', DEGRADATION_LEVELS);
    const share = new Float64Array(4);
    if (o.fraction === undefined || o.fraction === false) {
      const from = DEGRADATION_LEVELS.indexOf(shedAt);
      for (let k = 0; k < 4; k++) share[k] = k >= from ? 1 : 0;
    } else if (o.fraction === true) {
      DEGRADATION_LEVELS.forEach((l, k) => (share[k] = DEFAULT_FRACTION[l]));
    } else {
      validateObject(o.fraction, 'options.fraction');
      for (const key of Object.keys(o.fraction)) {
        if (!isDegradationLevel(key)) {
          throw new InvalidArgValueError(`options.fraction.${key}`, key, `is not a level (use ${DEGRADATION_LEVELS.join(', ')})`);
        }
      }
      let prev = 0;
      DEGRADATION_LEVELS.forEach((l, k) => {
        const v = (o.fraction as Partial<Record<DegradationLevel, number>>)[l];
        const x = v === undefined ? (k === 0 ? 0 : prev) : validateNumber(v, `options.fraction.${l}`, 0, 1);
        if (x < prev) throw new OutOfRangeError(`options.fraction.${l}`, `>= the share of the level below (${prev})`, x);
        share[k] = x;
        prev = x;
      });
    }
    const random = o.random === undefined ? null : validateFunction<() => number>(o.random, 'options.random');
    const check = o.healthCheck === undefined ? null : validateFunction<HealthCheck>(o.healthCheck, 'options.healthCheck');
    const checkEvery =
      o.healthCheckIntervalMs === undefined ? 1000 : validateNumber(o.healthCheckIntervalMs, 'options.healthCheckIntervalMs', 1, 3_600_000);
    const checkTimeout =
      o.healthCheckTimeoutMs === undefined ? 1000 : validateNumber(o.healthCheckTimeoutMs, 'options.healthCheckTimeoutMs', 1, 3_600_000);
    const retryAfter = o.retryAfter === undefined ? 10 : validateNumber(o.retryAfter, 'options.retryAfter', 0, 86_400 * 365);
    if (!Number.isInteger(retryAfter)) throw new OutOfRangeError('options.retryAfter', 'a whole number of seconds', retryAfter);
    const defaultExempt = o.defaultExempt === undefined ? true : validateBoolean(o.defaultExempt, 'options.defaultExempt');
    const matcher: Matcher = { exactByLength: [], prefixes: [], patterns: [] };
    const list: Array<string | RegExp> = defaultExempt ? [...DEFAULT_EXEMPT] : [];
    if (o.exempt !== undefined) {
      if (!Array.isArray(o.exempt)) throw new InvalidArgTypeError('options.exempt', 'an array of paths or regular expressions', o.exempt);
      o.exempt.forEach((e, i) => {
        if (!(e instanceof RegExp)) validateString(e, `options.exempt[${i}]`);
        list.push(e);
      });
    }
    for (const e of list) {
      if (e instanceof RegExp) matcher.patterns.push(e);
      else if (e.endsWith('*')) matcher.prefixes.push(e.slice(0, -1));
      else (matcher.exactByLength[e.length] ??= []).push(e);
    }
    let body: string | ((d: ShedDecision) => string);
    let contentType: string;
    if (o.body === undefined) {
      body = defaultBody;
      contentType = 'application/json; charset=utf-8';
    } else if (typeof o.body === 'string') {
      body = o.body;
      contentType = 'text/plain; charset=utf-8';
    } else {
      body = validateFunction<(d: ShedDecision) => string>(o.body, 'options.body');
      contentType = 'application/json; charset=utf-8';
    }
    if (o.contentType !== undefined) contentType = validateString(o.contentType, 'options.contentType');
    const onShed = o.onShed === undefined ? null : validateFunction<NonNullable<LoadShedderOptions['onShed']>>(o.onShed, 'options.onShed');
    const onError = o.onError === undefined ? null : validateFunction<(err: unknown) => void>(o.onError, 'options.onError');
    // Constructing the controller validates its options before anything starts.
    const controller = o.controller ?? new DegradationController(o.degradation);

    // ---- take resources ----
    this.#controller = controller;
    this.#ownController = o.controller === undefined;
    this.#share = share;
    let shedFrom = 0;
    while (shedFrom < 4 && share[shedFrom] === 0) shedFrom++;
    this.#shedFrom = shedFrom;
    this.#random = random;
    this.#retryAfter = retryAfter;
    this.#retryAfterText = String(retryAfter);
    this.#matcher = matcher;
    this.#body = body;
    this.#contentType = contentType;
    this.#onShed = onShed;
    this.#onError = onError;
    this.#check = check;
    this.#checkTimeoutMs = checkTimeout;
    this.#decisions = SHED_CAUSES.map((cause) =>
      DEGRADATION_LEVELS.map((level) => Object.freeze({ cause, level, retryAfter })),
    );
    // Timers hold the shedder weakly, so one that is dropped without close()
    // is collected and its finalizer stops them.
    const ref = new WeakRef(this);
    if (this.#ownController) {
      const read = figures ?? (this.#sampler = createResourceSampler(o.sampler));
      const feed = () => {
        try {
          controller.update(statusFromFigures(read()));
        } catch (err) {
          const me = ref.deref();
          if (me !== undefined) me.#report(err);
        }
      };
      feed();
      this.#sampleTimer = setInterval(feed, sampleMs);
      this.#sampleTimer.unref();
    }
    if (check !== null) {
      void this.runCheck();
      this.#checkTimer = setInterval(() => void ref.deref()?.runCheck(), checkEvery);
      this.#checkTimer.unref();
    }
    shedders.register(this, { sample: this.#sampleTimer, check: this.#checkTimer, sampler: this.#sampler }, this);
  }

  /** The controller whose level decides. */
  get controller(): DegradationController {
    return this.#controller;
  }

  /** Seconds sent in `Retry-After`. */
  get retryAfter(): number {
    return this.#retryAfter;
  }

  /**
   * Whether the service is under pressure now: the custom check fails, or
   * requests are being shed at the current level (any share above 0). The
   * one call of toobusy-js's `toobusy()`; it counts nothing.
   */
  get underPressure(): boolean {
    return this.#checkFailure !== null || this.#share[this.#controller.levelIndex]! > 0;
  }

  /** The share of requests shed at `level` (1 from `shedAt` on in all-or-nothing mode). */
  shareAt(level: DegradationLevel): number {
    return this.#share[DEGRADATION_LEVELS.indexOf(validateOneOf(level, 'level', DEGRADATION_LEVELS))]!;
  }

  /** Whether `path` (query string allowed) is exempt. */
  isExempt(path: string): boolean {
    return this.#isExempt(validateString(path, 'path'));
  }

  #isExempt(path: string): boolean {
    const q = path.indexOf('?');
    const length = q < 0 ? path.length : q;
    const m = this.#matcher;
    // The path without its query string is `path` up to `length`.
    const same = m.exactByLength[length];
    if (same !== undefined) for (const e of same) if (path.startsWith(e)) return true;
    for (const pre of m.prefixes) if (pre.length <= length && path.startsWith(pre)) return true;
    if (m.patterns.length === 0) return false;
    const p = q < 0 ? path : path.slice(0, q);
    for (const re of m.patterns) {
      re.lastIndex = 0;
      if (re.test(p)) return true;
    }
    return false;
  }

  static {
    admit = (s) => s.#admit();
    decideCounted = (s, path) => s.#decideCounted(path);
    countExempt = (s) => void s.#exempt++;
  }

  /**
   * Decides for one request: null to serve it, or why to shed it. Counts the
   * request (and the shed, by cause and level). `path` may carry a query
   * string; it is looked at only while shedding applies.
   */
  decide(path: string): ShedDecision | null {
    if (typeof path !== 'string') validateString(path, 'path');
    if (this.#admit()) return null;
    return this.#decideCounted(path);
  }

  /**
   * Counts a request; true when it goes through because nothing can be shed
   * now: the custom check passes and the current level is below the first
   * level with a share above 0. The shares do not decrease with the level, so
   * this is the same as a share of 0 at the current level.
   */
  #admit(): boolean {
    this.#requests++;
    return this.#checkFailure === null && this.#controller.levelIndex < this.#shedFrom;
  }

  /** The rest of {@link decide} for a request {@link #admit} counted and did not let through. */
  #decideCounted(path: string): ShedDecision | null {
    // The adapters pass what the framework gives them; refuse a non-string as decide() does.
    if (typeof path !== 'string') validateString(path, 'path');
    if (this.#isExempt(path)) {
      this.#exempt++;
      return null;
    }
    const li = this.#controller.levelIndex;
    let cause = -1;
    if (this.#checkFailure !== null) {
      cause = SHED_CAUSES.indexOf(this.#checkFailure);
    } else {
      const share = this.#share[li]!;
      if (share >= 1) cause = 0;
      else if (share > 0) {
        if (this.#random !== null) {
          if (this.#random() < share) cause = 0;
        } else {
          // Even spreading: request n is shed when floor(n * share) steps
          // up, so any run of requests sheds its share, give or take one.
          const n = ++this.#seq;
          if (Math.floor(n * share + 1e-9) > Math.floor((n - 1) * share + 1e-9)) cause = 0;
        }
      }
    }
    if (cause < 0) return null;
    this.#byCause[cause]!++;
    this.#byLevel[li]!++;
    this.#byPair[cause * 4 + li]!++;
    return this.#decisions[cause]![li]!;
  }

  /** The 503 body for a decision. */
  bodyFor(decision: ShedDecision): string {
    validateDecision(decision);
    return this.#bodyOf(decision);
  }

  #bodyOf(decision: ShedDecision): string {
    const body = this.#body;
    if (typeof body === 'string') return body;
    // The caller's function: an exception or a result that is not a string
    // goes to onError, and the response carries the default body (a throw
    // here would escape a request listener into the event loop).
    try {
      const text: unknown = body(decision);
      if (typeof text === 'string') return text;
      throw new InvalidArgTypeError('the result of options.body', 'of type string', text);
    } catch (err) {
      this.#report(err);
      return defaultBody(decision);
    }
  }

  /** Content type of the 503 body. */
  get contentType(): string {
    return this.#contentType;
  }

  /**
   * Middleware for node:http and Express: `(req, res, next)`. Sheds with a
   * 503, or calls `next()`. As a plain node:http listener wrapper use
   * {@link LoadShedder.wrap}.
   */
  middleware(): (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void {
    return (req, res, next) => {
      const url = req.url ?? '/';
      if (typeof url !== 'string') validateString(url, 'req.url'); // before it is counted
      if (this.#admit()) {
        next();
        return;
      }
      const d = this.#decideCounted(url);
      if (d === null || this.#respond(d, req, res)) next();
    };
  }

  /** Wraps a node:http request listener: shed requests never reach it. */
  wrap(
    listener: (req: IncomingMessage, res: ServerResponse) => void,
  ): (req: IncomingMessage, res: ServerResponse) => void {
    validateFunction(listener, 'listener');
    return (req, res) => {
      const url = req.url ?? '/';
      if (typeof url !== 'string') validateString(url, 'req.url'); // before it is counted
      if (this.#admit()) {
        listener(req, res);
        return;
      }
      const d = this.#decideCounted(url);
      if (d === null || this.#respond(d, req, res)) listener(req, res);
    };
  }

  /** Koa middleware: `app.use(shedder.koa())`. */
  koa(): (ctx: KoaContextLike, next: () => Promise<unknown>) => Promise<unknown> {
    return async (ctx, next) => {
      const url = ctx.url ?? ctx.path ?? '/';
      if (typeof url !== 'string') validateString(url, 'ctx.url'); // before it is counted
      if (this.#admit()) return next();
      const d = this.#decideCounted(url);
      if (d === null) return next();
      if (this.#onShed !== null) {
        const r = this.#callOnShed(d, ctx.req, ctx.res);
        if (r === 'pass') return next();
        if (r === 'handled') {
          ctx.respond = false;
          return undefined;
        }
      }
      ctx.status = 503;
      ctx.set('Retry-After', this.#retryAfterText);
      ctx.set('Cache-Control', 'no-store');
      ctx.type = this.#contentType;
      ctx.body = this.#bodyOf(d);
      return undefined;
    };
  }

  /** Writes the 503 (or lets `onShed` decide); true when the request should go on after all. */
  #respond(d: ShedDecision, req: IncomingMessage, res: ServerResponse): boolean {
    if (this.#onShed !== null) {
      const r = this.#callOnShed(d, req, res);
      if (r === 'pass') return true;
      if (r === 'handled') return false;
    }
    const body = this.#bodyOf(d);
    res.statusCode = 503;
    res.setHeader('Retry-After', this.#retryAfterText);
    res.setHeader('Content-Type', this.#contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(req.method === 'HEAD' ? undefined : body);
    return false;
  }

  /** Asks `onShed` (if any) about a decision: 'pass', 'handled', or undefined for the default 503. Adapters use it. */
  consult(d: ShedDecision, req: IncomingMessage, res: ServerResponse): 'pass' | 'handled' | void {
    validateDecision(d);
    validateObject(req, 'req');
    validateObject(res, 'res');
    return this.#onShed === null ? undefined : this.#callOnShed(d, req, res);
  }

  #callOnShed(d: ShedDecision, req: IncomingMessage, res: ServerResponse): 'pass' | 'handled' | void {
    try {
      return this.#onShed!(d, req, res);
    } catch (err) {
      this.#report(err);
      return undefined;
    }
  }

  /**
   * Runs the custom check now (it also runs on its interval) and resolves
   * once its outcome is recorded. Concurrent calls share one run.
   */
  runCheck(): Promise<void> {
    const check = this.#check;
    if (check === null || this.#closed) return Promise.resolve();
    if (this.#checkRunning !== null) return this.#checkRunning;
    const run = new Promise<void>((resolve) => {
      let settled = false;
      const finish = (failure: Exclude<ShedCause, 'level'> | null, err?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#checkFailure = failure;
        if (err !== undefined) this.#report(err);
        resolve();
      };
      const timer = setTimeout(() => finish('check-timeout'), this.#checkTimeoutMs);
      timer.unref();
      try {
        const r = check();
        if (r !== null && typeof r === 'object' && typeof (r as Promise<unknown>).then === 'function') {
          (r as Promise<unknown>).then(
            (v) => finish(v ? null : 'check'),
            (err) => finish('check-error', err),
          );
        } else {
          finish(r ? null : 'check');
        }
      } catch (err) {
        finish('check-error', err);
      }
    }).finally(() => {
      this.#checkRunning = null;
    });
    this.#checkRunning = run;
    return run;
  }

  /** Counters since creation. */
  stats(): LoadShedderStats {
    const byCause = {} as Record<ShedCause, number>;
    SHED_CAUSES.forEach((c, i) => (byCause[c] = this.#byCause[i]!));
    const byLevel = {} as Record<DegradationLevel, number>;
    DEGRADATION_LEVELS.forEach((l, i) => (byLevel[l] = this.#byLevel[i]!));
    let shed = 0;
    for (const n of this.#byCause) shed += n;
    return { requests: this.#requests, exempt: this.#exempt, shed, shedByCause: byCause, shedByLevel: byLevel, checkFailure: this.#checkFailure };
  }

  /** Shed requests per cause and level (pairs with a count above 0). */
  shedCounts(): Array<{ cause: ShedCause; level: DegradationLevel; count: number }> {
    const out: Array<{ cause: ShedCause; level: DegradationLevel; count: number }> = [];
    for (let c = 0; c < SHED_CAUSES.length; c++) {
      for (let l = 0; l < 4; l++) {
        const n = this.#byPair[c * 4 + l]!;
        if (n > 0) out.push({ cause: SHED_CAUSES[c]!, level: DEGRADATION_LEVELS[l]!, count: n });
      }
    }
    return out;
  }

  /** Stops the timers (and the controller feed it owns). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    shedders.unregister(this);
    stopTimers({ sample: this.#sampleTimer, check: this.#checkTimer, sampler: this.#sampler });
    this.#sampleTimer = null;
    this.#checkTimer = null;
    this.#sampler = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #report(err: unknown): void {
    if (this.#onError === null) return;
    try {
      this.#onError(err);
    } catch {
      // A failing error listener must not reach the event loop.
    }
  }
}

/** The subset of a Koa context the middleware uses. */
export interface KoaContextLike {
  url?: string;
  path?: string;
  req: IncomingMessage;
  res: ServerResponse;
  status: number;
  body: unknown;
  type: string;
  respond?: boolean;
  set(name: string, value: string): void;
}

interface Timers {
  sample: NodeJS.Timeout | null;
  check: NodeJS.Timeout | null;
  sampler: ResourceSampler | null;
}

function stopTimers(t: Timers): void {
  if (t.sample !== null) clearInterval(t.sample);
  if (t.check !== null) clearInterval(t.check);
  t.sampler?.close();
}

const shedders = new FinalizationRegistry<Timers>(stopTimers);

/** A decision passed back in by the caller: a cause, a level and whole seconds. */
function validateDecision(d: unknown): void {
  const o = validateObject<ShedDecision>(d, 'decision');
  validateOneOf(o.cause, 'decision.cause', SHED_CAUSES);
  validateOneOf(o.level, 'decision.level', DEGRADATION_LEVELS);
  validateInteger(o.retryAfter, 'decision.retryAfter');
}

function defaultBody(d: ShedDecision): string {
  const why = d.cause === 'level' ? `degradation level ${d.level}` : d.cause === 'check' ? 'health check failed' : d.cause === 'check-timeout' ? 'health check timed out' : 'health check errored';
  return `{"statusCode":503,"error":"Service Unavailable","message":"Service Unavailable: ${why}","cause":"${d.cause}","level":"${d.level}"}`;
}

// ---- coming from @fastify/under-pressure --------------------------------------------

/** The limits of `@fastify/under-pressure` that have a counterpart here. */
export interface UnderPressureLimits {
  /** Event-loop delay, ms. Here it is judged on the p99 over the window (under-pressure uses the mean). */
  maxEventLoopDelay?: number;
  /** Event-loop utilization 0..1. */
  maxEventLoopUtilization?: number;
  /** V8 heap used, bytes; judged as a fraction of the heap size limit. */
  maxHeapUsedBytes?: number;
  /** Resident set size, bytes. */
  maxRssBytes?: number;
  healthCheck?: HealthCheck;
  healthCheckInterval?: number;
  retryAfter?: number;
}

/**
 * Shedder options that shed every request when any of under-pressure's
 * limits is reached, and only then (the built-in thresholds are switched
 * off). A limit is reached at the value itself (under-pressure: above it).
 */
export function sheddingOptionsFromUnderPressure(limits: UnderPressureLimits, heapSizeLimit?: number): LoadShedderOptions {
  validateObject(limits, 'limits');
  // A limit of 0 is switched off, as in under-pressure; anything else must be a number >= 0.
  const limit = (value: unknown, name: string, max = Infinity): number | null => {
    if (value === undefined) return null;
    const x = validateNumber(value, name, 0, max);
    return x > 0 ? x : null;
  };
  const eventLoopDelay = limit(limits.maxEventLoopDelay, 'limits.maxEventLoopDelay');
  const eventLoopUtilization = limit(limits.maxEventLoopUtilization, 'limits.maxEventLoopUtilization', 1);
  const heapUsed = limit(limits.maxHeapUsedBytes, 'limits.maxHeapUsedBytes');
  const rss = limit(limits.maxRssBytes, 'limits.maxRssBytes');
  const healthCheck = limits.healthCheck === undefined ? undefined : validateFunction<HealthCheck>(limits.healthCheck, 'limits.healthCheck');
  const healthCheckInterval = limit(limits.healthCheckInterval, 'limits.healthCheckInterval', 3_600_000);
  const retryAfter = limits.retryAfter === undefined ? undefined : validateInteger(limits.retryAfter, 'limits.retryAfter', 0, 86_400 * 365);
  const heapLimit = heapSizeLimit === undefined ? null : validateInteger(heapSizeLimit, 'heapSizeLimit', 1);
  const off = { reduced: null, minimal: null, emergency: null };
  const at = (x: number) => ({ reduced: null, minimal: null, emergency: x });
  const thresholds: NonNullable<DegradationOptions['thresholds']> = {
    memory: off,
    diskAvailable: off,
    cpu: off,
    eventLoopLagMs: off,
    psi: off,
    eventLoopUtilization: off,
    heap: off,
    containerMemory: off,
    hostCpu: off,
  };
  if (eventLoopDelay !== null) thresholds.eventLoopLagMs = at(eventLoopDelay);
  if (eventLoopUtilization !== null) thresholds.eventLoopUtilization = at(eventLoopUtilization);
  if (heapUsed !== null) thresholds.heap = at(heapUsed / (heapLimit ?? getHeapStatistics().heap_size_limit));
  const out: LoadShedderOptions = { shedAt: 'emergency', degradation: { thresholds, minDwellMs: 0, margin: 0 } };
  if (rss !== null) {
    thresholds.memory = at(1);
    out.sampler = { memoryLimit: Math.floor(rss) };
  }
  if (healthCheck !== undefined) out.healthCheck = healthCheck;
  if (healthCheckInterval !== null) out.healthCheckIntervalMs = healthCheckInterval;
  if (retryAfter !== undefined) out.retryAfter = retryAfter;
  return out;
}
