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
import { DegradedError, InvalidArgTypeError } from '../errors';
import { readPsi } from '../sampler';
import { validateNumber, validateObject, validateString } from '../validate';
import { CpuMonitor, type CpuMonitorOptions, type CpuSample } from './cpu';
import { DiskSpaceGuard, type DiskSpaceGuardOptions, type DiskSpaceStatus } from './disk';
import { MiB, envBoolean, envFraction, envInteger, envMegabytes, optionsObject } from './internal';
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
};

type Env = Record<string, string | undefined>;
type Detach = () => void;

/**
 * Memory, disk and CPU guards in one.
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
  #timer: NodeJS.Timeout | null = null;
  #controller: DegradationController | null = null;
  #detachController: Detach | null = null;
  #lastChange: DegradationChange | null = null;

  constructor(options?: ResourceGuardOptions) {
    super();
    const o = optionsObject<ResourceGuardOptions>(options, 'options');
    // Build all of them first, so a bad option leaves nothing half-made.
    const memory = o.memory === undefined || o.memory === true ? new MemoryGuard() : makeMemory(o.memory, 'options.memory');
    const disk = o.disk === undefined || o.disk === false ? null : makeDisk(o.disk, 'options.disk');
    const cpu = o.cpu === undefined || o.cpu === false ? null : makeCpu(o.cpu, 'options.cpu');
    const controller = makeController(o.degradation, 'options.degradation');
    this.#setController(controller);
    this.#setMemory(memory);
    this.#setDisk(disk);
    this.#setCpu(cpu, cpu !== null && !(o.cpu instanceof CpuMonitor));
  }

  /**
   * Options from environment variables (see the README for the list). `*_MB`
   * values are mebibytes (2^20 bytes) unless they carry a unit ('2GiB').
   * Throws on a malformed value, naming the variable.
   */
  static optionsFromEnv(env: Env = process.env): ResourceGuardOptions {
    const e = validateObject<Env>(env, 'env');
    const memoryOn = envBoolean(e, 'RESOURCE_GUARD_MEMORY');
    const memory: MemoryGuardOptions = {};
    const hard = envMegabytes(e, 'RESOURCE_GUARD_MEMORY_LIMIT_MB');
    const soft = envMegabytes(e, 'RESOURCE_GUARD_MEMORY_SOFT_LIMIT_MB');
    const growth = envMegabytes(e, 'RESOURCE_GUARD_MEMORY_GROWTH_MB');
    if (hard !== undefined) memory.hardLimit = hard;
    if (soft !== undefined) memory.softLimit = soft;
    if (growth !== undefined) memory.growthRateThreshold = growth;

    const disk: DiskSpaceGuardOptions = {};
    const path = e.RESOURCE_GUARD_OUTPUT_PATH;
    const minFree = envMegabytes(e, 'RESOURCE_GUARD_DISK_MIN_FREE_MB');
    const softFree = envMegabytes(e, 'RESOURCE_GUARD_DISK_SOFT_FREE_MB');
    const reserve = envMegabytes(e, 'RESOURCE_GUARD_DISK_RESERVE_MB');
    const interval = envInteger(e, 'RESOURCE_GUARD_DISK_CHECK_INTERVAL', 1);
    if (path !== undefined && path.trim() !== '') disk.path = path;
    if (minFree !== undefined) disk.minFree = minFree;
    if (softFree !== undefined) disk.softFree = softFree;
    if (reserve !== undefined) disk.reserve = reserve;
    if (interval !== undefined) disk.checkInterval = interval;

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
    const before = this.level;
    this.stats(); // feeds the controller once
    const level = this.level;
    return { level, changed: level !== before };
  }

  // ---- builder ------------------------------------------------------------------

  /** Replaces the degradation controller (options, a controller, or false for none). */
  withDegradation(degradation: DegradationOptions | DegradationController | boolean = true): this {
    this.#setController(makeController(degradation, 'degradation'));
    return this;
  }

  /**
   * Sets the memory hard limit (and optionally the soft one), creating a
   * memory guard if there is none. On a bad argument nothing changes.
   */
  withMemoryLimit(hardLimit: number | string, softLimit?: number | string): this {
    const limits: { hardLimit: number | string; softLimit?: number | string } = { hardLimit };
    if (softLimit !== undefined) limits.softLimit = softLimit;
    if (this.#memory === null) this.#setMemory(new MemoryGuard(limits));
    else this.#memory.setLimits(limits);
    return this;
  }

  /** Replaces the memory guard (options, a guard, or false to remove it). */
  withMemory(memory: MemoryGuardOptions | MemoryGuard | boolean): this {
    this.#setMemory(memory === true ? new MemoryGuard() : makeMemory(memory, 'memory'));
    return this;
  }

  /** Guards free space in `path`, replacing any disk guard. */
  withOutputPath(path: string, options?: Omit<DiskSpaceGuardOptions, 'path'>): this {
    validateString(path, 'path');
    const o = optionsObject<DiskSpaceGuardOptions>(options, 'options');
    this.#setDisk(new DiskSpaceGuard({ ...o, path }));
    return this;
  }

  /** Replaces the disk guard (options, a guard, a path, or false to remove it). */
  withDisk(disk: DiskSpaceGuardOptions | DiskSpaceGuard | string | boolean): this {
    this.#setDisk(disk === false ? null : makeDisk(disk, 'disk'));
    return this;
  }

  /** Turns CPU monitoring on (with options or a monitor) or off (false). */
  withCpuMonitoring(cpu: CpuMonitorOptions | CpuMonitor | boolean = true): this {
    const monitor = cpu === false ? null : makeCpu(cpu, 'cpu');
    this.#setCpu(monitor, monitor !== null && !(cpu instanceof CpuMonitor));
    return this;
  }

  // ---- checks -----------------------------------------------------------------

  /** The memory guard's hot check (true without a memory guard). */
  ok(): boolean {
    const m = this.#memory;
    return m === null || m.ok();
  }

  /**
   * Checks memory, then disk, then CPU, and throws the first failure:
   * `MemoryLimitError`, `DiskSpaceError` / `DiskSpaceUnknownError`,
   * `CpuOverloadError`. Returns every status when all pass.
   */
  checkAll(): ResourceGuardStatus {
    const memory = this.#memory === null ? null : this.#memory.assert();
    const disk = this.#disk === null ? null : this.#disk.assert();
    const cpu = this.#cpu === null ? null : this.#cpu.assert();
    const controller = this.#controller;
    if (controller !== null) {
      controller.update({
        memory: memoryFraction(memory),
        diskAvailable: disk === null ? null : disk.available,
        cpu: cpu === null || Number.isNaN(cpu.load) ? null : cpu.load,
        eventLoopLagMs: cpu === null ? null : cpu.eventLoopLagMs,
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
      cpuLoad = Number.isNaN(c.load) ? null : c.load;
      lag = c.eventLoopLagMs;
      elu = c.eventLoopUtilization;
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
    validateNumber(intervalMs, 'intervalMs', 1, 2 ** 31 - 1);
    this.unwatch();
    this.#timer = setInterval(() => this.stats(), intervalMs);
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

  /** Stops watching, detaches from the guards and closes the CPU monitor it created. */
  close(): void {
    this.unwatch();
    this.#setMemory(null);
    this.#setDisk(null);
    this.#setCpu(null, false);
    this.#setController(null);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ---- internals ----------------------------------------------------------------

  #setController(controller: DegradationController | null): void {
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

  #setMemory(guard: MemoryGuard | null): void {
    this.#detachMemory?.();
    this.#memory = guard;
    this.#detachMemory = guard === null ? null : forward(guard, this, 'memory', ['soft', 'hard', 'growth']);
  }

  #setDisk(guard: DiskSpaceGuard | null): void {
    this.#detachDisk?.();
    this.#disk = guard;
    this.#detachDisk = guard === null ? null : forward(guard, this, 'disk', ['soft', 'hard', 'unknown']);
  }

  #setCpu(monitor: CpuMonitor | null, owned: boolean): void {
    this.#detachCpu?.();
    if (this.#ownsCpu && this.#cpu !== null && this.#cpu !== monitor) this.#cpu.close();
    this.#cpu = monitor;
    this.#ownsCpu = owned;
    this.#detachCpu = monitor === null ? null : forward(monitor, this, 'cpu', ['high', 'critical', 'throttle', 'unthrottle']);
  }
}

function memoryPressure(): number | null {
  try {
    const psi = readPsi('memory');
    return psi === null ? null : psi.some.avg10;
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

function makeMemory(value: unknown, name: string): MemoryGuard | null {
  if (value === false) return null;
  if (value instanceof MemoryGuard) return value;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return new MemoryGuard(value as MemoryGuardOptions);
  throw new InvalidArgTypeError(name, 'a boolean, an options object or a MemoryGuard', value);
}

function makeDisk(value: unknown, name: string): DiskSpaceGuard {
  if (value instanceof DiskSpaceGuard) return value;
  if (value === true) return new DiskSpaceGuard();
  if (typeof value === 'string') return new DiskSpaceGuard({ path: value });
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return new DiskSpaceGuard(value as DiskSpaceGuardOptions);
  throw new InvalidArgTypeError(name, 'a boolean, a path, an options object or a DiskSpaceGuard', value);
}

function makeCpu(value: unknown, name: string): CpuMonitor {
  if (value instanceof CpuMonitor) return value;
  if (value === true) return new CpuMonitor();
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return new CpuMonitor(value as CpuMonitorOptions);
  throw new InvalidArgTypeError(name, 'a boolean, an options object or a CpuMonitor', value);
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
  let usage = Number.isNaN(m.current) ? NaN : m.current / m.hardLimit;
  if (m.heap !== null) {
    const used = m.heap.used;
    const limit = m.heap.hardLimit;
    usage = !Number.isNaN(used) && limit > 0 ? Math.max(usage, used / limit) : NaN;
  }
  return Number.isNaN(usage) ? null : usage;
}

function makeController(value: unknown, name: string): DegradationController | null {
  if (value === undefined || value === true) return new DegradationController();
  if (value === false) return null;
  if (value instanceof DegradationController) return value;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return new DegradationController(value as DegradationOptions);
  throw new InvalidArgTypeError(name, 'a DegradationController, an options object or a boolean', value);
}

