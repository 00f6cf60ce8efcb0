/**
 * Data shapes of limited runs: limits, usage, alerts and the usage report.
 * Types only; nothing here runs.
 *
 * @module
 */
import type { Size } from '../validate';

/** Names of the preset limit profiles. */
export type ProfileName = 'lightweight' | 'standard' | 'heavy';

/**
 * Limits of one run. Every limit is optional; `null` removes a limit that a
 * profile would set. Sizes are bytes or strings such as `'64MiB'`.
 */
export interface Limits {
  /** Start from a preset and override what is given here. */
  profile?: ProfileName;
  /**
   * V8 heap limit of the task's worker: its old generation, passed to the
   * Worker as `resourceLimits.maxOldGenerationSizeMb` (rounded up to whole
   * MiB). V8 stops the worker when the heap cannot grow within it; the run
   * then fails with `MemoryLimitError` (`kind: 'heap'`). A worker needs
   * about 5-6 MiB to start.
   */
  heap?: Size | null;
  /**
   * How far the process's resident set may grow while the task runs, above
   * what it was when the task started. Measured through the native sampler,
   * process-wide: other work running at the same time counts too.
   */
  rssGrowth?: Size | null;
  /**
   * Wall-clock limit of the task in milliseconds, from the moment it starts
   * (starting the worker and loading the task are bounded by the run's
   * `startupTimeout` option instead).
   */
  timeout?: number | null;
  /** CPU time limit of the task's thread, milliseconds. */
  cpuTime?: number | null;
  /** Fuel budget: units the task may spend through `fuel.consume(n)`. */
  fuel?: number | null;
  /** Bytes the task may write through `ctx.io`. */
  ioWrite?: Size | null;
  /** Bytes the task may read through `ctx.io`. */
  ioRead?: Size | null;
}

/** Limits after the profile is applied and sizes are parsed; `null` = no limit. */
export interface ResolvedLimits {
  profile: ProfileName | null;
  /** Bytes (a whole number of MiB). */
  heap: number | null;
  rssGrowth: number | null;
  timeout: number | null;
  cpuTime: number | null;
  fuel: number | null;
  ioWrite: number | null;
  ioRead: number | null;
}

/** Why a run ended. */
export type ExitReason =
  /** The task returned or resolved. */
  | 'completed'
  /** The task threw or rejected (or could not be loaded), with an error of its own. */
  | 'error'
  | 'timeout'
  | 'cpu'
  | 'heap'
  | 'rss'
  | 'fuel'
  | 'io'
  /** A WebAssembly task trapped with its linear memory at its page limit. */
  | 'wasm-memory'
  /** A sandbox meter refused: memory growth rate, threads, or network (see sandbox.ts). */
  | 'memory-growth'
  | 'threads'
  | 'network'
  /** A reservation through the run's byte budget was refused (`BudgetExceededError`). */
  | 'budget'
  | 'aborted'
  /** The worker exited without the task settling (e.g. `process.exit()` in the task). */
  | 'crashed';

/** Resources that limits and alerts speak of. */
export type LimitedResource = 'time' | 'cpu' | 'heap' | 'rss' | 'fuel' | 'ioWrite' | 'ioRead';

/** Usage of a running task, as the monitoring callback receives it. */
export interface Usage {
  /** Milliseconds since the task started (0 while the worker is starting). */
  elapsed: number;
  /** CPU milliseconds the task's thread has used since the task started. */
  cpuTime: number;
  /** Resident set growth since the task started, bytes (may be negative). */
  rssDelta: number;
  /** V8 heap in use, as the worker last published it, bytes. */
  heapUsed: number;
  fuelUsed: number;
  ioWritten: number;
  ioRead: number;
  /** Bytes the task holds on its byte budget. */
  budgetHeld: number;
  /** Each limited resource's use as a fraction of its limit (only limited ones). */
  fractions: Partial<Record<LimitedResource, number>>;
}

/** An alert: a resource passed the warning or critical fraction of its limit. */
export interface Alert {
  level: 'warning' | 'critical';
  resource: LimitedResource;
  used: number;
  limit: number;
  /** used / limit. */
  fraction: number;
  /** Milliseconds since the task started. */
  elapsed: number;
}

/** The usage report of a run, produced for every run whether it succeeded or not. */
export interface UsageReport {
  exitReason: ExitReason;
  ok: boolean;
  /** Milliseconds from the task's start to its end (0 if it never started). */
  wallTime: number;
  /** Milliseconds from the call to the task's start: creating the worker and loading the task. */
  startupTime: number;
  /** Milliseconds from the call until the worker had exited and the run settled. */
  totalTime: number;
  /** CPU milliseconds of the task's thread while the task ran. */
  cpuTime: number;
  /**
   * `thread`: the worker thread's own CPU clock (Linux, `/proc/self/task/<tid>/schedstat`).
   * `event-loop`: the worker's event-loop active time, an upper bound of its CPU time
   * (elsewhere; time blocked in synchronous waits or preempted counts as active).
   */
  cpuSource: 'thread' | 'event-loop';
  /** Highest resident-set growth observed above the start, bytes (>= 0). Process-wide. */
  peakRssDelta: number;
  /** Resident-set growth at the end, bytes (may be negative). Process-wide. */
  rssDelta: number;
  /** Highest V8 heap in use the worker published, bytes. */
  peakHeap: number;
  /** V8's effective heap size limit for the worker (old + young generation), bytes; 0 if never reported. */
  heapSizeLimit: number;
  fuelUsed: number;
  ioWritten: number;
  ioRead: number;
  /** Bytes reserved through the run's byte budget, in total. */
  budgetReserved: number;
  /** Highest number of bytes the task held on its byte budget at once. */
  budgetPeak: number;
  /** Alerts raised during the run, in order. */
  alerts: Alert[];
  /** Monitoring checks performed while the task ran. */
  checks: number;
  limits: ResolvedLimits;
  /** What the task's sandbox meters granted (see {@link SandboxUsage}). */
  sandbox: SandboxUsage;
  /** The error the run failed with (name, code, message), or null. */
  error: { name: string; code: string | undefined; message: string } | null;
}

/**
 * The sandbox figures of a run: what the task's meters (`ctx.io` for open
 * files, `taskSandbox()` for memory growth, threads and network) granted.
 * Each meter publishes at every use, so the figures are there also when the
 * run ended the worker from outside (a timeout, an idle timeout, a breach).
 * Refused requests are not counted.
 */
export interface SandboxUsage {
  /** The run's `options.sandbox` settings after validation, or null without them. */
  limits: {
    idleTimeout: number | null;
    ioWriteRate: { bytes: number; windowMs: number } | null;
    ioReadRate: { bytes: number; windowMs: number } | null;
    openFiles: number | null;
    memoryGrowthRate: { limit: number; unit: 'bytes' | 'pages'; windowMs: number } | null;
    threads: number | null;
    network: { connections?: number; requestsPerSecond?: number; bytesSent?: number; bytesReceived?: number } | null;
  } | null;
  /** Memory growth granted in total, in `memoryGrowthUnit`. */
  memoryGrowth: number;
  /** `bytes` or `pages` (64 KiB), or null without a growth limit. */
  memoryGrowthUnit: 'bytes' | 'pages' | null;
  /** Workers the task started through the thread meter. */
  threadsStarted: number;
  /** Most of them running at once. */
  threadsPeak: number;
  /** Most files held open at once through `ctx.io`. */
  openFilesPeak: number;
  /** Requests let through the network meter. */
  networkRequests: number;
  /** Request body bytes sent through it. */
  networkBytesSent: number;
  /** Response body bytes received through it. */
  networkBytesReceived: number;
  /** Most connections (requests in flight) at once. */
  networkConnectionsPeak: number;
  /** Milliseconds from the task's start to its last meter activity, or null if there was none. */
  lastActivity: number | null;
}
