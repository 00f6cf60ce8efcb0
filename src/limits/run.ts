/**
 * `runWithLimits`: runs a task in a worker thread under memory, time, CPU,
 * fuel and IO limits, and reports what it used.
 *
 * Who enforces what:
 * - heap: V8, through the Worker's `resourceLimits`; Node reports
 *   `ERR_WORKER_OUT_OF_MEMORY`, which becomes `MemoryLimitError` (`kind: 'heap'`).
 * - wall-clock time: a timer here, then `worker.terminate()` (which also stops
 *   a synchronous infinite loop).
 * - CPU time and RSS growth: a check every `checkInterval` ms here, while the
 *   task runs, then `worker.terminate()`.
 * - fuel and IO: the task's own thread, synchronously, by throwing.
 *
 * CPU time is the worker thread's own CPU clock where the kernel exposes it
 * per thread (Linux: `/proc/self/task/<tid>/schedstat`, nanoseconds, readable
 * from this thread while the worker is stuck in a loop). Elsewhere it is the
 * worker's event-loop active time (`worker.performance.eventLoopUtilization()`),
 * which is an upper bound: time the worker spends blocked in a synchronous
 * call or preempted counts too. The report says which was used. Process CPU
 * time is not used: it counts every thread of the process.
 *
 * RSS growth is the process's resident set (from the native sampler's
 * snapshot) minus what it was when the task started: process-wide, so other
 * work running at the same time counts too.
 *
 * A run settles only after its worker has exited, so a settled run never
 * leaves a thread, a timer or a port behind; with one exception: a worker
 * that Node fails to stop within {@link EXIT_GRACE_MS} of `terminate()`
 * (seen on Node 24 and 26 with a thread stuck at its heap limit). The run
 * then settles anyway with the outcome already decided, the worker is
 * unref'd so it cannot keep the process alive, `abandonedWorkers()` counts
 * it until it exits, and a `RG_WORKER_UNRESPONSIVE` process warning says so.
 *
 * Heap: the young generation is sized from the heap limit
 * ({@link youngGenerationMb}). Left at the process default (192 MiB on Node
 * 24, 96 MiB on 26), one scavenge can promote more than the old generation's
 * limit plus the 16 MiB of slack Node grants at the limit, and V8 then aborts
 * the whole process ("FATAL ERROR: Reached heap limit").
 *
 * @module
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Worker, type TransferListItem } from 'node:worker_threads';
import { Budget } from '../budget';
import { InvalidArgTypeError, InvalidArgValueError, MemoryLimitError, formatBytes } from '../errors';
import { SnapshotField, acquireSampler, readRss, refreshSnapshot, snapshotView } from '../sampler';
import { parseSize, validateFunction, validateNumber, validateObject, validateString, type Size } from '../validate';
import { AlertTracker, resolveThresholds, type AlertThresholds } from './alerts';
import type { TaskFunction } from './context';
import { CpuTimeError, TaskAbortedError, TaskCrashedError, TimeoutError } from './errors';
import { resolveLimits } from './profiles';
import { SANDBOX_SLOTS, idleBreach, resolveSandbox, sandboxUsage, type SandboxOptions, type SandboxSettings } from './sandbox';
import { TYPED_CODES, rebuildError } from './rebuild';
import { Slot, SLOTS, currentTid, errorToData, threadCpuNs, type FinalUsage, type TaskSpec, type WorkerData, type WorkerMessage } from './shared';
import type { Alert, ExitReason, LimitedResource, Limits, ProfileName, ResolvedLimits, Usage, UsageReport } from './types';

/**
 * The task to run:
 * - a function: its source is sent to the worker and evaluated there, so it
 *   must not use variables from the scope it was written in (its input comes
 *   as the first argument; `require` resolves from the working directory);
 * - an absolute path or `file:` URL of a module: its default export;
 * - `{ module, export }`: a named export of a module (CommonJS or ES);
 * - `{ source }`: the source text of a function.
 *
 * The function is called as `fn(input, ctx)` (see {@link TaskContext}) and
 * may return a promise. Its result must be cloneable (structured clone).
 */
export type Task<I = unknown, R = unknown> =
  | TaskFunction<I, R>
  | string
  | URL
  | { module: string | URL; export?: string }
  | { source: string };

/** Options of {@link runWithLimits}. */
export interface RunOptions<I = unknown> {
  /** First argument of the task (structured-cloned into the worker). */
  input?: I;
  /** Objects in `input` to transfer rather than copy. */
  transferList?: readonly TransferListItem[];
  /** Stops the run: the worker is terminated and the run rejects with `TaskAbortedError`. */
  signal?: AbortSignal;
  /** Called every `usageInterval` ms with the task's current usage. */
  onUsage?: (usage: Usage) => void;
  /** @default 100 */
  usageInterval?: number;
  /** Called when a limited resource passes the warning or critical fraction of its limit. */
  onAlert?: (alert: Alert) => void;
  /** @default { warning: 0.8, critical: 0.95 } */
  alertThresholds?: AlertThresholds;
  /**
   * Milliseconds between checks of CPU time and RSS growth (and of alerts).
   * @default 10
   */
  checkInterval?: number;
  /**
   * Milliseconds allowed for starting the worker and loading the task, after
   * which the run fails with `TimeoutError` (`phase: 'startup'`). Kept apart
   * from the `timeout` limit, which starts when the task does: how long a
   * worker takes to boot depends on the machine's load, not on the task.
   * `null` or `Infinity`: no bound.
   * @default 30000
   */
  startupTimeout?: number | null;
  /**
   * A process-wide byte budget the task allocates through (`ctx.budget`):
   * the name of an existing `Budget`, or a name and a limit to open (or
   * create) it with. The report counts what the task reserved. It is
   * opened before the worker starts, so a budget that does not exist
   * (`ERR_BUDGET_NOT_FOUND`) or a limit that differs from the existing one
   * (`ERR_BUDGET_LIMIT_MISMATCH`) throws synchronously and starts nothing.
   */
  budget?: string | { name: string; limit?: Size };
  /** Idle timeout, IO rates and open files of the task (see sandbox.ts). */
  sandbox?: SandboxOptions;
}

/** What a successful run resolves with. */
export interface RunResult<R = unknown> {
  value: R;
  report: UsageReport;
}

/** An error a limited run rejected with: it carries the run's report. */
export type LimitedRunError = Error & { report: UsageReport };

const DEFAULT_CHECK_MS = 10;
const DEFAULT_STARTUP_MS = 30_000;
const DEFAULT_USAGE_MS = 100;
/** How long a terminated worker may take to exit before the run settles without it. */
export const EXIT_GRACE_MS = 2_000;
/**
 * Process RSS growth beyond the heap limit (plus the young generation and
 * V8's slack) that, while the worker no longer answers, shows the heap limit
 * was passed without V8 stopping the worker.
 */
const HEAP_RUNAWAY_MARGIN = 32 * 1024 * 1024;
/** How long a heap statistics request may stay unanswered before the worker counts as unresponsive. */
const HEAP_QUERY_STALE_MS = 1_000;

/**
 * Young generation size (MiB) for a worker whose old generation is limited
 * to `heapMb`: an eighth of it, between 1 and 16 MiB. Small enough that a
 * scavenge's promotions fit in the slack V8 is given at the limit, large
 * enough not to slow an allocating task down for big limits.
 */
export function youngGenerationMb(heapMb: number): number {
  return Math.min(16, Math.max(1, Math.floor(heapMb / 8)));
}

let workerScript: string | undefined;

/**
 * Path of the compiled task worker (`dist/limits/worker.js`). Worker threads
 * cannot load TypeScript, so when this module runs from `src/` (tests), the
 * compiled file in `dist/` is used. `RESOURCE_GUARD_TASK_WORKER` overrides
 * the path (for bundlers that move files).
 */
export function taskWorkerPath(): string {
  const explicit = process.env.RESOURCE_GUARD_TASK_WORKER;
  if (explicit) return path.resolve(explicit);
  if (workerScript !== undefined) return workerScript;
  const candidates = [path.join(__dirname, 'worker.js'), path.join(__dirname, '..', '..', 'dist', 'limits', 'worker.js')];
  for (const c of candidates) {
    if (fs.existsSync(c)) return (workerScript = c);
  }
  const err = new Error(
    [
      'resource-guard: the task worker script was not found.',
      `  looked in: ${candidates.join(', ')}`,
      '  build it with `npm run build:ts`, or set RESOURCE_GUARD_TASK_WORKER to the path of limits/worker.js',
    ].join('\n'),
  );
  (err as Error & { code: string }).code = 'ERR_RESOURCE_GUARD_WORKER_MISSING';
  throw err;
}

/** Whether this platform exposes a CPU clock per thread that another thread can read. */
const THREAD_CLOCK = currentTid() > 0;

/** Runs in progress (each owns one live worker). */
const live = new Set<LimitedRun>();
/** Settled runs whose worker did not exit after terminate() (see EXIT_GRACE_MS). */
const abandoned = new Set<LimitedRun>();

/** Number of limited runs in progress: not settled, or settled and waiting for their worker to exit. */
export function activeRuns(): number {
  return live.size;
}

/**
 * Number of task worker threads that did not exit after `terminate()` and
 * were left behind when their run settled (Node 24 and 26 can leave a worker
 * stuck at its heap limit). Each still holds its memory; 0 in a healthy process.
 */
export function abandonedWorkers(): number {
  return abandoned.size;
}

/**
 * Runs `task` in a new worker thread under `limits` (a {@link Limits} object
 * or a profile name) and resolves with its value and usage report. On any
 * failure it rejects with a typed error (`TimeoutError`, `CpuTimeError`,
 * `MemoryLimitError`, `FuelExhaustedError`, `IoLimitError`,
 * `BudgetExceededError`, `TaskAbortedError`, `TaskCrashedError`, or the
 * task's own error) whose `report` property is the usage report.
 *
 * Arguments are validated synchronously: a bad one throws before any worker
 * starts.
 */
export function runWithLimits<R = unknown, I = unknown>(
  task: Task<I, R>,
  limits?: Limits | ProfileName,
  options?: RunOptions<I>,
): Promise<RunResult<Awaited<R>>> {
  const spec = resolveTask(task);
  const resolved = resolveLimits(limits);
  const opts = resolveOptions(options);
  const script = taskWorkerPath();
  if (resolved.heap !== null) warnIfHeapFlagOverrides();
  // The budget is opened here before any worker starts, so a missing budget
  // or a limit mismatch throws now; the handle keeps it alive for the task.
  const hold = opts.budget === null ? null : Budget.open(opts.budget.name, opts.budget.limit);
  let run: LimitedRun;
  try {
    run = new LimitedRun(spec, resolved, opts, script);
  } catch (err) {
    hold?.close();
    throw err;
  }
  if (hold !== null) {
    const close = (): void => hold.close();
    run.promise.then(close, close);
  }
  return run.promise as Promise<RunResult<Awaited<R>>>;
}

interface ResolvedOptions {
  input: unknown;
  transferList: readonly TransferListItem[] | undefined;
  signal: AbortSignal | undefined;
  onUsage: ((u: Usage) => void) | undefined;
  usageInterval: number;
  onAlert: ((a: Alert) => void) | undefined;
  thresholds: Required<AlertThresholds>;
  checkInterval: number;
  startupTimeout: number | null;
  budget: { name: string; limit: number | undefined } | null;
  sandbox: SandboxSettings | null;
}

function resolveOptions(options: RunOptions | undefined): ResolvedOptions {
  const o = options === undefined ? {} : validateObject<RunOptions>(options, 'options');
  if (o.transferList !== undefined && !Array.isArray(o.transferList)) {
    throw new InvalidArgTypeError('options.transferList', 'an instance of Array', o.transferList);
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new InvalidArgTypeError('options.signal', 'an instance of AbortSignal', o.signal);
  }
  if (o.onUsage !== undefined) validateFunction(o.onUsage, 'options.onUsage');
  if (o.onAlert !== undefined) validateFunction(o.onAlert, 'options.onAlert');
  let budget: ResolvedOptions['budget'] = null;
  if (typeof o.budget === 'string') {
    budget = { name: validateString(o.budget, 'options.budget'), limit: undefined };
  } else if (o.budget !== undefined) {
    validateObject(o.budget, 'options.budget');
    budget = {
      name: validateString(o.budget.name, 'options.budget.name'),
      limit: o.budget.limit === undefined ? undefined : parseSize(o.budget.limit, 'options.budget.limit'),
    };
  }
  if (budget !== null && budget.name === '') throw new InvalidArgValueError('options.budget.name', '', 'must not be empty');
  return {
    input: o.input,
    transferList: o.transferList,
    signal: o.signal,
    onUsage: o.onUsage,
    usageInterval: o.usageInterval === undefined ? DEFAULT_USAGE_MS : validateNumber(o.usageInterval, 'options.usageInterval', 1, 2 ** 31 - 1),
    onAlert: o.onAlert,
    thresholds: resolveThresholds(o.alertThresholds, 'options.alertThresholds'),
    checkInterval: o.checkInterval === undefined ? DEFAULT_CHECK_MS : validateNumber(o.checkInterval, 'options.checkInterval', 1, 60_000),
    startupTimeout:
      o.startupTimeout === undefined
        ? DEFAULT_STARTUP_MS
        : o.startupTimeout === null || o.startupTimeout === Infinity
          ? null
          : validateNumber(o.startupTimeout, 'options.startupTimeout', 1, 2 ** 31 - 1),
    budget,
    sandbox: resolveSandbox(o.sandbox),
  };
}

/** Turns the accepted task forms into what the worker loads. */
export function resolveTask(task: unknown): TaskSpec {
  if (typeof task === 'function') {
    const source = Function.prototype.toString.call(task);
    if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
      throw new InvalidArgValueError('task', task, 'must be a function written in JavaScript (not native or bound): its source is run in the worker');
    }
    checkSource(source, 'task', task);
    return { kind: 'source', source };
  }
  if (typeof task === 'string' || task instanceof URL) return { kind: 'module', url: moduleUrl(task, 'task'), exportName: 'default' };
  if (typeof task === 'object' && task !== null) {
    const t = task as { module?: unknown; export?: unknown; source?: unknown };
    if (t.source !== undefined) {
      const source = validateString(t.source, 'task.source');
      if (source.trim() === '') throw new InvalidArgValueError('task.source', source, 'must be the source of a function');
      checkSource(source, 'task.source', source);
      return { kind: 'source', source };
    }
    if (t.module !== undefined) {
      if (typeof t.module !== 'string' && !(t.module instanceof URL)) {
        throw new InvalidArgTypeError('task.module', 'of type string or an instance of URL', t.module);
      }
      const exportName = t.export === undefined ? 'default' : validateString(t.export, 'task.export');
      return { kind: 'module', url: moduleUrl(t.module, 'task.module'), exportName };
    }
  }
  throw new InvalidArgTypeError('task', 'a function, a module path or URL, { module, export } or { source }', task);
}

/**
 * Compiles a task's source the way the worker will (see worker.ts), without
 * running it, so that a source the worker could not evaluate is refused
 * here, before any worker starts. A method written in shorthand
 * (`{ run() {} }.run`, a class method) is the usual case: its source is not
 * an expression.
 */
function checkSource(source: string, name: string, value: unknown): void {
  try {
    new Function('require', `'use strict';\nreturn (${source}\n);`);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new InvalidArgValueError(
      name,
      value,
      `must be the source of a function that can be evaluated as an expression (${err.message}); a method written in shorthand is not: write it as \`function name() {}\` or an arrow function`,
    );
  }
}

function moduleUrl(m: string | URL, name: string): string {
  if (m instanceof URL) {
    if (m.protocol !== 'file:') throw new InvalidArgValueError(name, m.href, 'must be a file: URL');
    return m.href;
  }
  if (m.startsWith('file:')) return new URL(m).href;
  if (!path.isAbsolute(m)) {
    throw new InvalidArgValueError(name, m, 'must be an absolute path or a file: URL (use require.resolve or path.resolve)');
  }
  return pathToFileURL(m).href;
}

let warnedHeapFlag = false;

/**
 * `--max-old-space-size` given to the process wins over a worker's
 * `resourceLimits` (the V8 flag is process-wide), so a heap limit would not
 * hold. Say so once.
 */
function warnIfHeapFlagOverrides(): void {
  if (warnedHeapFlag) return;
  const flag = /--max[-_]old[-_]space[-_]size/;
  if (process.execArgv.some((a) => flag.test(a)) || flag.test(process.env.NODE_OPTIONS ?? '')) {
    warnedHeapFlag = true;
    process.emitWarning(
      'runWithLimits: --max-old-space-size is set for this process and overrides the heap limit of task workers; ' +
        "the report's heapSizeLimit shows the limit in force",
      { code: 'RG_HEAP_LIMIT_OVERRIDDEN' },
    );
  }
}

interface Outcome {
  reason: ExitReason;
  ok: boolean;
  value?: unknown;
  error?: Error;
}

class LimitedRun {
  readonly promise: Promise<RunResult>;
  #resolve!: (r: RunResult) => void;
  #reject!: (e: unknown) => void;

  readonly #limits: ResolvedLimits;
  readonly #opts: ResolvedOptions;
  /** Gives back the run's hold on the sampler; null before the run starts and once settled. */
  #releaseSampler: (() => void) | null = null;
  readonly #view: Float64Array;
  readonly #alerts: AlertTracker;
  readonly #alertLog: Alert[] = [];
  #worker: Worker | null = null;
  readonly #t0 = performance.now();
  /** Task start on this thread's clock, or null before the worker starts the task. */
  #startedAt: number | null = null;
  /** The sandbox slots' values when the run ended (see #decide), in SANDBOX_SLOTS order. */
  #metersAtEnd: number[] | null = null;
  #rss0 = 0;
  #cpu0Ns = NaN;
  #elu0 = 0;
  #cpuSource: 'thread' | 'event-loop' = THREAD_CLOCK ? 'thread' : 'event-loop';
  #schedstat = '';
  #cpuMs = 0;
  #rssDelta = 0;
  #peakRssDelta = 0;
  #checks = 0;
  #lastUsageAt = -Infinity;
  #final: FinalUsage | null = null;
  #decidedAt = 0;
  #outcome: Outcome | null = null;
  #startupTimer: NodeJS.Timeout | undefined;
  #taskTimer: NodeJS.Timeout | undefined;
  #checkTimer: NodeJS.Timeout | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  #onAbort: (() => void) | undefined;
  #settled = false;
  #exited = false;
  /** When the pending worker heap query was sent (this thread's clock), or null. */
  #heapQueryAt: number | null = null;
  /** The worker's heap as it last answered, or NaN. */
  #workerHeap = NaN;

  constructor(spec: TaskSpec, limits: ResolvedLimits, opts: ResolvedOptions, script: string) {
    this.promise = new Promise<RunResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#limits = limits;
    this.#opts = opts;
    this.#alerts = new AlertTracker(opts.thresholds);
    const shared = new SharedArrayBuffer(SLOTS * 8);
    this.#view = new Float64Array(shared);

    const signal = opts.signal;
    if (signal?.aborted) {
      this.#decide({ reason: 'aborted', ok: false, error: new TaskAbortedError(signal.reason) });
      this.#settle();
      return;
    }
    // The run's own hold on the sampler (RSS growth and CPU are read from
    // the snapshot), given back when the run settles.
    this.#releaseSampler = acquireSampler();
    const data: WorkerData & { sandbox: SandboxSettings | null } = {
      shared,
      task: spec,
      input: opts.input,
      fuel: limits.fuel,
      ioWrite: limits.ioWrite,
      ioRead: limits.ioRead,
      budget: opts.budget,
      publishMs: Math.max(5, opts.checkInterval),
      limits,
      sandbox: opts.sandbox,
    };
    let worker: Worker;
    try {
      worker = new Worker(script, {
        workerData: data,
        transferList: opts.transferList as TransferListItem[] | undefined,
        resourceLimits:
          limits.heap === null
            ? undefined
            : {
                maxOldGenerationSizeMb: limits.heap / (1024 * 1024),
                maxYoungGenerationSizeMb: youngGenerationMb(limits.heap / (1024 * 1024)),
              },
      });
    } catch (err) {
      this.#decide({ reason: 'error', ok: false, error: err as Error });
      this.#settle();
      return;
    }
    this.#worker = worker;
    live.add(this);
    worker.on('message', (m: WorkerMessage) => this.#onMessage(m));
    worker.on('error', (err: unknown) => this.#onError(err));
    worker.once('exit', (code: number) => this.#onExit(code));
    if (signal !== undefined) {
      this.#onAbort = () => this.#decide({ reason: 'aborted', ok: false, error: new TaskAbortedError(signal.reason) });
      signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    if (opts.startupTimeout !== null) this.#armDeadline('startup', opts.startupTimeout, this.#t0);
  }

  #onMessage(m: WorkerMessage): void {
    if (m.type === 'started') {
      if (this.#outcome !== null) return;
      const now = performance.now();
      // The worker's epoch time on this thread's clock; never before the call nor after now.
      this.#startedAt = Math.min(now, Math.max(this.#t0, m.startEpoch - performance.timeOrigin));
      this.#rss0 = m.rss;
      const tid = this.#view[Slot.tid]!;
      if (tid > 0 && Number.isFinite(m.cpuNs)) {
        this.#cpuSource = 'thread';
        this.#cpu0Ns = m.cpuNs;
        this.#schedstat = `/proc/self/task/${tid}/schedstat`;
      } else {
        this.#cpuSource = 'event-loop';
        this.#elu0 = this.#worker!.performance.eventLoopUtilization().active;
      }
      clearTimeout(this.#startupTimer);
      const timeout = this.#limits.timeout;
      if (timeout !== null) this.#armDeadline('task', timeout, this.#startedAt);
      this.#checkTimer = setInterval(() => this.#check(), this.#opts.checkInterval);
      this.#check();
      return;
    }
    // 'done'
    if (this.#outcome !== null) return;
    if (m.usage !== null) this.#final = m.usage;
    if (m.ok) {
      const breach = this.#finalBreach();
      this.#decide(breach ?? { reason: 'completed', ok: true, value: m.value });
      return;
    }
    const error = rebuildError(m.error);
    this.#decide({ reason: reasonOf(error), ok: false, error });
  }

  /**
   * Node's timers may fire up to a millisecond early against the
   * high-resolution clock, so the deadline is re-checked and re-armed until
   * it has really passed: `used` in the error is never below the limit.
   */
  #armDeadline(phase: 'startup' | 'task', timeout: number, from: number): void {
    const remaining = timeout - (performance.now() - from);
    const timer = setTimeout(() => {
      const elapsed = performance.now() - from;
      if (elapsed < timeout) this.#armDeadline(phase, timeout, from);
      else this.#decide({ reason: 'timeout', ok: false, error: new TimeoutError(timeout, elapsed, phase) });
    }, Math.max(1, Math.ceil(remaining)));
    if (phase === 'startup') this.#startupTimer = timer;
    else this.#taskTimer = timer;
  }

  #onError(err: unknown): void {
    const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
    if (code === 'ERR_WORKER_OUT_OF_MEMORY') {
      const limit = this.#limits.heap ?? this.#view[Slot.heapSizeLimit]!;
      const used = Math.max(this.#view[Slot.heapPeak]!, limit);
      const e = new MemoryLimitError(
        used,
        limit,
        'heap',
        `The task's V8 heap reached its limit of ${formatBytes(limit)} and its worker was stopped (ERR_WORKER_OUT_OF_MEMORY)`,
      );
      e.cause = err;
      this.#decide({ reason: 'heap', ok: false, error: e });
      return;
    }
    // An error the task did not catch (thrown in a callback, or an unhandled
    // rejection); a thrown non-error value becomes an Error that describes it.
    const typed = typeof code === 'string' && TYPED_CODES.has(code);
    const error = typed || !(err instanceof Error) ? rebuildError(errorToData(err)) : err;
    this.#decide({ reason: reasonOf(error), ok: false, error });
  }

  #onExit(code: number): void {
    live.delete(this);
    abandoned.delete(this);
    this.#exited = true;
    clearTimeout(this.#graceTimer);
    if (this.#outcome === null) this.#decide({ reason: 'crashed', ok: false, error: new TaskCrashedError(code) });
    this.#settle();
  }

  /**
   * Heap runaway: V8 should stop a worker at its heap limit, but on some Node
   * lines the thread gets stuck there, still growing, and never exits. That
   * shows as the process's RSS growing far past the heap limit while the
   * worker no longer answers a heap statistics request (or answers above
   * its limit). Needs `worker.getHeapStatistics()` (Node >= 22.16).
   */
  #checkHeapRunaway(now: number): boolean {
    const heap = this.#limits.heap;
    const worker = this.#worker;
    if (heap === null || worker === null) return false;
    const query = (worker as Worker & { getHeapStatistics?: () => Promise<{ used_heap_size: number }> }).getHeapStatistics;
    if (typeof query !== 'function') return false;
    if (this.#heapQueryAt === null) {
      this.#heapQueryAt = now;
      query.call(worker).then(
        (s) => {
          this.#heapQueryAt = null;
          this.#workerHeap = s.used_heap_size;
        },
        () => undefined,
      );
    }
    const heapMb = heap / (1024 * 1024);
    const ceiling = heap + (youngGenerationMb(heapMb) + 16) * 1024 * 1024 + HEAP_RUNAWAY_MARGIN;
    if (this.#rssDelta <= ceiling) return false;
    const stale = this.#heapQueryAt !== null && now - this.#heapQueryAt >= HEAP_QUERY_STALE_MS;
    if (!stale && !(this.#workerHeap > heap)) return false;
    const used = Math.max(this.#view[Slot.heapPeak]!, this.#workerHeap || 0, heap);
    const e = new MemoryLimitError(
      used,
      heap,
      'heap',
      `The task's V8 heap passed its limit of ${formatBytes(heap)} and V8 did not stop its worker ` +
        `(the process grew by ${formatBytes(this.#rssDelta)}); the worker was terminated`,
    );
    e.cause = Object.assign(new Error('heap limit passed without ERR_WORKER_OUT_OF_MEMORY'), { code: 'ERR_WORKER_HEAP_RUNAWAY' });
    this.#decide({ reason: 'heap', ok: false, error: e });
    return true;
  }

  /** Periodic check while the task runs: RSS, CPU, alerts, usage callback. */
  #check(): void {
    if (this.#outcome !== null || this.#startedAt === null) return;
    this.#checks++;
    const l = this.#limits;
    const now = performance.now();
    const elapsed = now - this.#startedAt;
    refreshSnapshot();
    this.#observeRss(snapshotView[SnapshotField.rss]!);
    if (l.rssGrowth !== null && this.#rssDelta > l.rssGrowth) {
      this.#decide({ reason: 'rss', ok: false, error: rssError(this.#rssDelta, l.rssGrowth) });
      return;
    }
    if (this.#checkHeapRunaway(now)) return;
    // Sampled on every check, also without a CPU limit: once the thread has
    // gone (a heap breach) the last figure is the report's.
    this.#sampleCpu();
    if (l.cpuTime !== null && this.#cpuMs > l.cpuTime) {
      this.#decide({ reason: 'cpu', ok: false, error: new CpuTimeError(l.cpuTime, this.#cpuMs, this.#cpuSource) });
      return;
    }
    const idle = idleBreach(this.#opts.sandbox, this.#view, performance.timeOrigin + this.#startedAt, performance.timeOrigin + now);
    if (idle !== null) {
      this.#decide({ reason: 'timeout', ok: false, error: idle });
      return;
    }
    try {
      this.#raiseAlerts(elapsed);
      const onUsage = this.#opts.onUsage;
      if (onUsage !== undefined && now - this.#lastUsageAt >= this.#opts.usageInterval) {
        this.#lastUsageAt = now;
        onUsage(this.#usage(elapsed));
      }
    } catch (err) {
      // A throwing callback stops the run with its error rather than being lost.
      this.#decide({ reason: 'error', ok: false, error: err instanceof Error ? err : rebuildError(errorToData(err)) });
    }
  }

  #observeRss(rss: number): void {
    const delta = rss - this.#rss0;
    this.#rssDelta = delta;
    if (delta > this.#peakRssDelta) this.#peakRssDelta = delta;
  }

  #sampleCpu(): void {
    if (this.#cpuSource === 'thread') {
      const ns = threadCpuNs(this.#schedstat);
      // Unreadable once the thread has gone: keep the last figure.
      if (Number.isFinite(ns)) this.#cpuMs = Math.max(0, (ns - this.#cpu0Ns) / 1e6);
    } else if (this.#worker !== null) {
      const active = this.#worker.performance.eventLoopUtilization().active;
      if (active > 0) this.#cpuMs = Math.max(this.#cpuMs, active - this.#elu0);
    }
  }

  #current(): Record<LimitedResource, [used: number, limit: number | null]> {
    const l = this.#limits;
    const v = this.#view;
    return {
      time: [this.#startedAt === null ? 0 : performance.now() - this.#startedAt, l.timeout],
      cpu: [this.#cpuMs, l.cpuTime],
      heap: [v[Slot.heapUsed]!, l.heap],
      rss: [this.#rssDelta, l.rssGrowth],
      fuel: [v[Slot.fuelUsed]!, l.fuel],
      ioWrite: [v[Slot.ioWritten]!, l.ioWrite],
      ioRead: [v[Slot.ioRead]!, l.ioRead],
    };
  }

  #raiseAlerts(elapsed: number): void {
    const cur = this.#current();
    cur.time[0] = elapsed;
    for (const resource of Object.keys(cur) as LimitedResource[]) {
      const [used, limit] = cur[resource];
      if (limit === null) continue;
      const alert = this.#alerts.observe(resource, used, limit, elapsed);
      if (alert === null) continue;
      this.#alertLog.push(alert);
      this.#opts.onAlert?.(alert);
    }
  }

  #usage(elapsed: number): Usage {
    const v = this.#view;
    const fractions: Usage['fractions'] = {};
    const cur = this.#current();
    cur.time[0] = elapsed;
    for (const resource of Object.keys(cur) as LimitedResource[]) {
      const [used, limit] = cur[resource];
      if (limit !== null) fractions[resource] = limit > 0 ? used / limit : used > 0 ? Infinity : 0;
    }
    return {
      elapsed,
      cpuTime: this.#cpuMs,
      rssDelta: this.#rssDelta,
      heapUsed: v[Slot.heapUsed]!,
      fuelUsed: v[Slot.fuelUsed]!,
      ioWritten: v[Slot.ioWritten]!,
      ioRead: v[Slot.ioRead]!,
      budgetHeld: v[Slot.budgetHeld]!,
      fractions,
    };
  }

  /** Limits the worker's own final figures show as exceeded, for a task that completed. */
  #finalBreach(): Outcome | null {
    const f = this.#final;
    const l = this.#limits;
    if (f === null || this.#startedAt === null) return null;
    const wall = f.endEpoch - performance.timeOrigin - this.#startedAt;
    if (l.timeout !== null && wall > l.timeout) return { reason: 'timeout', ok: false, error: new TimeoutError(l.timeout, wall) };
    this.#applyFinalCpu();
    if (l.cpuTime !== null && this.#cpuMs > l.cpuTime) {
      return { reason: 'cpu', ok: false, error: new CpuTimeError(l.cpuTime, this.#cpuMs, this.#cpuSource) };
    }
    this.#observeRss(f.rss);
    if (l.rssGrowth !== null && this.#peakRssDelta > l.rssGrowth) {
      return { reason: 'rss', ok: false, error: rssError(this.#peakRssDelta, l.rssGrowth) };
    }
    return null;
  }

  #applyFinalCpu(): void {
    const f = this.#final;
    if (f !== null && this.#cpuSource === 'thread' && Number.isFinite(f.cpuNs)) {
      this.#cpuMs = Math.max(0, (f.cpuNs - this.#cpu0Ns) / 1e6);
    } else {
      this.#sampleCpu();
    }
  }

  /** Records the outcome (the first one wins) and stops the worker. */
  #decide(outcome: Outcome): void {
    if (this.#outcome !== null) return;
    this.#outcome = outcome;
    this.#decidedAt = performance.now();
    // The sandbox figures as the run ends: what the task's meters granted
    // after this (timers a finished task left behind, until terminate()
    // takes effect) does not count.
    this.#metersAtEnd = this.#final?.meters ?? Array.from(SANDBOX_SLOTS, (i) => this.#view[i]!);
    clearTimeout(this.#startupTimer);
    clearTimeout(this.#taskTimer);
    clearInterval(this.#checkTimer);
    if (this.#onAbort !== undefined) this.#opts.signal?.removeEventListener('abort', this.#onAbort);
    if (this.#startedAt !== null) {
      if (this.#final === null) {
        // Stopped from here: take the last figures while the thread still exists.
        this.#sampleCpu();
        try {
          this.#observeRss(readRss());
        } catch {
          refreshSnapshot();
          this.#observeRss(snapshotView[SnapshotField.rss]!);
        }
      } else if (outcome.reason !== 'completed') {
        this.#applyFinalCpu();
        this.#observeRss(this.#final.rss);
      }
    }
    // Terminate in every case: a task may leave timers or sockets that would
    // keep its worker alive after it settled.
    const worker = this.#worker;
    if (worker !== null && !this.#exited) {
      worker.terminate().catch(() => undefined);
      // The caller never waits forever on a worker Node cannot stop.
      this.#graceTimer = setTimeout(() => this.#abandon(), EXIT_GRACE_MS);
      this.#graceTimer.unref?.();
    }
  }

  /** The worker did not exit after terminate(): settle without it. */
  #abandon(): void {
    if (this.#exited || this.#settled) return;
    this.#worker?.unref();
    live.delete(this);
    abandoned.add(this);
    process.emitWarning(
      `runWithLimits: a task worker did not exit within ${EXIT_GRACE_MS} ms of terminate() (run ended by ${this.#outcome?.reason}); ` +
        'the run settled without it. The thread is unref\'d and counted by abandonedWorkers() until it exits',
      { code: 'RG_WORKER_UNRESPONSIVE' },
    );
    this.#settle();
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    const outcome = this.#outcome!;
    const report = this.#report(outcome);
    const release = this.#releaseSampler;
    this.#releaseSampler = null;
    release?.();
    if (outcome.ok) {
      this.#resolve({ value: outcome.value, report });
      return;
    }
    const error = outcome.error!;
    try {
      Object.defineProperty(error, 'report', { value: report, enumerable: false, writable: true, configurable: true });
    } catch {
      // A frozen error value: it is still rejected, without the report.
    }
    this.#reject(error);
  }

  #report(outcome: Outcome): UsageReport {
    const v = this.#view;
    const f = this.#final;
    const end = performance.now();
    const started = this.#startedAt;
    const taskEnd = f !== null ? f.endEpoch - performance.timeOrigin : this.#decidedAt;
    const e = outcome.error;
    return {
      exitReason: outcome.reason,
      ok: outcome.ok,
      wallTime: started === null ? 0 : Math.max(0, taskEnd - started),
      startupTime: (started ?? this.#decidedAt) - this.#t0,
      totalTime: end - this.#t0,
      cpuTime: this.#cpuMs,
      cpuSource: this.#cpuSource,
      peakRssDelta: this.#peakRssDelta,
      rssDelta: this.#rssDelta,
      // A heap breach means V8 could not stay within the limit, whatever the
      // worker last managed to publish.
      peakHeap: Math.max(v[Slot.heapPeak]!, f?.heapPeak ?? 0, outcome.reason === 'heap' ? (this.#limits.heap ?? 0) : 0),
      heapSizeLimit: v[Slot.heapSizeLimit]!,
      fuelUsed: f?.fuelUsed ?? v[Slot.fuelUsed]!,
      ioWritten: f?.ioWritten ?? v[Slot.ioWritten]!,
      ioRead: f?.ioRead ?? v[Slot.ioRead]!,
      budgetReserved: f?.budgetReserved ?? v[Slot.budgetReserved]!,
      budgetPeak: f?.budgetPeak ?? v[Slot.budgetPeak]!,
      alerts: this.#alertLog,
      checks: this.#checks,
      limits: this.#limits,
      sandbox: sandboxUsage(this.#opts.sandbox, this.#metersAtEnd ?? Array.from(SANDBOX_SLOTS, (i) => v[i]!), started === null ? null : performance.timeOrigin + started),
      error: e === undefined ? null : { name: e.name, code: codeOf(e), message: e.message },
    };
  }
}

function codeOf(error: Error): string | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function reasonOf(error: Error): ExitReason {
  const code = codeOf(error);
  if (code === 'ERR_FUEL_EXHAUSTED') return 'fuel';
  if (code === 'ERR_IO_LIMIT') return 'io';
  if (code === 'ERR_IO_RATE' || code === 'ERR_OPEN_FILES_LIMIT') return 'io';
  if (code === 'ERR_MEMORY_GROWTH_RATE') return 'memory-growth';
  if (code === 'ERR_THREADS_LIMIT') return 'threads';
  if (code === 'ERR_CONNECTIONS_LIMIT' || code === 'ERR_NETWORK_RATE' || code === 'ERR_NETWORK_BYTES_LIMIT') return 'network';
  if (code === 'ERR_BUDGET_EXCEEDED') return 'budget';
  return 'error';
}

function rssError(delta: number, limit: number): MemoryLimitError {
  return new MemoryLimitError(
    delta,
    limit,
    'rss',
    `Resident memory grew by ${formatBytes(delta)} while the task ran, above its limit of ${formatBytes(limit)}`,
  );
}
