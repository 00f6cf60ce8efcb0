/**
 * Errors of limited runs, added to those of `src/errors.ts`. A breached heap
 * or RSS limit is reported with the existing {@link MemoryLimitError}
 * (`kind: 'heap'` or `'rss'`), so every memory failure has one class.
 *
 * Errors that leave a limited run carry its usage report as a non-enumerable
 * `report` property (see {@link reportOf}).
 *
 * This module must not load the native addon: the task worker imports it.
 *
 * @module
 */
import { ResourceError } from '../errors';
import type { UsageReport } from './types';

/** A run took longer than its wall-clock limit. */
export class TimeoutError extends ResourceError {
  /** The usage report of the run (set when the error leaves `runWithLimits`). */
  declare readonly report?: UsageReport;

  constructor(
    /** The limit, milliseconds. */
    readonly limit: number,
    /** Milliseconds that had passed when the run was stopped. */
    readonly used: number,
    /**
     * `startup`: the worker did not start the task within the run's
     * `startupTimeout` (booting the worker and loading the task took too long).
     */
    readonly phase: 'startup' | 'task' = 'task',
    /**
     * Which time limit ended the run: `execution` (the task's own time),
     * `total` (the whole run, start-up included), `idle` (no activity for
     * the limit), or `startup`.
     */
    readonly operation: 'execution' | 'total' | 'idle' | 'startup' = phase === 'startup' ? 'startup' : 'execution',
  ) {
    super(
      'ERR_TIMEOUT',
      phase === 'startup'
        ? `The task did not start within ${ms(limit)} (${ms(used)} spent starting the worker and loading the task)`
        : operation === 'idle'
          ? `Idle timeout: the task showed no activity for ${ms(used)}, above its limit of ${ms(limit)}`
          : operation === 'total'
            ? `Total time limit exceeded: the run took ${ms(used)}, above its limit of ${ms(limit)}`
            : `Execution timeout: the task ran for ${ms(used)}, above its limit of ${ms(limit)}`,
    );
  }
}

/** A run used more CPU time than its limit. */
export class CpuTimeError extends ResourceError {
  declare readonly report?: UsageReport;

  constructor(
    /** The limit, milliseconds of CPU time. */
    readonly limit: number,
    /** CPU milliseconds the task had used when it was stopped. */
    readonly used: number,
    /** How CPU time was measured (see the usage report's `cpuSource`). */
    readonly source: 'thread' | 'event-loop',
  ) {
    super('ERR_CPU_TIME', `CPU time limit exceeded: the task used ${ms(used)} of CPU, above its limit of ${ms(limit)}`);
  }
}

/**
 * The task asked for more fuel than it had left. Fuel is all-or-nothing: the
 * refused request is not counted, so `used` is what was actually consumed.
 */
export class FuelExhaustedError extends ResourceError {
  declare readonly report?: UsageReport;

  constructor(
    /** The fuel budget. */
    readonly limit: number,
    /** Fuel consumed before the refused request. */
    readonly used: number,
    /** Units the refused request asked for. */
    readonly requested: number,
  ) {
    super('ERR_FUEL_EXHAUSTED', `Fuel exhausted: used ${used}, limit ${limit} (a request for ${requested} more was refused)`);
  }
}

/** Fuel was added or reset while fuel is not metered (no fuel limit). */
export class FuelMeteringError extends ResourceError {
  constructor(
    /** What was refused. */
    readonly operation: 'add' | 'reset',
  ) {
    super('ERR_FUEL_METERING_OFF', `Cannot ${operation} fuel: fuel is not metered (the run has no fuel limit)`);
  }
}

/** A read or write through the task's IO meter would go above its byte budget. */
export class IoLimitError extends ResourceError {
  declare readonly report?: UsageReport;

  constructor(
    readonly direction: 'write' | 'read',
    /** The byte budget for this direction. */
    readonly limit: number,
    /** Bytes already accounted before the refused operation. */
    readonly used: number,
    /** Bytes the refused operation needed. */
    readonly requested: number,
  ) {
    super(
      'ERR_IO_LIMIT',
      `IO ${direction} limit exceeded: ${requested} more bytes refused, ${used} of ${limit} bytes already ${direction === 'write' ? 'written' : 'read'}`,
    );
  }
}

/** A request would pass a per-window rate limit (memory growth, IO, network requests). */
export class RateLimitError extends ResourceError {
  declare readonly report?: UsageReport;

  constructor(
    code: 'ERR_MEMORY_GROWTH_RATE' | 'ERR_IO_RATE' | 'ERR_NETWORK_RATE',
    /** What is limited, e.g. `memory growth`, `IO write`, `network requests`. */
    readonly resource: string,
    /** Units allowed per window. */
    readonly limit: number,
    /** The window, milliseconds. */
    readonly windowMs: number,
    /** Units already in the window. */
    readonly used: number,
    /** Units the refused request asked for. */
    readonly requested: number,
    /** `bytes`, `pages` or `requests`. */
    readonly unit: string,
  ) {
    super(
      code,
      `${resource} rate limit exceeded: ${requested} more ${unit} refused, ${used} of ${limit} ${unit} already used in the last ${ms(windowMs)}`,
    );
  }
}

/** A count limit (open files, threads, connections, bytes sent or received) refused a request. */
export class CountLimitError extends ResourceError {
  declare readonly report?: UsageReport;

  constructor(
    code: 'ERR_OPEN_FILES_LIMIT' | 'ERR_THREADS_LIMIT' | 'ERR_CONNECTIONS_LIMIT' | 'ERR_NETWORK_BYTES_LIMIT',
    /** What is limited. */
    readonly resource: string,
    readonly limit: number,
    /** Held (or used) before the refused request. */
    readonly used: number,
    readonly requested: number,
  ) {
    super(code, `${resource} limit exceeded: ${requested} more refused, ${used} of ${limit} in use`);
  }
}

/** More was released than is held (a count never goes negative or wraps). */
export class OverReleaseError extends ResourceError {
  constructor(
    readonly resource: string,
    readonly held: number,
    readonly requested: number,
  ) {
    super('ERR_OVER_RELEASE', `Cannot release ${requested} ${resource}: only ${held} held`);
  }
}

/** The task's worker exited before the task settled, without an error to report. */
export class TaskCrashedError extends ResourceError {
  declare readonly report?: UsageReport;

  constructor(
    /** The worker's exit code. */
    readonly exitCode: number,
  ) {
    super(
      'ERR_TASK_CRASHED',
      exitCode === 0
        ? 'The task worker exited before the task settled (its promise never settled and nothing kept the event loop alive)'
        : `The task worker exited with code ${exitCode} before the task settled`,
    );
  }
}

/** The run was stopped through its `AbortSignal`. */
export class TaskAbortedError extends ResourceError {
  declare readonly report?: UsageReport;

  constructor(
    /** The signal's `reason`. */
    readonly reason: unknown,
  ) {
    super('ERR_TASK_ABORTED', 'The task was aborted');
    if (reason !== undefined) this.cause = reason;
  }
}

/**
 * The usage report attached to an error that a limited run rejected with, or
 * undefined for any other value.
 */
export function reportOf(err: unknown): UsageReport | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const r = (err as { report?: unknown }).report;
  return typeof r === 'object' && r !== null ? (r as UsageReport) : undefined;
}

function ms(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return v >= 1000 ? `${(v / 1000).toFixed(v >= 10_000 ? 1 : 2)} s` : `${v >= 10 ? Math.round(v) : v.toFixed(1)} ms`;
}
