/**
 * ResourceGuard: memory, disk and CPU guards behind one object, configured
 * by options, by a builder, or by environment variables.
 *
 * `checkAll()` checks memory, then disk, then CPU, and throws the first
 * failure. `stats()` returns the figures a degradation policy needs (memory
 * usage as a fraction of its limit, disk bytes available or null when
 * unknown, CPU load, event-loop lag) and emits them as a `stats` event; the
 * guards' own events are re-emitted with a prefix (`memory:soft`,
 * `disk:hard`, `cpu:throttle`, …).
 *
 * Construction validates every option before it takes anything (the
 * sampler, an event-loop monitor, a directory): a rejected `new
 * ResourceGuard(…)` or builder step leaves nothing behind and changes
 * nothing. Nothing thrown inside its `watch()` timer reaches the event loop:
 * it is emitted as `error`, or, with no `error` listener, reported once as a
 * process warning (code `RESOURCE_GUARD_WATCH_ERROR`).
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import {
  DegradationController,
  type DegradationChange,
  type DegradationLevel,
  type DegradationOptions,
  type DegradationResult,
} from '../degradation';
import { DegradedError, InvalidArgTypeError, OutOfRangeError } from '../errors';
import { readPsi } from '../sampler';
import { parseSize, validateNumber, validateObject, validateString } from '../validate';
import { CpuMonitor, type CpuMonitorOptions, type CpuSample } from './cpu';
import { DiskSpaceGuard, guardSpec, type DiskSpaceGuardOptions, type DiskSpaceStatus } from './disk';
import { GuardClosedError, MiB, envBoolean, envFraction, envInteger, envSize, optionsObject } from './internal';
import { MemoryGuard, type MemoryGuardOptions, type MemoryGuardStatus } from './memory';

/** Options of {@link ResourceGuard}. */
export interface ResourceGuardOptions {
  /**
   * Memory guard: options, an existing guard, or false for none.
   * @default true (a MemoryGuard with its defaults)
   */
  memory?: MemoryGuardOptions | MemoryGuard | boolean;
  /**
   * Disk guard: options, an existing guard, the output directory, or false for none.
   * @default false
   */
  disk?: DiskSpaceGuardOptions | DiskSpaceGuard | string | boolean;
  /**
   * CPU monitor: options, an existing monitor, or a boolean.
   * @default false
   */
  cpu?: CpuMonitorOptions | CpuMonitor | boolean;
  /**
   * The degradation controller the guard drives: options, an existing
   * controller, or false for none. `stats()` and `checkAll()` feed it;
   * `checkAll()` throws `DegradedError` at `emergency`.
   * @default true (a DegradationController with the default thresholds)
   */
  degradation?: DegradationOptions | DegradationController | boolean;
}

/** What {@link ResourceGuard.checkAll} returns when every check passes. */
export interface ResourceGuardStatus {
  memory: MemoryGuardStatus | null;
  disk: DiskSpaceStatus | null;
  cpu: CpuSample | null;
}

/**
 * Figures from all guards. A figure that is not watched, or that could not
 * be read, is null — never a made-up 0.
 */
export interface ResourceGuardStats {
  /**
   * Memory used as a fraction of its hard limit: the larger of RSS / hardLimit
   * and heap used / heapHardLimit (1 = the guard trips).
   */
  memoryUsage: number | null;
  /** `memoryUsage × 100`. */
  memoryUsagePercent: number | null;
  /** Resident set size, bytes. */
  rss: number | null;
  /** RSS hard limit, bytes. */
  memoryLimit: number | null;
  /** V8 heap in use, bytes. */
  heapUsed: number | null;
  /** V8 heap hard limit, bytes. */
  heapLimit: number | null;
  /** The guarded output directory. */
  diskPath: string | null;
  /** Free bytes for this process there, or null when unknown or not watched. */
  diskAvailable: number | null;
  /** `diskAvailable` in whole MiB. */
  diskAvailableMB: number | null;
  /** CPU load the thresholds apply to, 0..1. */
  cpuLoad: number | null;
  /** Whether the CPU monitor is throttling. */
  throttling: boolean;
  /** Mean event-loop delay beyond the timer resolution, ms. */
  eventLoopLagMs: number | null;
  /** Fraction of time the event loop was busy. */
  eventLoopUtilization: number | null;
  /** Memory pressure stall, `some avg10` of /proc/pressure/memory (0..100), or null where there is none. */
  memoryPressure: number | null;
  /** Wall-clock time of the figures, ms since the epoch. */
  timestamp: number;
}

/**
 * The figures a degradation controller takes, under its input names:
 * `controller.update(guard.degradationInputs())`.
 */
export interface GuardDegradationInputs {
  /** {@link ResourceGuardStats.memoryUsage}. */
  memory: number | null;
  diskAvailable: number | null;
  /** {@link ResourceGuardStats.cpuLoad}. */
  cpu: number | null;
  eventLoopLagMs: number | null;
  /** {@link ResourceGuardStats.memoryPressure}. */
  psi: number | null;
}

/** Events of {@link ResourceGuard}. */
export type ResourceGuardEvents = {
  'memory:soft': [MemoryGuardStatus];
  'memory:hard': [MemoryGuardStatus];
  'memory:growth': [MemoryGuardStatus];
  'disk:soft': [DiskSpaceStatus];
  'disk:hard': [DiskSpaceStatus];
  'disk:unknown': [DiskSpaceStatus];
  'cpu:high': [CpuSample];
  'cpu:critical': [CpuSample];
  'cpu:throttle': [CpuSample];
  'cpu:unthrottle': [CpuSample];
  stats: [ResourceGuardStats];
  /** The degradation level changed (forwarded from the controller's `change`). */
  level: [DegradationChange];
  /**
   * Something thrown inside the `watch()` timer: a failed reading, or a
   * listener of `stats` or of a forwarded event that threw. Without a
   * listener for it, the first such error of the guard is reported as a
   * process warning (code `RESOURCE_GUARD_WATCH_ERROR`) and later ones are
   * dropped; the timer keeps running either way.
   */
  error: [unknown];
};

type Env = Record<string, string | undefined>;
type Detach = () => void;

/**
 * Memory, disk and CPU guards in one.
 *
 * Failure rule: each guard keeps its own (the memory and disk guards fail
 * closed: an unknown figure makes `ok()` false and `checkAll()` throw; CPU
 * load that cannot be read changes no state). `stats()` reports an unknown
 * figure as null and never throws for one. A closed ResourceGuard throws
 * {@link GuardClosedError} (`ERR_GUARD_CLOSED`) rather than answer.
 *
 * ```ts
 * const guard = new ResourceGuard()
 *   .withMemoryLimit('2GiB')
 *   .withOutputPath('./output', { minFree: '500MiB' })
 *   .withCpuMonitoring();
 * guard.checkAll();               // throws MemoryLimitError, DiskSpaceError, … : the first failure
 * const s = guard.stats();        // { memoryUsage: 0.31, diskAvailable: …, cpuLoad: 0.2, … }
 * ```
 */
export class ResourceGuard extends EventEmitter<ResourceGuardEvents> {
  #memory: MemoryGuard | null = null;
  #disk: DiskSpaceGuard | null = null;
  #cpu: CpuMonitor | null = null;
  #detachMemory: Detach | null = null;
  #detachDisk: Detach | null = null;
  #detachCpu: Detach | null = null;
  #ownsCpu = false;
  #ownsDisk = false;
  #ownsMemory = false;
  #timer: NodeJS.Timeout | null = null;
  #controller: DegradationController | null = null;
  #detachController: Detach | null = null;
  #lastChange: DegradationChange | null = null;
  // What the builder steps named so far, for guards this object made (null
  // for a guard the caller passed in, or none): a later step merges over it.
  #memorySpec: MemoryGuardOptions | null = null;
  #cpuSpec: CpuMonitorOptions | null = null;
  #degradationSpec: DegradationOptions | null = null;
  #closed = false;
  #warned = false;

  constructor(options?: ResourceGuardOptions) {
    super();
    const o = optionsObject<ResourceGuardOptions>(options, 'options');
    // Everything is validated before anything is taken. The controller and
    // the disk guard take nothing when made (the disk guard opens its
    // directory at its first reading); the CPU options are checked by a dry
    // run; the memory guard starts the sampler only once its own options
    // passed; and the CPU monitor, made last, can no longer fail.
    const degradation = o.degradation === undefined ? true : o.degradation;
    const controller = makeController(degradation, 'options.degradation');
    const disk = o.disk === undefined || o.disk === false ? null : makeDisk(o.disk, null, 'options.disk');
    const cpuSpec = o.cpu === undefined || o.cpu === false ? null : cpuOptions(o.cpu === true ? {} : o.cpu, null, 'options.cpu');
    const memorySpec = o.memory === undefined || o.memory === true ? {} : memoryOptions(o.memory, null, 'options.memory');
    const memory = memorySpec === null ? null : memorySpec instanceof MemoryGuard ? memorySpec : new MemoryGuard(memorySpec);
    const cpu = cpuSpec === null ? null : cpuSpec instanceof CpuMonitor ? cpuSpec : new CpuMonitor(cpuSpec);
    this.#setController(controller, isOptions(degradation) ? { ...(degradation as DegradationOptions) } : degradation === true ? {} : null);
    this.#setMemory(memory, memorySpec instanceof MemoryGuard ? null : memorySpec);
    this.#setDisk(disk, disk !== null && !(o.disk instanceof DiskSpaceGuard));
    this.#setCpu(cpu, cpuSpec instanceof CpuMonitor ? null : cpuSpec);
  }

  /**
   * Options from environment variables (see docs/guards.md for the list).
   * Sizes are written with a unit ('512MiB', '2Gi', '500MB'); the legacy
   * `*_MB` names still work, a bare number there counting MiB. Throws on a
   * malformed value, naming the variable.
   */
  static optionsFromEnv(env: Env = process.env): ResourceGuardOptions {
    const e = validateObject<Env>(env, 'env');
    const memoryOn = envBoolean(e, 'RESOURCE_GUARD_MEMORY');
    const memory: MemoryGuardOptions = {};
    const hard = envSize(e, 'RESOURCE_GUARD_MEMORY_LIMIT');
    const soft = envSize(e, 'RESOURCE_GUARD_MEMORY_SOFT_LIMIT');
    const growth = envSize(e, 'RESOURCE_GUARD_MEMORY_GROWTH');
    if (hard !== undefined) memory.hardLimit = hard;
    if (soft !== undefined) memory.softLimit = soft;
    if (growth !== undefined) memory.growthRateThreshold = growth;
    const memoryInterval = envInteger(e, 'RESOURCE_GUARD_MEMORY_CHECK_INTERVAL', 1, 2 ** 31);
    const aggressive = envBoolean(e, 'RESOURCE_GUARD_AGGRESSIVE_CHECKS');
    if (memoryInterval !== undefined) memory.checkInterval = memoryInterval;
    if (aggressive !== undefined) memory.aggressive = aggressive;

    const disk: DiskSpaceGuardOptions = {};
    const path = e.RESOURCE_GUARD_OUTPUT_PATH;
    const minFree = envSize(e, 'RESOURCE_GUARD_DISK_MIN_FREE');
    const softFree = envSize(e, 'RESOURCE_GUARD_DISK_SOFT_FREE');
    const reserve = envSize(e, 'RESOURCE_GUARD_DISK_RESERVE');
    const interval = envInteger(e, 'RESOURCE_GUARD_DISK_CHECK_INTERVAL', 1, 2 ** 31);
    if (path !== undefined && path.trim() !== '') disk.path = path;
    if (minFree !== undefined) disk.minFree = minFree;
    if (softFree !== undefined) disk.softFree = softFree;
    if (reserve !== undefined) disk.reserve = reserve;
    if (interval !== undefined) disk.checkInterval = interval;
    // Applies to a disk guard that another variable turned on; alone it turns none on.
    if (aggressive !== undefined && Object.keys(disk).length > 0) disk.aggressive = aggressive;

    const cpuOn = envBoolean(e, 'RESOURCE_GUARD_CPU');
    const cpu: CpuMonitorOptions = {};
    const high = envFraction(e, 'RESOURCE_GUARD_CPU_HIGH');
    const critical = envFraction(e, 'RESOURCE_GUARD_CPU_CRITICAL');
    const delay = envInteger(e, 'RESOURCE_GUARD_CPU_THROTTLE_MS');
    const auto = envBoolean(e, 'RESOURCE_GUARD_CPU_AUTO_THROTTLE');
    if (high !== undefined) cpu.highThreshold = high;
    if (critical !== undefined) cpu.criticalThreshold = critical;
    if (delay !== undefined) cpu.throttleDelayMs = delay;
    if (auto !== undefined) cpu.autoThrottle = auto;

    const out: ResourceGuardOptions = {};
    if (memoryOn === false) out.memory = false;
    else if (Object.keys(memory).length > 0) out.memory = memory;
    else if (memoryOn === true) out.memory = true;
    if (Object.keys(disk).length > 0) out.disk = disk;
    if (cpuOn === false) out.cpu = false;
    else if (Object.keys(cpu).length > 0) out.cpu = cpu;
    else if (cpuOn === true) out.cpu = true;
    return out;
  }

  /**
   * A guard from `defaults` overridden by environment variables: an
   * operator's setting wins over the one in code.
   */
  static fromEnv(env: Env = process.env, defaults?: ResourceGuardOptions): ResourceGuard {
    const base = optionsObject<ResourceGuardOptions>(defaults, 'defaults');
    const fromEnv = ResourceGuard.optionsFromEnv(env);
    return new ResourceGuard({
      ...base, // what no variable sets (degradation) stays as given
      memory: merge(base.memory, fromEnv.memory),
      disk: merge(base.disk, fromEnv.disk),
      cpu: merge(base.cpu, fromEnv.cpu),
    });
  }

  /** The memory guard, or null. */
  get memory(): MemoryGuard | null {
    return this.#memory;
  }

  /** The disk guard, or null. */
  get disk(): DiskSpaceGuard | null {
    return this.#disk;
  }

  /** The CPU monitor, or null. */
  get cpu(): CpuMonitor | null {
    return this.#cpu;
  }

  /** The degradation controller this guard drives, or null. */
  get degradation(): DegradationController | null {
    return this.#controller;
  }

  /** The current degradation level (`normal` without a controller). */
  get level(): DegradationLevel {
    return this.#controller === null ? 'normal' : this.#controller.level;
  }

  /**
   * Reads every guard with {@link ResourceGuard.stats}, which feeds the
   * figures to the controller once, and returns the resulting level.
   */
  updateLevel(): DegradationResult {
    this.#assertOpen();
    const before = this.level;
    this.stats(); // feeds the controller once
    const level = this.level;
    return { level, changed: level !== before };
  }

  // ---- builder ------------------------------------------------------------------
  //
  // Steps compose: a step changes what it names and keeps the rest. Options
  // given to a step are merged over what earlier steps named for that guard
  // (for a guard the caller passed in: over the settings it reports). A step
  // that passes a guard, a controller or `false` replaces the whole of it;
  // `true` keeps the one there is, or makes one with defaults. A rejected
  // step changes nothing and takes nothing.

  /**
   * The degradation controller: options (merged over earlier ones), a
   * controller, true (keep the current one, or make a default one), or
   * false for none.
   */
  withDegradation(degradation: DegradationOptions | DegradationController | boolean = true): this {
    this.#assertOpen();
    if (degradation === true && this.#controller !== null) return this;
    const spec = isOptions(degradation) ? mergeDegradation(this.#degradationSpec, degradation as DegradationOptions) : null;
    const controller = makeController(spec ?? degradation, 'degradation');
    this.#setController(controller, spec ?? (degradation === true ? {} : null));
    return this;
  }

  /**
   * Sets the memory hard limit (and optionally the soft one), creating a
   * memory guard if there is none. On a bad argument nothing changes; a
   * hard limit of 0 is refused (`ERR_OUT_OF_RANGE`).
   */
  withMemoryLimit(hardLimit: number | string, softLimit?: number | string): this {
    this.#assertOpen();
    // The hard limit is required here: a missing one is refused, not taken
    // as "keep the current limit".
    parseSize(hardLimit, 'hardLimit');
    if (softLimit !== undefined) parseSize(softLimit, 'softLimit');
    const limits: { hardLimit: number | string; softLimit?: number | string } = { hardLimit };
    if (softLimit !== undefined) limits.softLimit = softLimit;
    refuseZeroLimits(limits, 'hardLimit');
    if (this.#memory === null) {
      const spec = { ...this.#memorySpec, ...limits };
      this.#setMemory(new MemoryGuard(spec), spec);
    } else {
      this.#memory.setLimits(limits);
      if (this.#memorySpec !== null) this.#memorySpec = { ...this.#memorySpec, ...limits };
    }
    return this;
  }

  /**
   * The memory guard: options (merged over earlier ones), a guard, true
   * (keep the current one, or make a default one), or false for none.
   */
  withMemory(memory: MemoryGuardOptions | MemoryGuard | boolean): this {
    this.#assertOpen();
    if (memory === true && this.#memory !== null) return this;
    const spec = memoryOptions(memory === true ? {} : memory, this.#current('memory'), 'memory');
    const guard = spec === null ? null : spec instanceof MemoryGuard ? spec : new MemoryGuard(spec);
    this.#setMemory(guard, spec instanceof MemoryGuard ? null : spec);
    return this;
  }

  /**
   * Guards free space in `path`, keeping the disk settings of earlier steps
   * (`options` are merged over them).
   */
  withOutputPath(path: string, options?: Omit<DiskSpaceGuardOptions, 'path'>): this {
    this.#assertOpen();
    validateString(path, 'path');
    const o = optionsObject<DiskSpaceGuardOptions>(options, 'options');
    this.#setDisk(makeDisk({ ...o, path }, this.#disk, 'options'), true);
    return this;
  }

  /**
   * The disk guard: options or a path (merged over earlier steps), a guard,
   * true (keep the current one, or watch the current directory), or false
   * for none.
   */
  withDisk(disk: DiskSpaceGuardOptions | DiskSpaceGuard | string | boolean): this {
    this.#assertOpen();
    if (disk === true && this.#disk !== null) return this;
    const guard = disk === false ? null : makeDisk(disk, this.#disk, 'disk');
    this.#setDisk(guard, guard !== null && !(disk instanceof DiskSpaceGuard));
    return this;
  }

  /**
   * CPU monitoring: options (merged over earlier ones), a monitor, true
   * (keep the current one, or make one with defaults), or false for none.
   */
  withCpuMonitoring(cpu: CpuMonitorOptions | CpuMonitor | boolean = true): this {
    this.#assertOpen();
    if (cpu === true && this.#cpu !== null) return this;
    const spec = cpu === false ? null : cpuOptions(cpu === true ? {} : cpu, this.#current('cpu'), 'cpu');
    const monitor = spec === null ? null : spec instanceof CpuMonitor ? spec : new CpuMonitor(spec);
    this.#setCpu(monitor, spec instanceof CpuMonitor ? null : spec);
    return this;
  }

  // ---- checks -----------------------------------------------------------------

  /**
   * The hot check: the memory guard's and the disk guard's `ok()` (each
   * false when its figure is unknown: both fail closed), and false at the
   * `emergency` degradation level, as {@link ResourceGuard.checkAll} would
   * throw. CPU load has no hot check; {@link ResourceGuard.checkAll} samples
   * it. Throws {@link GuardClosedError} after close().
   */
  ok(): boolean {
    if (this.#closed) throw new GuardClosedError('ResourceGuard');
    const m = this.#memory;
    const d = this.#disk;
    const c = this.#controller;
    return (m === null || m.ok()) && (d === null || d.ok()) && (c === null || c.levelIndex < 3);
  }

  /**
   * Counts one operation of the caller's loop on the memory guard
   * ({@link MemoryGuard.recordOperation}) and, as a write of `bytes` (default
   * 0), on the disk guard ({@link DiskSpaceGuard.recordWrite}); each reads
   * and asserts on its own `checkInterval`. Both count the operation before
   * either throws; as in {@link ResourceGuard.checkAll}, a memory failure is
   * thrown before a disk failure. A bad byte count is
   * refused before anything is counted.
   */
  recordOperation(bytes: number | string = 0): void {
    const n = parseSize(bytes, 'bytes');
    this.#assertOpen();
    const failures: unknown[] = [];
    try {
      this.#memory?.recordOperation();
    } catch (err) {
      failures.push(err);
    }
    try {
      this.#disk?.recordWrite(n);
    } catch (err) {
      failures.push(err);
    }
    if (failures.length > 0) throw failures[0];
  }

  /**
   * Checks memory, then disk, then CPU, and throws the first failure:
   * `MemoryLimitError`, `DiskSpaceError` / `DiskSpaceUnknownError`,
   * `CpuOverloadError`. Returns every status when all pass.
   */
  checkAll(): ResourceGuardStatus {
    this.#assertOpen();
    const memory = this.#memory === null ? null : this.#memory.assert();
    const disk = this.#disk === null ? null : this.#disk.assert();
    const cpu = this.#cpu === null ? null : this.#cpu.assert();
    const controller = this.#controller;
    if (controller !== null) {
      controller.update({
        memory: memoryFraction(memory),
        diskAvailable: disk === null ? null : disk.available,
        cpu: cpu === null ? null : known(cpu.load),
        eventLoopLagMs: cpu === null ? null : known(cpu.eventLoopLagMs),
      });
      if (controller.level === 'emergency') {
        const cause = this.#lastChange === null ? 'forced or inherited' : `driven by ${this.#lastChange.input}`;
        throw new DegradedError('emergency', `Refused: resources are at the emergency level (${cause})`);
      }
    }
    return { memory, disk, cpu };
  }

  /**
   * Reads every guard (without throwing for breaches or unreadable figures)
   * and returns the figures; also emits them as a `stats` event.
   */
  stats(): ResourceGuardStats {
    this.#assertOpen();
    let memoryUsage: number | null = null;
    let rss: number | null = null;
    let memoryLimit: number | null = null;
    let heapUsed: number | null = null;
    let heapLimit: number | null = null;
    if (this.#memory !== null) {
      let m: MemoryGuardStatus | null = null;
      try {
        m = this.#memory.check();
      } catch {
        m = null;
      }
      if (m !== null) {
        rss = Number.isNaN(m.current) ? null : m.current;
        memoryLimit = m.hardLimit;
        if (m.heap !== null) {
          heapUsed = Number.isNaN(m.heap.used) ? null : m.heap.used;
          heapLimit = m.heap.hardLimit;
        }
        memoryUsage = memoryFraction(m);
      }
    }
    let diskPath: string | null = null;
    let diskAvailable: number | null = null;
    if (this.#disk !== null) {
      const d = this.#disk.check();
      diskPath = d.path;
      diskAvailable = d.available;
    }
    let cpuLoad: number | null = null;
    let lag: number | null = null;
    let elu: number | null = null;
    let throttling = false;
    if (this.#cpu !== null) {
      const c = this.#cpu.sample();
      cpuLoad = known(c.load);
      lag = known(c.eventLoopLagMs);
      elu = known(c.eventLoopUtilization);
      throttling = c.throttling;
    }
    const stats: ResourceGuardStats = {
      memoryUsage,
      memoryUsagePercent: memoryUsage === null ? null : memoryUsage * 100,
      rss,
      memoryLimit,
      heapUsed,
      heapLimit,
      diskPath,
      diskAvailable,
      diskAvailableMB: diskAvailable === null ? null : Math.floor(diskAvailable / MiB),
      cpuLoad,
      throttling,
      eventLoopLagMs: lag,
      eventLoopUtilization: elu,
      memoryPressure: memoryPressure(),
      timestamp: Date.now(),
    };
    this.emit('stats', stats);
    this.#controller?.update({
      memory: stats.memoryUsage,
      diskAvailable: stats.diskAvailable,
      cpu: stats.cpuLoad,
      eventLoopLagMs: stats.eventLoopLagMs,
      psi: stats.memoryPressure,
    });
    return stats;
  }

  /**
   * The inputs of a degradation controller, from `stats` or from a fresh
   * {@link ResourceGuard.stats} call (which also emits `stats`). Unknown
   * figures are null, so the controller keeps its last reading of them.
   */
  degradationInputs(stats?: ResourceGuardStats): GuardDegradationInputs {
    const s = stats === undefined ? this.stats() : validateObject<ResourceGuardStats>(stats, 'stats');
    return {
      memory: s.memoryUsage,
      diskAvailable: s.diskAvailable,
      cpu: s.cpuLoad,
      eventLoopLagMs: s.eventLoopLagMs,
      psi: s.memoryPressure,
    };
  }

  /**
   * Calls {@link ResourceGuard.stats} every `intervalMs` on an unref'd timer,
   * so `stats` and the guards' events arrive without polling. Replaces an
   * earlier watch.
   */
  watch(intervalMs = 1000): this {
    this.#assertOpen();
    validateNumber(intervalMs, 'intervalMs', 1, 2 ** 31 - 1);
    this.unwatch();
    this.#timer = setInterval(() => this.#tick(), intervalMs);
    this.#timer.unref();
    return this;
  }

  /** Stops {@link ResourceGuard.watch}. */
  unwatch(): this {
    if (this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
    return this;
  }

  /** Whether {@link ResourceGuard.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Stops watching, detaches from the guards and closes the ones it made
   * (the memory guard's hold on the sampler, the disk guard's open
   * directory, the CPU monitor's event-loop monitor). Guards passed in stay
   * open: they are the caller's. Idempotent;
   * afterwards the checks, `stats()`, `watch()` and the builder steps throw
   * {@link GuardClosedError} (`ERR_GUARD_CLOSED`).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.unwatch();
    this.#setMemory(null, null);
    this.#setDisk(null, false);
    this.#setCpu(null, null);
    this.#setController(null, null);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ---- internals ----------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closed) throw new GuardClosedError('ResourceGuard');
  }

  /** One tick of watch(): nothing thrown here may reach the event loop. */
  #tick(): void {
    try {
      this.stats();
    } catch (err) {
      this.#report(err);
    }
  }

  #report(err: unknown): void {
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', err);
        return;
      } catch (listenerErr) {
        err = listenerErr;
      }
    }
    if (this.#warned) return;
    this.#warned = true;
    try {
      const message = err instanceof Error ? err.message : String(err);
      process.emitWarning(
        `ResourceGuard.watch(): a periodic reading failed: ${message}. ` +
          "Later failures of this guard are not reported; listen for 'error' to see each one.",
        { code: 'RESOURCE_GUARD_WATCH_ERROR', detail: err instanceof Error && err.stack ? err.stack : undefined },
      );
    } catch {
      // A replaced process.emitWarning that throws: nothing more can be done.
    }
  }

  /** The current guard of a slot when it is one the caller passed in (its settings seed a merge), else the spec. */
  #current(slot: 'memory' | 'cpu'): object | null {
    if (slot === 'memory') return this.#memorySpec ?? this.#memory;
    return this.#cpuSpec ?? this.#cpu;
  }

  #setController(controller: DegradationController | null, spec: DegradationOptions | null): void {
    this.#degradationSpec = controller === null ? null : spec;
    this.#detachController?.();
    this.#detachController = null;
    this.#controller = controller;
    if (controller !== null) {
      const forward = (change: DegradationChange) => {
        this.#lastChange = change;
        this.emit('level', change);
      };
      controller.on('change', forward);
      this.#detachController = () => controller.off('change', forward);
    }
  }

  /** `spec` null: a guard the caller passed in (not ours to close). */
  #setMemory(guard: MemoryGuard | null, spec: MemoryGuardOptions | null): void {
    this.#detachMemory?.();
    if (this.#ownsMemory && this.#memory !== null && this.#memory !== guard) this.#memory.close();
    this.#memory = guard;
    this.#ownsMemory = guard !== null && spec !== null;
    this.#memorySpec = guard === null ? null : spec;
    this.#detachMemory = guard === null ? null : forward(guard, this, 'memory', ['soft', 'hard', 'growth']);
  }

  #setDisk(guard: DiskSpaceGuard | null, owned: boolean): void {
    this.#detachDisk?.();
    if (this.#ownsDisk && this.#disk !== null && this.#disk !== guard) this.#disk.close();
    this.#disk = guard;
    this.#ownsDisk = guard !== null && owned;
    this.#detachDisk = guard === null ? null : forward(guard, this, 'disk', ['soft', 'hard', 'unknown']);
  }

  /** `spec` null: a monitor the caller passed in (not ours to close). */
  #setCpu(monitor: CpuMonitor | null, spec: CpuMonitorOptions | null): void {
    this.#detachCpu?.();
    if (this.#ownsCpu && this.#cpu !== null && this.#cpu !== monitor) this.#cpu.close();
    this.#cpu = monitor;
    this.#ownsCpu = monitor !== null && spec !== null;
    this.#cpuSpec = monitor === null ? null : spec;
    this.#detachCpu = monitor === null ? null : forward(monitor, this, 'cpu', ['high', 'critical', 'throttle', 'unthrottle']);
  }
}

/** A figure a source reported, or null when it is not a finite number >= 0 (unknown, never a made-up 0). */
function known(value: number | null | undefined): number | null {
  return typeof value === 'number' && value >= 0 && value < Infinity ? value : null;
}

function memoryPressure(): number | null {
  try {
    const psi = readPsi('memory');
    return psi === null ? null : known(psi.some.avg10);
  } catch {
    return null;
  }
}

function forward(source: EventEmitter, target: EventEmitter, prefix: string, names: readonly string[]): Detach {
  const listeners = names.map((name) => {
    const fn = (payload: unknown) => target.emit(`${prefix}:${name}`, payload);
    source.on(name, fn);
    return [name, fn] as const;
  });
  return () => {
    for (const [name, fn] of listeners) source.off(name, fn);
  };
}

function isOptions(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof EventEmitter) &&
    !(value instanceof DegradationController)
  );
}

/** Refuses limits that no process can meet (0 bytes): they would divide by zero downstream. */
function refuseZeroLimits(o: Record<string, unknown>, ...keys: string[]): void {
  for (const key of keys) {
    const v = o[key];
    if (v === undefined) continue;
    if (parseSize(v, key) === 0) throw new OutOfRangeError(key, '> 0 bytes (a process cannot use 0 bytes)', v);
  }
}

/**
 * Memory guard options merged over `base` (earlier steps' options, or the
 * settings of a guard the caller gave), validated for what ResourceGuard
 * needs beyond MemoryGuard's own checks; a MemoryGuard as it is; null for
 * none. Takes nothing.
 */
function memoryOptions(value: unknown, base: object | null, name: string): MemoryGuardOptions | MemoryGuard | null {
  if (value === false) return null;
  if (value instanceof MemoryGuard) {
    if (value.closed) throw new GuardClosedError('MemoryGuard');
    const l = value.limits;
    if (!(l.hardLimit > 0)) throw new OutOfRangeError(`${name}.limits.hardLimit`, '> 0 bytes', l.hardLimit);
    return value;
  }
  if (!isOptions(value)) throw new InvalidArgTypeError(name, 'a boolean, an options object or a MemoryGuard', value);
  const o = value as MemoryGuardOptions;
  const given: Record<string, unknown> = {};
  for (const key of ['hardLimit', 'softLimit', 'heapHardLimit', 'heapSoftLimit'] as const) given[`${name}.${key}`] = o[key];
  refuseZeroLimits(given, `${name}.hardLimit`, `${name}.heapHardLimit`);
  let from: MemoryGuardOptions = {};
  if (base instanceof MemoryGuard) {
    // A guard the caller gave: its limits, with the soft ones re-derived
    // when this step names the hard one.
    const l = base.limits;
    // checkInterval is the one in force (after any aggressive division).
    from = { hardLimit: l.hardLimit, growthRateThreshold: l.growthRateThreshold, growthWindowMs: l.growthWindowMs, checkInterval: l.checkInterval };
    if (o.hardLimit === undefined) from.softLimit = l.softLimit;
  } else if (base !== null) {
    from = base as MemoryGuardOptions;
  }
  return { ...from, ...o };
}

/**
 * CPU monitor options merged over `base`, checked by a dry run (a monitor on
 * a given or stand-in source starts neither the sampler nor an event-loop monitor),
 * so that making the real one afterwards cannot fail; a CpuMonitor as it is.
 */
function cpuOptions(value: unknown, base: object | null, name: string): CpuMonitorOptions | CpuMonitor {
  if (value instanceof CpuMonitor) return value;
  if (!isOptions(value)) throw new InvalidArgTypeError(name, 'a boolean, an options object or a CpuMonitor', value);
  let from: CpuMonitorOptions = {};
  if (base instanceof CpuMonitor) {
    const t = base.thresholds;
    from = { highThreshold: t.high, criticalThreshold: t.critical, autoThrottle: t.autoThrottle, throttleDelayMs: t.throttleDelayMs };
  } else if (base !== null) {
    from = base as CpuMonitorOptions;
  }
  const merged: CpuMonitorOptions = { ...from, ...(value as CpuMonitorOptions) };
  // A monitor on a source of the caller's takes nothing, so the dry run
  // uses it as it is (and so checks it too); without one, a stand-in.
  new CpuMonitor(merged.source === undefined ? { ...merged, source: { system: () => NaN } } : merged);
  return merged;
}

/** A disk guard from a path, options (merged over the current guard's), `true`, or a guard as it is. Takes nothing. */
function makeDisk(value: unknown, current: DiskSpaceGuard | null, name: string): DiskSpaceGuard {
  if (value instanceof DiskSpaceGuard) {
    if (value.closed) throw new GuardClosedError('DiskSpaceGuard', value.path);
    return value;
  }
  const base = current === null ? {} : guardSpec(current);
  if (value === true) return new DiskSpaceGuard(base);
  if (typeof value === 'string') return new DiskSpaceGuard({ ...base, path: value });
  if (isOptions(value)) return new DiskSpaceGuard({ ...base, ...(value as DiskSpaceGuardOptions) });
  throw new InvalidArgTypeError(name, 'a boolean, a path, an options object or a DiskSpaceGuard', value);
}

/** Degradation options over earlier ones; thresholds and margins merge per input and level. */
function mergeDegradation(base: DegradationOptions | null, over: DegradationOptions): DegradationOptions {
  if (base === null) return { ...over };
  const merged: DegradationOptions = { ...base, ...over };
  if (isOptions(base.thresholds) && isOptions(over.thresholds)) {
    const t: Record<string, unknown> = { ...base.thresholds };
    for (const [k, v] of Object.entries(over.thresholds as object)) {
      const prev = t[k];
      t[k] = isOptions(prev) && isOptions(v) ? { ...(prev as object), ...(v as object) } : v;
    }
    merged.thresholds = t as DegradationOptions['thresholds'];
  }
  if (isOptions(base.margin) && isOptions(over.margin)) {
    merged.margin = { ...(base.margin as object), ...(over.margin as object) } as DegradationOptions['margin'];
  }
  return merged;
}

/** `env` over `base` for one guard's option: objects merge, anything else replaces. */
function merge<T>(base: T | undefined, env: T | undefined): T | undefined {
  if (env === undefined) return base;
  if (
    typeof base === 'object' &&
    base !== null &&
    typeof env === 'object' &&
    env !== null &&
    !(base instanceof EventEmitter) &&
    !(env instanceof EventEmitter)
  ) {
    return { ...base, ...env };
  }
  if (typeof base === 'string' && typeof env === 'object' && env !== null) return { path: base, ...env } as T;
  return env;
}

/**
 * Memory in use as a fraction of its hard limit: the larger of RSS and heap
 * against their limits; null when unknown.
 */
function memoryFraction(m: MemoryGuardStatus | null): number | null {
  if (m === null) return null;
  let usage = Number.isNaN(m.current) ? NaN : fraction(m.current, m.hardLimit);
  if (m.heap !== null) {
    const used = m.heap.used;
    usage = Number.isNaN(used) ? NaN : Math.max(usage, fraction(used, m.heap.hardLimit));
  }
  return Number.isNaN(usage) ? null : usage;
}

/**
 * used / limit, finite: a limit of 0 (refused up front, but a guard's limits
 * can be changed behind ResourceGuard's back) reads as far over it rather
 * than as Infinity, which no degradation input accepts.
 */
function fraction(used: number, limit: number): number {
  if (limit > 0) return Math.min(used / limit, Number.MAX_SAFE_INTEGER);
  return used > 0 ? Number.MAX_SAFE_INTEGER : 0;
}

function makeController(value: unknown, name: string): DegradationController | null {
  if (value === undefined || value === true) return new DegradationController();
  if (value === false) return null;
  if (value instanceof DegradationController) return value;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return new DegradationController(value as DegradationOptions);
  throw new InvalidArgTypeError(name, 'a DegradationController, an options object or a boolean', value);
}

