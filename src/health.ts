/**
 * Health: the figures a process is judged by (memory against its limit, disk,
 * CPU, event-loop lag, memory pressure stall, budgets), a JSON report of them
 * with a status, and an HTTP handler that serves the report for Kubernetes
 * probes: 200 while healthy or degraded, 503 (with `Retry-After`) when unhealthy.
 *
 * Every source is injectable. By default the figures come from the real
 * samplers: resident set size against the cgroup memory limit (or physical
 * RAM when there is none), the cgroup's own memory counter against that
 * limit, the V8 heap against its limit, the file system holding the working
 * directory, CPU by the CPU rule (this process's or its container's CPU time
 * against the CPUs it may use, see `cpu-usage.ts`; host load beside it),
 * event-loop delay (p99 over a window, see `loop-delay.ts`), event-loop utilization and
 * `/proc/pressure/memory`.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoopDelayWindow } from './loop-delay';
import {
  DEGRADATION_LEVELS,
  DegradationController,
  type DegradationLevel,
  type DegradationOptions,
  type DegradationStatus,
} from './degradation';
import { InvalidArgTypeError, InvalidArgValueError } from './errors';
import { getHeapStatistics } from 'node:v8';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { readInactiveFile, workingSet } from './container-memory';
import { CpuUsageTracker, sharedCpuTracker, type CpuAllowanceSource, type CpuBasis } from './cpu-usage';
import { pressure, type PressureLevel } from './pressure';
import { readCgroup, readDisk, readPsi, readRss, readSystemMemory } from './sampler';
import {
  validateBoolean,
  validateFunction,
  validateInteger,
  validateNumber,
  validateObject,
  validateOneOf,
  validateString,
} from './validate';
import { parseSize, type Size } from './size';

// ---- figures ----------------------------------------------------------------------------

export interface MemoryFigures {
  /** Bytes in use (resident set size by default). */
  usage: number;
  /** Bytes allowed, or null when no limit is known. */
  limit: number | null;
  /** Where the limit came from. */
  source: 'cgroup' | 'system' | 'configured' | 'custom';
}

export interface DiskFigures {
  path: string;
  /** Size of the file system, bytes. */
  total: number;
  /** Bytes an unprivileged process may still write. */
  available: number;
}

export interface CpuFigures {
  /**
   * CPU load 0..1 by the CPU rule: the container's CPU time where it has
   * cgroup CPU accounting, else this process's, per wall second, divided by
   * the CPUs it may use (quota, else affinity, else count).
   */
  load: number;
  /** Whose CPU time `load` counts. @default 'process' when absent */
  basis?: CpuBasis;
  /** This process's CPU seconds per wall second (may exceed 1), or null. */
  processLoad: number | null;
  /** CPUs the process may use (fractional under a quota), or null. */
  cpus: number | null;
  /** Where `cpus` came from. */
  cpusSource?: CpuAllowanceSource;
  /** Host-wide CPU load 0..1 (an input of its own, `hostCpu`), or null. */
  host?: number | null;
  /** CPU time this process has used so far, user + system, seconds (a counter). */
  processSeconds?: number;
}

export interface EventLoopFigures {
  /** 99th percentile of the event-loop delay over the last window, ms. */
  lagMs: number;
  meanMs: number;
  maxMs: number;
  /** Fraction of the window the loop was busy (`performance.eventLoopUtilization`), 0..1. */
  utilization?: number | null;
}

export interface HeapFigures {
  /** V8 heap bytes in use. */
  used: number;
  /** V8 heap size limit (`heap_size_limit`). */
  limit: number;
}

export interface ContainerMemoryFigures {
  /**
   * The cgroup's working set, bytes: its memory counter (`memory.current`,
   * v1 `memory.usage_in_bytes`) less the inactive file cache, which the
   * kernel reclaims before the limit (the figure the kubelet evicts on).
   */
  usage: number;
  /** The cgroup memory limit, bytes. */
  limit: number;
  /** The raw memory counter, page cache included, bytes. */
  current?: number;
}

/** Everything a report reads. A null section is unknown (not zero). */
export interface ResourceFigures {
  memory: MemoryFigures | null;
  disk: DiskFigures | null;
  cpu: CpuFigures | null;
  eventLoop: EventLoopFigures | null;
  /** PSI memory `some avg10`, percent, or null where the kernel has none. */
  psi: number | null;
  /** V8 heap against its limit, or null. */
  heap?: HeapFigures | null;
  /** The cgroup's memory against its limit, or null outside a memory-limited cgroup. */
  containerMemory?: ContainerMemoryFigures | null;
  /** Why a section is null, when reading it failed. */
  errors?: Partial<Record<'memory' | 'disk' | 'cpu' | 'eventLoop' | 'psi' | 'heap' | 'containerMemory', string>>;
}

export interface ResourceSamplerOptions {
  /** Directory whose file system is watched. @default process.cwd() at each read */
  diskPath?: string;
  /** Memory limit to judge usage against (bytes or a size string). @default the cgroup limit, else physical RAM */
  memoryLimit?: Size;
  /** Read CPU figures by the CPU rule (starts the native sampler thread). @default true */
  cpu?: boolean;
  /** Where CPU figures come from. @default the process-wide tracker */
  cpuTracker?: CpuUsageTracker;
  /** Measure event-loop delay (the time between runs of a timer that asks to run every `eventLoopResolutionMs`). @default true */
  eventLoop?: boolean;
  /** Resolution of the event-loop monitor, ms. @default 10 */
  eventLoopResolutionMs?: number;
  /**
   * Shortest window the event-loop figures cover: reads closer together than
   * this return the figures of the window in progress instead of starting a
   * new one, so a probe and a scrape do not starve each other. @default 1000
   */
  eventLoopWindowMs?: number;
  /** Read `/proc/pressure/memory`. @default true */
  psi?: boolean;
}

/** A function that reads {@link ResourceFigures}; `close()` stops its event-loop monitor. */
export interface ResourceSampler {
  (): ResourceFigures;
  close(): void;
}

/** Creates a reader of the real figures (see {@link ResourceSamplerOptions}). */
export function createResourceSampler(options: ResourceSamplerOptions = {}): ResourceSampler {
  validateObject(options, 'options');
  const diskPath = options.diskPath === undefined ? null : validateString(options.diskPath, 'options.diskPath');
  const memoryLimit = options.memoryLimit === undefined ? null : parseSize(options.memoryLimit, 'options.memoryLimit');
  const wantCpu = options.cpu === undefined ? true : validateBoolean(options.cpu, 'options.cpu');
  const wantLoop = options.eventLoop === undefined ? true : validateBoolean(options.eventLoop, 'options.eventLoop');
  const wantPsi = options.psi === undefined ? true : validateBoolean(options.psi, 'options.psi');
  const resolutionMs =
    options.eventLoopResolutionMs === undefined ? 10 : validateInteger(options.eventLoopResolutionMs, 'options.eventLoopResolutionMs', 1, 10_000);
  const windowMs =
    options.eventLoopWindowMs === undefined ? 1000 : validateNumber(options.eventLoopWindowMs, 'options.eventLoopWindowMs', 0);

  const tracker = options.cpuTracker;
  if (tracker !== undefined && !(tracker instanceof CpuUsageTracker)) {
    throw new InvalidArgTypeError('options.cpuTracker', 'an instance of CpuUsageTracker', tracker);
  }
  let histogram: LoopDelayWindow | null = null;
  let elu: EventLoopUtilization | null = null;
  let utilization: number | null = null;
  if (wantLoop) {
    histogram = new LoopDelayWindow(resolutionMs);
    elu = performance.eventLoopUtilization();
  }
  let windowStart = Date.now();
  let lastLoop: EventLoopFigures | null = null;
  // The histogram records the timer's full period, so the resolution itself
  // is subtracted: an idle loop reports about 0 ms, not 10.
  const loopFigures = (h: LoopDelayWindow): EventLoopFigures => {
    const base = resolutionMs * 1e6;
    const ms = (ns: number) => Math.max(0, ns - base) / 1e6;
    return { lagMs: ms(h.percentile(99)), meanMs: ms(h.mean), maxMs: ms(h.max) };
  };

  const sample = (() => {
    const errors: NonNullable<ResourceFigures['errors']> = {};
    const figures: ResourceFigures = {
      memory: null,
      disk: null,
      cpu: null,
      eventLoop: null,
      psi: null,
      heap: null,
      containerMemory: null,
    };
    try {
      figures.memory = readMemory(memoryLimit);
    } catch (err) {
      errors.memory = message(err);
    }
    try {
      const h = getHeapStatistics();
      if (h.heap_size_limit > 0) figures.heap = { used: h.used_heap_size, limit: h.heap_size_limit };
    } catch (err) {
      errors.heap = message(err);
    }
    try {
      const c = readCgroup();
      if (c.memoryLimit !== null && c.memoryLimit > 0 && c.memoryUsage !== null) {
        const usage = workingSet(c.memoryUsage, readInactiveFile());
        figures.containerMemory = { usage, limit: c.memoryLimit, current: c.memoryUsage };
      }
    } catch (err) {
      errors.containerMemory = message(err);
    }
    try {
      const d = readDisk(diskPath ?? process.cwd());
      figures.disk = { path: d.path, total: d.total, available: d.available };
    } catch (err) {
      errors.disk = message(err);
    }
    if (wantCpu) {
      try {
        const r = (tracker ?? sharedCpuTracker()).read();
        if (Number.isFinite(r.load)) {
          figures.cpu = {
            load: r.load,
            basis: r.basis,
            processLoad: Number.isFinite(r.processCores) ? r.processCores : null,
            cpus: r.cpus > 0 ? r.cpus : null,
            cpusSource: r.cpusSource,
            host: r.host,
            processSeconds: cpuSeconds(),
          };
        }
      } catch (err) {
        errors.cpu = message(err);
      }
    }
    if (histogram !== null) {
      const now = Date.now();
      if (histogram.count > 0) {
        lastLoop = loopFigures(histogram);
        if (now - windowStart >= windowMs) {
          histogram.reset();
          windowStart = now;
          if (elu !== null) {
            const next = performance.eventLoopUtilization();
            utilization = performance.eventLoopUtilization(next, elu).utilization;
            elu = next;
          }
        }
        lastLoop.utilization = utilization;
      }
      figures.eventLoop = lastLoop;
    }
    if (wantPsi) {
      try {
        figures.psi = readPsi('memory')?.some.avg10 ?? null;
      } catch (err) {
        errors.psi = message(err);
      }
    }
    if (Object.keys(errors).length > 0) figures.errors = errors;
    return figures;
  }) as ResourceSampler;
  sample.close = () => {
    histogram?.close();
    histogram = null;
  };
  return sample;
}

function readMemory(limit: number | null): MemoryFigures {
  const usage = readRss();
  if (limit !== null) return { usage, limit, source: 'configured' };
  let total = NaN;
  try {
    total = readSystemMemory().total;
  } catch {
    // Physical RAM unknown: a cgroup limit may still be there.
  }
  let cgroupLimit: number | null = null;
  try {
    cgroupLimit = readCgroup().memoryLimit;
  } catch {
    // No readable cgroup: judge against physical RAM.
  }
  if (cgroupLimit !== null && cgroupLimit > 0 && !(cgroupLimit >= total)) return { usage, limit: cgroupLimit, source: 'cgroup' };
  if (total > 0) return { usage, limit: total, source: 'system' };
  return { usage, limit: null, source: 'system' };
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The controller readings of a set of figures: memory as a fraction of its
 * limit, disk bytes available, CPU load by the CPU rule (`cpu`) and the
 * host's (`hostCpu`), event-loop p99 lag and utilization, PSI, V8 heap and
 * cgroup memory as fractions of their limits.
 * Unknown figures are left out (undefined), so a controller keeps its last
 * reading of them rather than taking them as zero.
 */
export function statusFromFigures(figures: Partial<ResourceFigures>): DegradationStatus {
  validateObject(figures, 'figures');
  const status: DegradationStatus = {};
  const m = figures.memory;
  if (m && m.limit !== null && m.limit > 0 && m.usage >= 0) status.memory = m.usage / m.limit;
  if (figures.disk && figures.disk.available >= 0) status.diskAvailable = figures.disk.available;
  if (figures.cpu && figures.cpu.load >= 0) status.cpu = figures.cpu.load;
  if (figures.cpu && typeof figures.cpu.host === 'number' && figures.cpu.host >= 0) status.hostCpu = figures.cpu.host;
  if (figures.eventLoop && figures.eventLoop.lagMs >= 0) status.eventLoopLagMs = figures.eventLoop.lagMs;
  const u = figures.eventLoop?.utilization;
  if (typeof u === 'number' && u >= 0) status.eventLoopUtilization = u;
  if (typeof figures.psi === 'number' && figures.psi >= 0) status.psi = figures.psi;
  const h = figures.heap;
  if (h && h.limit > 0 && h.used >= 0) status.heap = h.used / h.limit;
  const c = figures.containerMemory;
  if (c && c.limit > 0 && c.usage >= 0) status.containerMemory = c.usage / c.limit;
  return status;
}

// ---- sources shared by health and metrics ------------------------------------------------

/** A byte budget as reports read it; {@link Budget} handles qualify. */
export interface BudgetLike {
  readonly name: string;
  readonly used: number;
  readonly limit: number;
  readonly peak?: number;
  readonly closed?: boolean;
  readonly slot?: number;
  /** `'machine'` for a budget shared by the processes of the machine. */
  readonly scope?: 'process' | 'machine';
  stats?(): { successes: number; failures: number; holders?: number; peak?: number };
}

/** Where health reports and metrics get their figures. */
export interface ReportSources {
  /** The controller whose level is reported. Without one, the level is classified from the figures (no hysteresis). */
  controller?: DegradationController | null;
  /** Feed the figures read for a report into `controller` (when nothing else drives it). @default false */
  updateController?: boolean;
  /** Thresholds for classifying the level when there is no controller. */
  degradation?: DegradationOptions;
  /** Reader of the figures; a partial result leaves the other sections unknown. @default createResourceSampler({ diskPath }) */
  figures?: () => Partial<ResourceFigures>;
  /** Directory watched by the default figures reader. @default process.cwd() */
  diskPath?: string;
  /** Budgets to report: a list, or a function returning one at each report. */
  budgets?: Iterable<BudgetLike> | (() => Iterable<BudgetLike>);
}

/** One budget as reports show it. */
export interface BudgetFigures {
  /** Name (or `(private N)` for a private budget, N its slot). */
  name: string;
  used: number;
  limit: number;
  peak: number | null;
  percent: number;
  pressure: PressureLevel;
  successes: number | null;
  failures: number | null;
  /** `'machine'`: shared by the processes of the machine; `used`, `peak` and the counts are machine-wide. */
  scope: 'process' | 'machine';
  /** Machine budgets: the processes that have it open; null for process budgets. */
  holders: number | null;
}

const defaultSamplers = new Map<string, ResourceSampler>();

function defaultSampler(diskPath: string | undefined): ResourceSampler {
  const key = diskPath ?? '';
  let s = defaultSamplers.get(key);
  if (s === undefined) {
    s = createResourceSampler(diskPath === undefined ? {} : { diskPath });
    defaultSamplers.set(key, s);
  }
  return s;
}

/** Validates a sources object once (health handler, metrics registration). */
export function checkSources(sources: ReportSources, name = 'options'): void {
  validateObject(sources, name);
  const c = sources.controller;
  if (c !== undefined && c !== null && !(c instanceof DegradationController)) {
    throw new InvalidArgTypeError(`${name}.controller`, 'an instance of DegradationController', c);
  }
  if (sources.updateController !== undefined) validateBoolean(sources.updateController, `${name}.updateController`);
  if (sources.degradation !== undefined) validateObject(sources.degradation, `${name}.degradation`);
  if (sources.figures !== undefined) validateFunction(sources.figures, `${name}.figures`);
  if (sources.diskPath !== undefined) validateString(sources.diskPath, `${name}.diskPath`);
  const b = sources.budgets;
  if (b !== undefined && typeof b !== 'function' && !(typeof b === 'object' && b !== null && Symbol.iterator in b)) {
    throw new InvalidArgTypeError(`${name}.budgets`, 'an iterable of budgets or a function', b);
  }
}

/** Reads the figures of `sources`, normalised: every section present, null where unknown. */
export function readFigures(sources: ReportSources = {}): ResourceFigures {
  const raw = sources.figures ? sources.figures() : defaultSampler(sources.diskPath)();
  if (typeof raw !== 'object' || raw === null) throw new InvalidArgTypeError('figures()', 'to return an object', raw);
  const out: ResourceFigures = {
    memory: raw.memory ?? null,
    disk: raw.disk ?? null,
    cpu: raw.cpu ?? null,
    eventLoop: raw.eventLoop ?? null,
    psi: typeof raw.psi === 'number' ? raw.psi : null,
    heap: raw.heap ?? null,
    containerMemory: raw.containerMemory ?? null,
  };
  if (raw.errors && Object.keys(raw.errors).length > 0) out.errors = raw.errors;
  return out;
}

/**
 * Reads the budgets of `sources` (closed handles are left out). Reservation
 * counts need one native call per budget (`stats()`), so they are read only
 * when `counts` is true; otherwise they are null.
 */
export function readBudgets(sources: ReportSources = {}, counts = true): BudgetFigures[] {
  const b = sources.budgets;
  if (b === undefined) return [];
  const list = typeof b === 'function' ? b() : b;
  const out: BudgetFigures[] = [];
  for (const budget of list) {
    if (budget.closed === true) continue;
    const used = budget.used;
    const limit = budget.limit;
    const p = pressure(used, limit);
    let successes: number | null = null;
    let failures: number | null = null;
    const scope = budget.scope === 'machine' ? 'machine' : 'process';
    let holders: number | null = null;
    let peak: number | null = null;
    if (scope === 'machine' && typeof budget.stats === 'function') {
      // One locked read gives the holders, the peak and the counts.
      const s = budget.stats();
      holders = typeof s.holders === 'number' ? s.holders : null;
      peak = typeof s.peak === 'number' ? s.peak : null;
      if (counts) {
        successes = s.successes;
        failures = s.failures;
      }
    } else {
      if (counts && typeof budget.stats === 'function') {
        const s = budget.stats();
        successes = s.successes;
        failures = s.failures;
      }
      peak = typeof budget.peak === 'number' ? budget.peak : null;
    }
    out.push({
      name: budget.name !== '' ? budget.name : `(private ${budget.slot ?? out.length})`,
      used,
      limit,
      peak,
      percent: p.percent,
      pressure: p.level,
      successes,
      failures,
      scope,
      holders,
    });
  }
  return out;
}

const classifiers = new WeakMap<object, DegradationController>();
const DEFAULT_KEY = {};

/**
 * The level to report and whether it is forced: the controller's (fed the
 * figures first when `updateController`), else a classification of the
 * figures against the thresholds.
 */
export function levelOf(sources: ReportSources, figures: ResourceFigures): { level: DegradationLevel; forced: boolean } {
  const c = sources.controller;
  if (c) {
    if (sources.updateController) c.update(statusFromFigures(figures));
    return { level: c.level, forced: c.forced };
  }
  const key = sources.degradation ?? DEFAULT_KEY;
  let classifier = classifiers.get(key);
  if (classifier === undefined) {
    classifier = new DegradationController(sources.degradation);
    classifiers.set(key, classifier);
  }
  classifier.reset();
  return { level: classifier.update(statusFromFigures(figures)).level, forced: false };
}

// ---- the report ---------------------------------------------------------------------------

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

/** normal → healthy; reduced, minimal → degraded; emergency → unhealthy. */
export function healthStatusFor(level: DegradationLevel): HealthStatus {
  validateOneOf(level, 'level', DEGRADATION_LEVELS);
  return level === 'normal' ? 'healthy' : level === 'emergency' ? 'unhealthy' : 'degraded';
}

/** The health JSON. Sizes in MB are decimal (10^6 bytes) and rounded; percentages to 0.1. */
export interface HealthReport {
  status: HealthStatus;
  level: DegradationLevel;
  /** The level was pinned with `controller.force()`. */
  forced: boolean;
  /** ISO 8601 time of the report. */
  timestamp: string;
  uptime_s: number;
  memory: {
    usage_mb: number;
    limit_mb: number | null;
    percent: number | null;
    pressure: PressureLevel | null;
    usage_bytes: number;
    limit_bytes: number | null;
    source: MemoryFigures['source'];
  } | null;
  disk: {
    path: string;
    available_mb: number;
    total_mb: number;
    /** Null when the file system reports no total. */
    used_percent: number | null;
    available_bytes: number;
    total_bytes: number;
  } | null;
  /** CPU by the CPU rule; `host_load` is the host's, reported but not judged by default. */
  cpu: {
    load: number;
    percent: number;
    basis: CpuBasis;
    process_load: number | null;
    cpus: number | null;
    cpus_source: CpuAllowanceSource | null;
    host_load: number | null;
  } | null;
  event_loop: { lag_ms: number; mean_ms: number; max_ms: number; utilization: number | null } | null;
  psi: { memory_some_avg10: number } | null;
  heap: { used_bytes: number; limit_bytes: number; percent: number } | null;
  /** The cgroup's working set (page cache that can be reclaimed left out) against its limit. */
  container_memory: { usage_bytes: number; limit_bytes: number; percent: number; current_bytes: number | null } | null;
  budgets: Array<{
    name: string;
    used_bytes: number;
    limit_bytes: number;
    peak_bytes: number | null;
    percent: number;
    pressure: PressureLevel;
    /** `'machine'`: shared by the processes of the machine. */
    scope: 'process' | 'machine';
    /** Machine budgets: processes that have it open (null for process budgets). */
    holders: number | null;
  }>;
  /** Present when a section could not be read: why. */
  errors?: ResourceFigures['errors'];
}

const mb = (bytes: number) => Math.round(bytes / 1e6);
const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * A health report. With no options it reads the real samplers and classifies
 * the level against the default thresholds; pass the controller that drives
 * your degradation so the report shows its level (with hysteresis).
 */
export function healthReport(sources: ReportSources = {}): HealthReport {
  checkSources(sources);
  return buildReport(sources);
}

function buildReport(sources: ReportSources): HealthReport {
  const f = readFigures(sources);
  const { level, forced } = levelOf(sources, f);
  const m = f.memory;
  let memory: HealthReport['memory'] = null;
  if (m) {
    // A limit of 0 bounds nothing known: the share is unknown, not 0 %.
    const p = m.limit !== null && m.limit > 0 ? pressure(m.usage, m.limit) : null;
    memory = {
      usage_mb: mb(m.usage),
      limit_mb: m.limit === null ? null : mb(m.limit),
      percent: p === null ? null : r1(p.percent),
      pressure: p === null ? null : p.level,
      usage_bytes: m.usage,
      limit_bytes: m.limit,
      source: m.source,
    };
  }
  const d = f.disk;
  const report: HealthReport = {
    status: healthStatusFor(level),
    level,
    forced,
    timestamp: new Date().toISOString(),
    uptime_s: r1(process.uptime()),
    memory,
    disk: d && {
      path: d.path,
      available_mb: mb(d.available),
      total_mb: mb(d.total),
      used_percent: d.total > 0 ? r1(((d.total - d.available) * 100) / d.total) : null, // unknown without a total
      available_bytes: d.available,
      total_bytes: d.total,
    },
    cpu: f.cpu && {
      load: r3(f.cpu.load),
      percent: r1(f.cpu.load * 100),
      basis: f.cpu.basis ?? 'process',
      process_load: f.cpu.processLoad === null ? null : r3(f.cpu.processLoad),
      cpus: f.cpu.cpus,
      cpus_source: f.cpu.cpusSource ?? null,
      host_load: typeof f.cpu.host === 'number' ? r3(f.cpu.host) : null,
    },
    event_loop: f.eventLoop && {
      lag_ms: r3(f.eventLoop.lagMs),
      mean_ms: r3(f.eventLoop.meanMs),
      max_ms: r3(f.eventLoop.maxMs),
      utilization: typeof f.eventLoop.utilization === 'number' ? r3(f.eventLoop.utilization) : null,
    },
    psi: f.psi === null ? null : { memory_some_avg10: f.psi },
    heap: f.heap
      ? { used_bytes: f.heap.used, limit_bytes: f.heap.limit, percent: r1((f.heap.used * 100) / f.heap.limit) }
      : null,
    container_memory: f.containerMemory
      ? {
          usage_bytes: f.containerMemory.usage,
          limit_bytes: f.containerMemory.limit,
          percent: r1((f.containerMemory.usage * 100) / f.containerMemory.limit),
          current_bytes: typeof f.containerMemory.current === 'number' ? f.containerMemory.current : null,
        }
      : null,
    budgets: readBudgets(sources, false).map((b) => ({
      name: b.name,
      used_bytes: b.used,
      limit_bytes: b.limit,
      peak_bytes: b.peak,
      percent: r1(b.percent),
      pressure: b.pressure,
      scope: b.scope,
      holders: b.holders,
    })),
  };
  if (f.errors) report.errors = f.errors;
  return report;
}

// ---- HTTP --------------------------------------------------------------------------------

export interface HealthHandlerOptions extends ReportSources {
  /** HTTP status per health status. @default { healthy: 200, degraded: 200, unhealthy: 503 } */
  statusCodes?: Partial<Record<HealthStatus, number>>;
  /** Seconds sent in `Retry-After` with a 503. @default 10 */
  retryAfter?: number;
}

/** The subset of a Fastify reply the handler uses. */
export interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  header(name: string, value: string): FastifyReplyLike;
  send(body: string): unknown;
}

/** A handler for node:http, Express and Fastify alike. */
export type HealthHandler = (req: IncomingMessage | { method?: string }, res: ServerResponse | FastifyReplyLike, next?: unknown) => void;

/**
 * An HTTP handler that serves {@link healthReport} as JSON: 200 while healthy
 * or degraded, 503 when unhealthy (so a Kubernetes readiness probe takes the
 * pod out of rotation at emergency). It works as a node:http request
 * listener, an Express handler and a Fastify handler; it answers whatever
 * path it is mounted on, without a body for HEAD. A report that cannot be
 * built answers 500 with the error.
 */
export function createHealthHandler(options: HealthHandlerOptions = {}): HealthHandler {
  checkSources(options);
  const codes: Record<HealthStatus, number> = { healthy: 200, degraded: 200, unhealthy: 503 };
  if (options.statusCodes !== undefined) {
    validateObject(options.statusCodes, 'options.statusCodes');
    for (const k of Object.keys(options.statusCodes)) {
      if (k !== 'healthy' && k !== 'degraded' && k !== 'unhealthy') {
        throw new InvalidArgValueError(`options.statusCodes.${k}`, k, 'is not a health status (use healthy, degraded, unhealthy)');
      }
    }
    for (const k of ['healthy', 'degraded', 'unhealthy'] as const) {
      const v = options.statusCodes[k];
      if (v !== undefined) codes[k] = validateInteger(v, `options.statusCodes.${k}`, 100, 599);
    }
  }
  const retryAfter = options.retryAfter === undefined ? 10 : validateInteger(options.retryAfter, 'options.retryAfter', 0, 31_536_000);
  const extra = { 'Retry-After': String(retryAfter) };
  return (req, res) => {
    let status: number;
    let body: string;
    try {
      const report = buildReport(options);
      status = codes[report.status];
      body = JSON.stringify(report);
    } catch (err) {
      status = 500;
      body = JSON.stringify({ status: 'unhealthy', error: message(err) });
    }
    writeResponse(req, res, status, 'application/json; charset=utf-8', body, status === 503 ? extra : undefined);
  };
}

/** Writes a response through a Fastify reply or a node:http / Express response. */
export function writeResponse(
  req: IncomingMessage | { method?: string },
  res: ServerResponse | FastifyReplyLike,
  status: number,
  contentType: string,
  body: string,
  headers?: Record<string, string>,
): void {
  const head = req?.method === 'HEAD';
  if (isReply(res)) {
    res.code(status).header('content-type', contentType).header('cache-control', 'no-store');
    if (headers) for (const k of Object.keys(headers)) res.header(k, headers[k]!);
    res.send(head ? '' : body);
    return;
  }
  res.statusCode = status;
  if (headers) for (const k of Object.keys(headers)) res.setHeader(k, headers[k]!);
  res.setHeader('Content-Type', contentType);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(head ? undefined : body);
}

function isReply(res: ServerResponse | FastifyReplyLike): res is FastifyReplyLike {
  return typeof (res as FastifyReplyLike).code === 'function' && typeof (res as FastifyReplyLike).send === 'function';
}
