/**
 * CpuMonitor: CPU load by the CPU rule (this process's or its container's CPU
 * time against the CPUs it may use; see `src/cpu-usage.ts` and
 * docs/shedding.md), host CPU load as a separate figure, and event-loop lag
 * and utilisation, with high and critical
 * thresholds and a throttle that switches on at critical and off only below
 * high (hysteresis, so a load hovering at one threshold does not flap).
 *
 * The host load comes from the native sampler, which keeps its own
 * `/proc/stat` baseline and reports the load over the last second (before
 * the second sample, the average since boot), so the first reading is a real
 * figure, never 0. Reading it is an array read.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { LoopDelayWindow } from '../loop-delay';
import { CpuOverloadError, OutOfRangeError } from '../errors';
import { sharedCpuTracker, type CpuUsageTracker } from '../cpu-usage';
import { SnapshotField, acquireSampler, cpuCount, readCgroup, refreshSnapshot, sharedMemory, snapshotView } from '../sampler';
import { validateBoolean, validateFraction, validateInteger, validateNumber, validateOneOf } from '../validate';
import { type Clock, monotonicClock, optionalClock, optionsObject, sane, validateSource } from './internal';

const VIEW = snapshotView;

/** Event-loop figures as a {@link CpuSource} reports them. */
export interface EventLoopReading {
  /** Mean delay of the event loop beyond its timer resolution, ms. */
  lagMs: number;
  /** Largest delay in the window, ms. */
  lagMaxMs?: number;
  /** Fraction of time the loop was busy, 0..1. */
  utilization: number;
}

/** Where a {@link CpuMonitor} reads CPU figures. The native sampler is the default. */
export interface CpuSource {
  /** Host CPU load, 0..1. Judges the load only with `basis: 'system'`, or when the source has neither `process` nor `container`. */
  system(): number;
  /** CPUs this process keeps busy (CPU-seconds per second; may exceed 1). */
  process?(): number;
  /** The cgroup CPU quota in CPUs, or null when unlimited. */
  quota?(): number | null;
  /** CPUs the container keeps busy (its cgroup CPU time per second), or null without container accounting. */
  container?(): number | null;
  /** Event-loop lag and utilisation. */
  eventLoop?(): EventLoopReading;
  /** Logical CPUs. */
  cpuCount?(): number;
}

/** Options of {@link CpuMonitor}. */
export interface CpuMonitorOptions {
  /**
   * Load at or above which the `high` event fires; throttling switches off
   * only when the load falls below it. In (0, 1], at most `criticalThreshold`.
   * @default 0.85
   */
  highThreshold?: number;
  /**
   * Load at or above which throttling switches on and assert() throws. In (0, 1].
   * @default 0.95
   */
  criticalThreshold?: number;
  /**
   * Whether {@link CpuMonitor.throttle} waits while throttling.
   * @default true
   */
  autoThrottle?: boolean;
  /**
   * How long one throttle wait lasts, milliseconds (0 to 60000).
   * @default 50
   */
  throttleDelayMs?: number;
  /**
   * Shortest window over which event-loop lag and utilisation are measured, ms.
   * @default 1000
   */
  sampleIntervalMs?: number;
  /**
   * Which load the thresholds apply to. 'auto' is the CPU rule: the
   * container's CPU time where it has cgroup CPU accounting, else this
   * process's, against the CPUs it may use (quota, else affinity, else
   * count). 'quota' is this process's CPU divided by the cgroup CPU quota;
   * 'system' the host-wide load (explicit opt-in: a busy neighbour then
   * counts against this process).
   * @default 'auto'
   */
  basis?: 'auto' | 'system' | 'quota';
  /**
   * Measure event-loop delay (the time between runs of a 10 ms timer) and utilisation.
   * @default true
   */
  eventLoop?: boolean;
  /**
   * Pacing: a `sample()` (or `assert()`, `throttle()`) within this many ms of
   * the last sample returns that sample again, and is not counted as a
   * sample (`stats().pacedCalls` counts it). 0 samples on every call.
   * @default 0
   */
  minSampleIntervalMs?: number;
  /** Number of recent known loads `averageLoad` is the mean of (1–10,000). @default 10 */
  averageWindow?: number;
  /** Where to read CPU figures. @default the native sampler */
  source?: CpuSource;
  /** Monotonic milliseconds. @default the sampler's clock */
  clock?: Clock;
}

/** One reading of a {@link CpuMonitor}. */
export interface CpuSample {
  /** The load the thresholds apply to, 0..1 (NaN when unknown). */
  load: number;
  /** What `load` is: 'process' or 'container' (the CPU rule), 'quota' or 'system' when asked for. */
  basis: 'process' | 'container' | 'system' | 'quota';
  /** CPUs the process may use: the quota, else its affinity, else the CPU count. */
  cpus: number;
  /** Host CPU load, 0..1. */
  system: number;
  /** This process's share of the CPUs it may use, 0..1. */
  process: number;
  /** CPUs this process keeps busy (may exceed 1). */
  processCores: number;
  cpuCount: number;
  /** The cgroup CPU quota in CPUs, or null when unlimited. */
  quota: number | null;
  /** `processCores / quota`, capped at 1, or null without a quota. */
  quotaLoad: number | null;
  /** Mean event-loop delay beyond the timer resolution, ms, or null before the first window or when not measured. */
  eventLoopLagMs: number | null;
  /** Largest event-loop delay in the window, ms, or null. */
  eventLoopLagMaxMs: number | null;
  /** Fraction of the window the event loop was busy, or null. */
  eventLoopUtilization: number | null;
  /** Mean of the last `averageWindow` known loads, this one included; NaN before any load was known. */
  averageLoad: number;
  /** `load >= highThreshold`. */
  high: boolean;
  /** `load >= criticalThreshold`. */
  critical: boolean;
  /** Throttling state after this sample. */
  throttling: boolean;
  timestamp: number;
}

/** Counters of a {@link CpuMonitor}. */
export interface CpuMonitorStats {
  samples: number;
  /** Times the load crossed up to `highThreshold`. */
  highWarnings: number;
  /** Times the load crossed up to `criticalThreshold`. */
  criticalWarnings: number;
  /** Times throttling switched on. */
  throttleEpisodes: number;
  /** Throttle waits performed. */
  throttleWaits: number;
  /** Milliseconds spent in throttle waits. */
  throttledMs: number;
  /** Highest load sampled. */
  peakLoad: number;
  /** Mean of the last `averageWindow` known loads; NaN before any load was known. */
  averageLoad: number;
  /** Calls answered with the previous sample because of `minSampleIntervalMs` (not in `samples`). */
  pacedCalls: number;
}

/** Events of {@link CpuMonitor}. */
export type CpuMonitorEvents = {
  high: [CpuSample];
  critical: [CpuSample];
  throttle: [CpuSample];
  unthrottle: [CpuSample];
};

const RESOLUTION_MS = 10;

/**
 * CPU load with high/critical thresholds and a throttle with hysteresis.
 *
 * ```ts
 * const cpu = new CpuMonitor({ highThreshold: 0.85, criticalThreshold: 0.95, throttleDelayMs: 50 });
 * for await (const batch of batches) {
 *   await cpu.throttle(); // waits 50 ms while throttling, without blocking the event loop
 *   await work(batch);
 * }
 * ```
 */
/** Gives back the sampler hold of a monitor collected without close(). */
const samplerHolds = new FinalizationRegistry<() => void>((release) => release());

export class CpuMonitor extends EventEmitter<CpuMonitorEvents> {
  /** Gives back this monitor's hold on the sampler; null once closed (or with an injected source). */
  #release: (() => void) | null = null;
  readonly #high: number;
  readonly #critical: number;
  readonly #autoThrottle: boolean;
  readonly #delay: number;
  readonly #intervalMs: number;
  readonly #basis: 'auto' | 'system' | 'quota';
  readonly #source: CpuSource | null;
  readonly #clock: Clock;
  readonly #quota: number | null;
  readonly #tracker: CpuUsageTracker | null;
  readonly #waitCell = new Int32Array(new SharedArrayBuffer(4));

  #histogram: LoopDelayWindow | null = null;
  #elu: EventLoopUtilization | null = null;
  #elAt = NaN;
  #lag: number | null = null;
  #lagMax: number | null = null;
  #utilization: number | null = null;

  #throttling = false;
  #inHigh = false;
  #inCritical = false;

  #samples = 0;
  #highWarnings = 0;
  #criticalWarnings = 0;
  #episodes = 0;
  #waits = 0;
  #throttledMs = 0;
  #peak = 0;
  #paced = 0;
  readonly #pace: number;
  /** The last known loads, a ring of `averageWindow` entries. */
  readonly #window: Float64Array;
  #windowNext = 0;
  #windowCount = 0;
  #windowSum = 0;
  #last: CpuSample | null = null;

  constructor(options?: CpuMonitorOptions) {
    super();
    const o = optionsObject<CpuMonitorOptions>(options, 'options');
    const high = o.highThreshold === undefined ? 0.85 : validateFraction(o.highThreshold, 'options.highThreshold');
    const critical =
      o.criticalThreshold === undefined ? 0.95 : validateFraction(o.criticalThreshold, 'options.criticalThreshold');
    if (high > critical) {
      throw new OutOfRangeError('options.highThreshold', `<= options.criticalThreshold (${critical})`, high);
    }
    const autoThrottle = o.autoThrottle === undefined ? true : validateBoolean(o.autoThrottle, 'options.autoThrottle');
    const delay = o.throttleDelayMs === undefined ? 50 : validateNumber(o.throttleDelayMs, 'options.throttleDelayMs', 0, 60_000);
    const interval =
      o.sampleIntervalMs === undefined ? 1000 : validateNumber(o.sampleIntervalMs, 'options.sampleIntervalMs', 1, 3_600_000);
    const basis = o.basis === undefined ? 'auto' : validateOneOf(o.basis, 'options.basis', ['auto', 'system', 'quota'] as const);
    const eventLoop = o.eventLoop === undefined ? true : validateBoolean(o.eventLoop, 'options.eventLoop');
    const source = o.source === undefined ? null : validateSource<CpuSource>(o.source, 'options.source', ['system']);
    if (source !== null) {
      for (const m of ['process', 'quota', 'container', 'eventLoop', 'cpuCount'] as const) {
        if (source[m] !== undefined) validateSource(source, 'options.source', [m]);
      }
    }
    const clock = optionalClock(o.clock, 'options.clock');
    const pace =
      o.minSampleIntervalMs === undefined ? 0 : validateNumber(o.minSampleIntervalMs, 'options.minSampleIntervalMs', 0, 3_600_000);
    const windowSize = o.averageWindow === undefined ? 10 : validateInteger(o.averageWindow, 'options.averageWindow', 1, 10_000);

    this.#pace = pace;
    this.#window = new Float64Array(windowSize);
    this.#high = high;
    this.#critical = critical;
    this.#autoThrottle = autoThrottle;
    this.#delay = delay;
    this.#intervalMs = interval;
    this.#basis = basis;
    this.#source = source;
    this.#clock = clock ?? monotonicClock;
    this.#tracker = source === null && basis === 'auto' ? sharedCpuTracker() : null;
    if (source === null) {
      // The monitor's own hold on the sampler: another component's
      // stopSampler() cannot stop it; close() (or collection) gives it back.
      this.#release = acquireSampler();
      samplerHolds.register(this, this.#release, this);
      let quota: number | null = null;
      try {
        quota = readCgroup().cpuQuota;
      } catch {
        quota = null;
      }
      this.#quota = quota;
      if (eventLoop) {
        this.#histogram = new LoopDelayWindow(RESOLUTION_MS);
        this.#elu = performance.eventLoopUtilization();
        this.#elAt = this.#clock();
      }
    } else {
      this.#quota = null;
    }
  }

  /** Thresholds and throttle settings in force. */
  get thresholds(): { high: number; critical: number; autoThrottle: boolean; throttleDelayMs: number } {
    return { high: this.#high, critical: this.#critical, autoThrottle: this.#autoThrottle, throttleDelayMs: this.#delay };
  }

  /** Number of recent known loads `averageLoad` is the mean of. */
  get averageWindow(): number {
    return this.#window.length;
  }

  /** Whether throttling is on (as of the last sample). */
  get throttling(): boolean {
    return this.#throttling;
  }

  /** Reads the figures, updates the throttle state and events, and returns them. */
  sample(): CpuSample {
    const now = this.#clock();
    const last = this.#last;
    if (last !== null && this.#pace > 0 && now - last.timestamp < this.#pace) {
      this.#paced++;
      return last;
    }
    let system: number;
    let cores: number;
    let count: number;
    let quota: number | null;
    let container: number | null = null;
    let allowed: number;
    const src = this.#source;
    if (src === null) {
      if (!sharedMemory) refreshSnapshot();
      system = sane(VIEW[SnapshotField.sysLoad]);
      count = VIEW[SnapshotField.cpuCount]! || cpuCount();
      quota = this.#quota;
      this.#refreshEventLoop(now);
      if (this.#tracker !== null) {
        const r = this.#tracker.read();
        cores = r.processCores;
        allowed = r.cpus;
        if (r.basis === 'container') container = r.cores;
      } else {
        cores = sane(VIEW[SnapshotField.processLoad]);
        if (Number.isNaN(cores)) {
          // Before the sampler's second sample: the average since the process started.
          const u = process.cpuUsage();
          cores = (u.user + u.system) / 1000 / Math.max(1, process.uptime() * 1000);
        }
        allowed = quota ?? count;
      }
    } else {
      system = sane(src.system());
      cores = src.process ? sane(src.process()) : NaN;
      count = src.cpuCount ? sane(src.cpuCount()) : cpuCount();
      const q = src.quota ? src.quota() : null;
      quota = q === null ? null : sane(q);
      const c = src.container ? src.container() : null;
      container = c === null ? null : sane(c);
      allowed = quota !== null && quota > 0 ? Math.min(quota, count > 0 ? count : quota) : count;
      if (src.eventLoop) {
        const el = src.eventLoop();
        this.#lag = sane(el.lagMs);
        this.#lagMax = el.lagMaxMs === undefined ? this.#lag : sane(el.lagMaxMs);
        this.#utilization = sane(el.utilization);
      }
    }
    const quotaLoad = quota !== null && quota > 0 ? Math.min(1, cores / quota) : null;
    let basis: CpuSample['basis'];
    let load: number;
    if (this.#basis === 'system') {
      basis = 'system';
      load = system;
    } else if (this.#basis === 'quota') {
      basis = 'quota';
      load = quotaLoad ?? NaN;
    } else if (src !== null && !src.process && !src.container) {
      // A custom source that gives only the host's load is judged by it.
      basis = 'system';
      load = system;
    } else if (container !== null && !Number.isNaN(container)) {
      basis = 'container';
      load = allowed > 0 ? Math.min(1, container / allowed) : NaN;
    } else {
      // Without a process figure the rule cannot judge: unknown, not the host's load.
      basis = 'process';
      load = allowed > 0 && cores >= 0 ? Math.min(1, cores / allowed) : NaN;
    }
    return this.#update(load, basis, system, cores, count, allowed, quota, quotaLoad, now);
  }

  /**
   * Samples; throws {@link CpuOverloadError} (`ERR_CPU_OVERLOAD`) when the
   * load is at or above the critical threshold.
   */
  assert(): CpuSample {
    const s = this.sample();
    if (s.load >= this.#critical) throw new CpuOverloadError(s.load, this.#critical);
    return s;
  }

  /**
   * Samples and, while throttling (and `autoThrottle` is on), waits
   * `throttleDelayMs` on a timer: the event loop keeps running. Resolves to
   * true if it waited.
   */
  async throttle(): Promise<boolean> {
    if (!this.#shouldWait()) return false;
    const t0 = performance.now();
    await sleep(this.#delay);
    this.#throttledMs += performance.now() - t0;
    return true;
  }

  /**
   * The synchronous variant of {@link CpuMonitor.throttle}, for worker
   * threads that run synchronous loops: sleeps the thread with
   * `Atomics.wait` on a private cell. It blocks this thread's event loop
   * for the delay, so do not use it on the main thread of a server.
   */
  throttleSync(): boolean {
    if (!this.#shouldWait()) return false;
    const t0 = performance.now();
    Atomics.wait(this.#waitCell, 0, 0, this.#delay);
    this.#throttledMs += performance.now() - t0;
    return true;
  }

  /** Counters since construction or {@link CpuMonitor.reset}. */
  stats(): CpuMonitorStats {
    return {
      samples: this.#samples,
      highWarnings: this.#highWarnings,
      criticalWarnings: this.#criticalWarnings,
      throttleEpisodes: this.#episodes,
      throttleWaits: this.#waits,
      throttledMs: this.#throttledMs,
      peakLoad: this.#peak,
      averageLoad: this.#average(),
      pacedCalls: this.#paced,
    };
  }

  /** Clears the counters and the throttle state. */
  reset(): void {
    this.#samples = 0;
    this.#highWarnings = 0;
    this.#criticalWarnings = 0;
    this.#episodes = 0;
    this.#waits = 0;
    this.#throttledMs = 0;
    this.#peak = 0;
    this.#paced = 0;
    this.#windowNext = 0;
    this.#windowCount = 0;
    this.#windowSum = 0;
    this.#last = null;
    this.#throttling = false;
    this.#inHigh = false;
    this.#inCritical = false;
  }

  /**
   * Stops the event-loop delay histogram and gives back the monitor's hold
   * on the sampler thread (which stops once no hold is left in the process).
   * Idempotent. Sampling still answers afterwards, without event-loop
   * figures, from the snapshot while anything else keeps the sampler
   * running; with the sampler stopped, the load is unknown (NaN).
   */
  close(): void {
    if (this.#histogram !== null) {
      this.#histogram.close();
      this.#histogram = null;
    }
    samplerHolds.unregister(this);
    const release = this.#release;
    this.#release = null;
    release?.();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ---- internals ------------------------------------------------------------------

  #average(): number {
    const n = this.#windowCount;
    return n === 0 ? NaN : Math.min(1, Math.max(0, this.#windowSum / n));
  }

  #shouldWait(): boolean {
    this.sample();
    if (!this.#throttling || !this.#autoThrottle || this.#delay === 0) return false;
    this.#waits++;
    return true;
  }

  #refreshEventLoop(now: number): void {
    const h = this.#histogram;
    if (h === null || this.#elu === null) return;
    if (now - this.#elAt < this.#intervalMs) return;
    const elu = performance.eventLoopUtilization();
    this.#utilization = performance.eventLoopUtilization(elu, this.#elu).utilization;
    this.#elu = elu;
    this.#elAt = now;
    // The histogram records the interval between its timer's runs, which
    // includes the resolution itself; lag is what lies beyond it.
    if (h.count > 0) {
      this.#lag = Math.max(0, h.mean / 1e6 - RESOLUTION_MS);
      this.#lagMax = Math.max(0, h.max / 1e6 - RESOLUTION_MS);
      h.reset();
    }
  }

  #update(
    load: number,
    basis: CpuSample['basis'],
    system: number,
    cores: number,
    count: number,
    allowed: number,
    quota: number | null,
    quotaLoad: number | null,
    now: number,
  ): CpuSample {
    this.#samples++;
    if (load > this.#peak) this.#peak = load;
    if (load >= 0) {
      // Unknown loads (NaN) stay out of the average.
      const w = this.#window;
      if (this.#windowCount === w.length) this.#windowSum -= w[this.#windowNext]!;
      else this.#windowCount++;
      w[this.#windowNext] = load;
      this.#windowSum += load;
      this.#windowNext = (this.#windowNext + 1) % w.length;
      if (this.#windowNext === 0) {
        // Once per turn of the ring the running sum is summed afresh, so rounding cannot drift.
        let sum = 0;
        for (let i = 0; i < w.length; i++) sum += w[i]!;
        this.#windowSum = sum;
      }
    }
    let fireHigh = false;
    let fireCritical = false;
    let fireThrottle = false;
    let fireUnthrottle = false;
    // Unknown load (NaN) changes no state.
    if (load >= 0) {
      const high = load >= this.#high;
      const critical = load >= this.#critical;
      fireHigh = high && !this.#inHigh;
      fireCritical = critical && !this.#inCritical;
      this.#inHigh = high;
      this.#inCritical = critical;
      if (!this.#throttling && critical) {
        this.#throttling = true;
        fireThrottle = true;
      } else if (this.#throttling && load < this.#high) {
        this.#throttling = false;
        fireUnthrottle = true;
      }
    }
    if (fireHigh) this.#highWarnings++;
    if (fireCritical) this.#criticalWarnings++;
    if (fireThrottle) this.#episodes++;
    const s: CpuSample = {
      load,
      basis,
      cpus: allowed,
      system,
      process: allowed > 0 ? Math.min(1, cores / allowed) : NaN,
      processCores: cores,
      cpuCount: count,
      quota,
      quotaLoad,
      eventLoopLagMs: this.#lag,
      eventLoopLagMaxMs: this.#lagMax,
      eventLoopUtilization: this.#utilization,
      averageLoad: this.#average(),
      high: load >= this.#high,
      critical: load >= this.#critical,
      throttling: this.#throttling,
      timestamp: now,
    };
    this.#last = s;
    if (fireHigh) this.emit('high', s);
    if (fireCritical) this.emit('critical', s);
    if (fireThrottle) this.emit('throttle', s);
    if (fireUnthrottle) this.emit('unthrottle', s);
    return s;
  }
}
