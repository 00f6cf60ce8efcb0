/**
 * Counters of what the process did (checks, breaches, level changes, budget
 * reservations and refusals), a snapshot with rates per second, and a
 * periodic reporter.
 *
 * Checks and breaches are recorded by whoever performs the checks (a guard
 * calls {@link ResourceMetrics.recordCheck} and
 * {@link ResourceMetrics.recordBreach}). Level changes and reservations are
 * not recorded at all: they are read from the controller's change counter
 * and the budgets' own process-wide counters when a snapshot is taken, so
 * the hot paths pay nothing for them.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { DegradationController, type DegradationLevel } from '../degradation';
import { InvalidArgTypeError } from '../errors';
import { readBudgets, type BudgetLike } from '../health';
import { validateFunction, validateInteger, validateNumber, validateObject, validateString } from '../validate';

export interface ResourceMetricsOptions {
  /** Controller whose level changes are counted. */
  controller?: DegradationController | null;
  /** Budgets whose reservations and refusals are counted. */
  budgets?: Iterable<BudgetLike> | (() => Iterable<BudgetLike>);
  /** Time source, ms. @default performance.timeOrigin + performance.now() */
  clock?: () => number;
}

/** Per-second rates. */
export interface MetricsRates {
  checksPerSec: number;
  breachesPerSec: number;
  levelChangesPerSec: number;
  reservationsPerSec: number;
  reservationFailuresPerSec: number;
}

/** Counts over a period. */
export interface MetricsCounts {
  checks: number;
  breaches: number;
  /** Breaches per resource (the names given to `recordBreach`). */
  breachesByResource: Record<string, number>;
  levelChanges: number;
  /** Successful budget reservations. */
  reservations: number;
  /** Refused budget reservations. */
  reservationFailures: number;
}

export interface MetricsSnapshot extends MetricsCounts {
  /** Clock time of the snapshot, ms. */
  timestamp: number;
  /** Clock time of the last reset (or creation), ms. */
  since: number;
  /** Time covered: timestamp - since, ms. */
  elapsedMs: number;
  /** Percentage of budget reservations that succeeded; 100 when there were none. */
  successRate: number;
  /** The controller's level, or null without a controller. */
  level: DegradationLevel | null;
  /** Averages over `elapsedMs`. */
  rates: MetricsRates;
}

const defaultClock = (): number => performance.timeOrigin + performance.now();

/**
 * Counters with snapshots and rates (checks, breaches, level changes, budget
 * reservations and failures, success rate).
 *
 * ```ts
 * const m = new ResourceMetrics({ controller, budgets: [cache] });
 * m.recordCheck();
 * m.recordBreach('memory');
 * const s = m.snapshot(); // { checks, breaches, levelChanges, reservations, successRate, rates: {...} }
 * ```
 */
export class ResourceMetrics {
  readonly #controller: DegradationController | null;
  readonly #budgets: ResourceMetricsOptions['budgets'];
  readonly #clock: () => number;
  #checks = 0;
  #breaches = 0;
  readonly #byResource = new Map<string, number>();
  // Lifetime values at the last reset; snapshots report the difference.
  #since: number;
  #baseChecks = 0;
  #baseBreaches = 0;
  #baseByResource = new Map<string, number>();
  #baseChanges = 0;
  #baseBudgets = new Map<string, { successes: number; failures: number }>();

  constructor(options: ResourceMetricsOptions = {}) {
    validateObject(options, 'options');
    const c = options.controller;
    if (c !== undefined && c !== null && !(c instanceof DegradationController)) {
      throw new InvalidArgTypeError('options.controller', 'an instance of DegradationController', c);
    }
    const b = options.budgets;
    if (b !== undefined && typeof b !== 'function' && !(typeof b === 'object' && b !== null && Symbol.iterator in b)) {
      throw new InvalidArgTypeError('options.budgets', 'an iterable of budgets or a function', b);
    }
    this.#controller = c ?? null;
    this.#budgets = b;
    this.#clock = options.clock === undefined ? defaultClock : validateFunction<() => number>(options.clock, 'options.clock');
    this.#since = this.#clock();
    this.#baseChanges = this.#controller?.changes ?? 0;
    this.#baseBudgets = this.#budgetCounts();
  }

  /** The controller given at construction, or null. */
  get controller(): DegradationController | null {
    return this.#controller;
  }

  /** Counts one check (or `count` checks). */
  recordCheck(count = 1): void {
    if (count !== 1) validateInteger(count, 'count');
    this.#checks += count;
  }

  /** Counts a check that found `resource` (e.g. 'memory', 'disk') over its limit. */
  recordBreach(resource: string): void {
    validateString(resource, 'resource');
    this.#breaches++;
    this.#byResource.set(resource, (this.#byResource.get(resource) ?? 0) + 1);
  }

  /** Counts since creation, ignoring resets (what Prometheus counters expose). */
  totals(): MetricsCounts {
    let reservations = 0;
    let reservationFailures = 0;
    for (const v of this.#budgetCounts().values()) {
      reservations += v.successes;
      reservationFailures += v.failures;
    }
    return {
      checks: this.#checks,
      breaches: this.#breaches,
      breachesByResource: Object.fromEntries(this.#byResource),
      levelChanges: this.#controller?.changes ?? 0,
      reservations,
      reservationFailures,
    };
  }

  /** Counts and rates since the last {@link reset}. */
  snapshot(): MetricsSnapshot {
    const now = this.#clock();
    const elapsedMs = Math.max(0, now - this.#since);
    let reservations = 0;
    let reservationFailures = 0;
    for (const [name, v] of this.#budgetCounts()) {
      const base = this.#baseBudgets.get(name);
      // A budget recreated under the same name restarts its counters.
      const s = base && v.successes >= base.successes ? v.successes - base.successes : v.successes;
      const f = base && v.failures >= base.failures ? v.failures - base.failures : v.failures;
      reservations += s;
      reservationFailures += f;
    }
    const byResource: Record<string, number> = {};
    for (const [name, n] of this.#byResource) {
      const d = n - (this.#baseByResource.get(name) ?? 0);
      if (d > 0) byResource[name] = d;
    }
    const counts: MetricsCounts = {
      checks: this.#checks - this.#baseChecks,
      breaches: this.#breaches - this.#baseBreaches,
      breachesByResource: byResource,
      levelChanges: Math.max(0, (this.#controller?.changes ?? 0) - this.#baseChanges),
      reservations,
      reservationFailures,
    };
    const attempts = reservations + reservationFailures;
    return {
      ...counts,
      timestamp: now,
      since: this.#since,
      elapsedMs,
      successRate: attempts > 0 ? (reservations * 100) / attempts : 100,
      level: this.#controller?.level ?? null,
      rates: ratesOf(counts, elapsedMs),
    };
  }

  /** Starts a new period: snapshots count from now. Lifetime totals are kept. */
  reset(): void {
    this.#since = this.#clock();
    this.#baseChecks = this.#checks;
    this.#baseBreaches = this.#breaches;
    this.#baseByResource = new Map(this.#byResource);
    this.#baseChanges = this.#controller?.changes ?? 0;
    this.#baseBudgets = this.#budgetCounts();
  }

  #budgetCounts(): Map<string, { successes: number; failures: number }> {
    const out = new Map<string, { successes: number; failures: number }>();
    if (this.#budgets === undefined) return out;
    for (const b of readBudgets({ budgets: this.#budgets })) {
      if (b.successes === null || b.failures === null) continue;
      out.set(b.name, { successes: b.successes, failures: b.failures });
    }
    return out;
  }
}

/** Rates per second of `counts` over `elapsedMs` (all 0 when no time passed). */
export function ratesOf(counts: MetricsCounts, elapsedMs: number): MetricsRates {
  const perSec = elapsedMs > 0 ? 1000 / elapsedMs : 0;
  return {
    checksPerSec: counts.checks * perSec,
    breachesPerSec: counts.breaches * perSec,
    levelChangesPerSec: counts.levelChanges * perSec,
    reservationsPerSec: counts.reservations * perSec,
    reservationFailuresPerSec: counts.reservationFailures * perSec,
  };
}

// ---- periodic reporter ---------------------------------------------------------------------

/** What the reporter hands over each interval. */
export interface MetricsReport extends MetricsSnapshot {
  /** Counts and rates of the interval just ended (since the previous report). */
  interval: MetricsCounts & { elapsedMs: number; rates: MetricsRates };
}

/** A logger: `console`, pino, winston and bunyan all fit. */
export interface MetricsLogger {
  info(message: string, ...rest: unknown[]): void;
}

export interface MetricsReporterOptions {
  /** Time between reports, ms. @default 60000 */
  intervalMs?: number;
  /** Receives each report. */
  onReport?: (report: MetricsReport) => void;
  /** Receives one line per report (`logger.info(line, report)`). @default console, when there is no `onReport` */
  logger?: MetricsLogger;
  /**
   * Receives an exception thrown by `onReport` or the logger, or by the
   * figures of a timed report (such as `ERR_BUDGET_LOST` from a machine
   * budget whose file was removed); the timer goes on. When it is absent, or
   * throws itself, the error becomes a process warning (code
   * `RESOURCE_GUARD_REPORTER`). @default process.emitWarning
   */
  onError?: (err: unknown) => void;
}

export interface MetricsReporter {
  /** Stops the timer (idempotent). */
  stop(): void;
  readonly running: boolean;
  /**
   * Builds and delivers a report now; the next timed one covers the time
   * since. An error building it is thrown here, to the caller.
   */
  report(): MetricsReport;
}

/**
 * Reports `metrics` every `intervalMs` to a callback and/or a logger. The
 * timer is unref'd, so it never keeps the process alive; `stop()` ends it.
 */
export function startMetricsReporter(metrics: ResourceMetrics, options: MetricsReporterOptions = {}): MetricsReporter {
  if (!(metrics instanceof ResourceMetrics)) throw new InvalidArgTypeError('metrics', 'an instance of ResourceMetrics', metrics);
  validateObject(options, 'options');
  const intervalMs = options.intervalMs === undefined ? 60_000 : validateNumber(options.intervalMs, 'options.intervalMs', 1, 2 ** 31 - 1);
  const onReport = options.onReport === undefined ? undefined : validateFunction<(r: MetricsReport) => void>(options.onReport, 'options.onReport');
  const onError = options.onError === undefined ? undefined : validateFunction<(e: unknown) => void>(options.onError, 'options.onError');
  let logger = options.logger;
  if (logger !== undefined) {
    validateObject(logger, 'options.logger');
    validateFunction(logger.info, 'options.logger.info');
  } else if (onReport === undefined) {
    logger = console;
  }

  let prev = metrics.snapshot();
  const build = (): MetricsReport => {
    const snap = metrics.snapshot();
    // After a reset the previous snapshot belongs to another period.
    const base = snap.since === prev.since ? prev : null;
    const diff = (k: 'checks' | 'breaches' | 'levelChanges' | 'reservations' | 'reservationFailures') =>
      Math.max(0, snap[k] - (base ? base[k] : 0));
    const byResource: Record<string, number> = {};
    for (const [name, n] of Object.entries(snap.breachesByResource)) {
      const d = n - (base?.breachesByResource[name] ?? 0);
      if (d > 0) byResource[name] = d;
    }
    const counts: MetricsCounts = {
      checks: diff('checks'),
      breaches: diff('breaches'),
      breachesByResource: byResource,
      levelChanges: diff('levelChanges'),
      reservations: diff('reservations'),
      reservationFailures: diff('reservationFailures'),
    };
    const elapsedMs = Math.max(0, base ? snap.timestamp - base.timestamp : snap.elapsedMs);
    prev = snap;
    return { ...snap, interval: { ...counts, elapsedMs, rates: ratesOf(counts, elapsedMs) } };
  };
  // A failure goes to onError, else (or when onError throws too) becomes a
  // process warning: nothing the timer runs may throw into the event loop.
  const fail = (err: unknown) => {
    try {
      if (onError) {
        onError(err);
        return;
      }
    } catch (onErrorFailed) {
      err = onErrorFailed;
    }
    try {
      const message = err instanceof Error ? err.message : String(err);
      const code = (err as { code?: unknown } | null)?.code;
      process.emitWarning(`metrics reporter: ${message}${typeof code === 'string' ? ` (${code})` : ''}`, {
        code: 'RESOURCE_GUARD_REPORTER',
        detail: err instanceof Error && err.stack ? err.stack : undefined,
      });
    } catch {
      // A replaced process.emitWarning that throws: nothing more can be done.
    }
  };
  const deliver = (report: MetricsReport) => {
    try {
      onReport?.(report);
      logger?.info(formatReport(report), report);
    } catch (err) {
      fail(err);
    }
  };
  // The figures themselves can fail too (a machine budget whose file was
  // removed throws ERR_BUDGET_LOST): the tick reports that and goes on.
  const tick = () => {
    let report: MetricsReport;
    try {
      report = build();
    } catch (err) {
      fail(err);
      return;
    }
    deliver(report);
  };
  let timer: NodeJS.Timeout | null = setInterval(tick, intervalMs);
  timer.unref();
  return {
    stop() {
      if (timer !== null) clearInterval(timer);
      timer = null;
    },
    get running() {
      return timer !== null;
    },
    report() {
      const r = build();
      deliver(r);
      return r;
    },
  };
}

/** One line summarising a report, for logs. */
export function formatReport(report: MetricsReport): string {
  validateObject(report, 'report');
  const i = validateObject<MetricsReport['interval']>(report.interval, 'report.interval');
  validateObject(i.rates, 'report.interval.rates');
  const rate = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  const attempts = i.reservations + i.reservationFailures;
  const success = attempts > 0 ? (i.reservations * 100) / attempts : 100;
  const parts = [
    `resource-guard: ${i.checks} checks (${rate(i.rates.checksPerSec)}/s)`,
    `${i.breaches} breaches`,
    `${i.levelChanges} level changes`,
    `${i.reservations} reservations (${rate(i.rates.reservationsPerSec)}/s)`,
    `${i.reservationFailures} refused`,
    `success ${success.toFixed(1)}%`,
  ];
  if (report.level !== null) parts.push(`level ${report.level}`);
  return `${parts.join(', ')} over ${(i.elapsedMs / 1000).toFixed(1)} s`;
}
