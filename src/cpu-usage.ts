/**
 * The CPU rule: how busy this process (or its container) is against the CPUs
 * it may use. One rule for health, degradation, metrics, `CpuMonitor` and
 * `ResourceGuard`:
 *
 * - **CPUs it may use**: the cgroup CPU quota (`cpu.max`, or v1
 *   `cpu.cfs_quota_us / cpu.cfs_period_us`), capped by the CPUs the process's
 *   affinity allows (`os.availableParallelism()`); without a quota, that
 *   affinity count; where that is unknown, the logical CPU count.
 * - **CPU used**: the container's CPU time (`cpu.stat usage_usec`, or v1
 *   `cpuacct.usage`) when the process runs in a cgroup of its own (one with
 *   a CPU quota, or a non-root cgroup with CPU accounting: a container);
 *   otherwise this process's own CPU time (all threads). Until the container
 *   counter has been read twice, this process's CPU time stands in.
 * - **load** = CPU used per wall second / CPUs it may use, capped at 1.
 *
 * Host-wide load (`/proc/stat`) is reported beside it as `host`, and is an
 * input of its own (`hostCpu`) that judges nothing unless given thresholds.
 *
 * @module
 */
import { readFileSync, existsSync } from 'node:fs';
import { availableParallelism, cpus as osCpus } from 'node:os';
import { validateFunction, validateNumber, validateObject } from './validate';
import { SnapshotField, acquireSampler, cpuCount, readCgroup, refreshSnapshot, sharedMemory, snapshotView } from './sampler';

/** What a CPU load is measured on. */
export type CpuBasis = 'process' | 'container';

/** Where the number of CPUs came from. */
export type CpuAllowanceSource = 'quota' | 'affinity' | 'count';

/** One reading of the CPU rule. */
export interface CpuReading {
  /** CPU used / CPUs it may use, 0..1 (NaN when unknown). */
  load: number;
  /** Whose CPU time `load` counts. */
  basis: CpuBasis;
  /** CPU-seconds per wall second used on that basis (may exceed 1). */
  cores: number;
  /** CPU-seconds per wall second used by this process alone. */
  processCores: number;
  /** CPUs the process may use (may be fractional under a quota). */
  cpus: number;
  cpusSource: CpuAllowanceSource;
  /** The cgroup CPU quota in CPUs, or null. */
  quota: number | null;
  /** Host-wide CPU load 0..1 (separate input), or null when unknown. */
  host: number | null;
}

/** Where a {@link CpuUsageTracker} reads its figures; every member is optional and replaces the real source. */
export interface CpuUsageSource {
  /** Cumulative CPU time of the container, microseconds, or null when there is no container accounting. */
  containerUsageUs?(): number | null;
  /** CPU-seconds per wall second this process uses. */
  processCores?(): number;
  /** cgroup CPU quota in CPUs, or null. */
  quota?(): number | null;
  /** CPUs the affinity mask allows. */
  affinity?(): number;
  /** Host load 0..1. */
  host?(): number;
  /** Monotonic milliseconds. */
  now?(): number;
}

// ---- cgroup CPU accounting ------------------------------------------------------

interface CgroupCpuPaths {
  /** File with the container's cumulative CPU time, or null. */
  file: string | null;
  /** 'usec' for v2 cpu.stat, 'nsec' for v1 cpuacct.usage. */
  kind: 'usec' | 'nsec';
}

let cpuPaths: CgroupCpuPaths | undefined;

function locate(mount: string, path: string, file: string): string | null {
  let p = path;
  for (;;) {
    const dir = mount + (p === '/' ? '' : p);
    if (existsSync(`${dir}/${file}`)) return dir;
    if (p === '' || p === '/') return null;
    const slash = p.lastIndexOf('/');
    p = slash <= 0 ? '/' : p.slice(0, slash);
  }
}

/**
 * Finds the file holding this process's cgroup CPU time. cgroup v2: the
 * cgroup's `cpu.stat` when the cgroup is not the host's root (a root cgroup
 * has no `cpu.max`). v1: `cpuacct.usage` of a cgroup other than `/`.
 */
export function resolveCgroupCpu(procSelfCgroup?: string, root = '/sys/fs/cgroup'): CgroupCpuPaths {
  let text: string;
  try {
    text = procSelfCgroup ?? readFileSync('/proc/self/cgroup', 'utf8');
  } catch {
    return { file: null, kind: 'usec' };
  }
  let v2: string | null = null;
  let v1: string | null = null;
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    const b = line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    const id = line.slice(0, a);
    const ctrl = line.slice(a + 1, b);
    const path = line.slice(b + 1).trim();
    if (id === '0' && ctrl === '') v2 = path;
    else if (`,${ctrl},`.includes(',cpuacct,')) v1 = path;
  }
  if (v1 !== null) {
    if (v1 === '/') return { file: null, kind: 'nsec' };
    for (const mount of [`${root}/cpuacct`, `${root}/cpu,cpuacct`, `${root}/cpuacct,cpu`]) {
      const dir = locate(mount, v1, 'cpuacct.usage');
      if (dir !== null) return { file: `${dir}/cpuacct.usage`, kind: 'nsec' };
    }
    return { file: null, kind: 'nsec' };
  }
  if (v2 !== null) {
    const dir = locate(root, v2, 'cpu.max');
    if (dir !== null && existsSync(`${dir}/cpu.stat`)) return { file: `${dir}/cpu.stat`, kind: 'usec' };
  }
  return { file: null, kind: 'usec' };
}

/** Cumulative CPU time of this process's container in microseconds, or null where there is none. */
export function readContainerCpuUs(): number | null {
  cpuPaths ??= process.platform === 'linux' ? resolveCgroupCpu() : { file: null, kind: 'usec' };
  const { file, kind } = cpuPaths;
  if (file === null) return null;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  if (kind === 'nsec') {
    const ns = Number(text.trim());
    return Number.isFinite(ns) && ns >= 0 ? ns / 1000 : null;
  }
  const m = /^usage_usec\s+(\d+)/m.exec(text);
  return m ? Number(m[1]) : null;
}

/** CPUs the affinity mask allows (`os.availableParallelism()`), else the logical CPU count. */
export function affinityCpus(): number {
  try {
    const n = availableParallelism();
    if (n > 0) return n;
  } catch {
    // Older runtimes: fall through.
  }
  const n = osCpus().length;
  return n > 0 ? n : cpuCount();
}

function readQuota(): number | null {
  try {
    const q = readCgroup().cpuQuota;
    return q !== null && q > 0 ? q : null;
  } catch {
    return null;
  }
}

function processCoresNow(): number {
  if (!sharedMemory) refreshSnapshot();
  const v = snapshotView[SnapshotField.processLoad]!;
  if (v >= 0 && v < Infinity) return v;
  // Before the sampler's second sample: the average since the process started.
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6 / Math.max(1e-3, process.uptime());
}

function hostNow(): number {
  if (!sharedMemory) refreshSnapshot();
  return snapshotView[SnapshotField.sysLoad]!;
}

const monotonicNow = (): number => performance.now();

export interface CpuUsageTrackerOptions {
  /** Shortest window over which the container's CPU time is measured, ms. @default 1000 */
  windowMs?: number;
  /** Replaces real sources (tests, other platforms). */
  source?: CpuUsageSource;
}

/**
 * Applies the CPU rule (see the module text). Keeps a window over the
 * container's CPU counter; `read()` is cheap (one small file read when the
 * process is in a container, array reads otherwise).
 */
export class CpuUsageTracker {
  readonly #windowMs: number;
  readonly #src: Required<CpuUsageSource>;
  readonly #fixedQuota: boolean;
  #quota: number | null = null;
  #release: (() => void) | null = null;
  #baseT = NaN;
  #baseU = NaN;
  #cores = NaN;

  constructor(options: CpuUsageTrackerOptions = {}) {
    validateObject(options, 'options');
    this.#windowMs = options.windowMs === undefined ? 1000 : validateNumber(options.windowMs, 'options.windowMs', 1, 3_600_000);
    const s = options.source === undefined ? {} : validateObject<CpuUsageSource>(options.source, 'options.source');
    for (const k of ['containerUsageUs', 'processCores', 'quota', 'affinity', 'host', 'now'] as const) {
      if (s[k] !== undefined) validateFunction(s[k], `options.source.${k}`);
    }
    if (s.processCores === undefined || s.host === undefined) {
      // A hold of its own: the application's stopSampler() cannot blind it.
      const release = acquireSampler();
      this.#release = release;
      holds.register(this, release, this);
    }
    this.#src = {
      containerUsageUs: s.containerUsageUs ?? readContainerCpuUs,
      processCores: s.processCores ?? processCoresNow,
      quota: s.quota ?? readQuota,
      affinity: s.affinity ?? affinityCpus,
      host: s.host ?? hostNow,
      now: s.now ?? monotonicNow,
    };
    // The real quota is read once: it is set when the container starts.
    this.#fixedQuota = s.quota === undefined;
    if (this.#fixedQuota) this.#quota = readQuota();
    this.#sampleContainer();
  }

  #sampleContainer(): number | null {
    const u = this.#src.containerUsageUs();
    if (u === null || !(u >= 0)) return null;
    const t = this.#src.now();
    if (Number.isNaN(this.#baseT)) {
      this.#baseT = t;
      this.#baseU = u;
      return u;
    }
    const dt = t - this.#baseT;
    if (dt >= this.#windowMs && dt > 0) {
      this.#cores = Math.max(0, (u - this.#baseU) / 1000 / dt);
      this.#baseT = t;
      this.#baseU = u;
    }
    return u;
  }

  /** Reads the figures now. */
  read(): CpuReading {
    const quotaRaw = this.#quotaNow();
    const affinity = this.#src.affinity();
    let cpus: number;
    let cpusSource: CpuAllowanceSource;
    if (quotaRaw !== null) {
      cpus = affinity > 0 ? Math.min(quotaRaw, affinity) : quotaRaw;
      cpusSource = 'quota';
    } else if (affinity > 0) {
      cpus = affinity;
      cpusSource = 'affinity';
    } else {
      cpus = cpuCount();
      cpusSource = 'count';
    }
    const processCores = sane(this.#src.processCores());
    const container = this.#sampleContainer();
    let basis: CpuBasis = 'process';
    let cores = processCores;
    if (container !== null && !Number.isNaN(this.#cores)) {
      basis = 'container';
      cores = this.#cores;
    }
    const load = cpus > 0 && cores >= 0 ? Math.min(1, cores / cpus) : NaN;
    const h = sane(this.#src.host());
    return { load, basis, cores, processCores, cpus, cpusSource, quota: quotaRaw, host: Number.isNaN(h) ? null : h };
  }

  /** Gives back its hold on the sampler thread (idempotent); later reads still work from fresh reads. */
  close(): void {
    if (this.#release === null) return;
    holds.unregister(this);
    this.#release();
    this.#release = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #quotaNow(): number | null {
    if (this.#fixedQuota) return this.#quota;
    const q = this.#src.quota();
    return q !== null && q > 0 && q < Infinity ? q : null;
  }
}

function sane(x: unknown): number {
  return typeof x === 'number' && x >= 0 && x < Infinity ? x : NaN;
}

const holds = new FinalizationRegistry<() => void>((release) => release());

let shared: CpuUsageTracker | null = null;

/** The process-wide tracker used by health, metrics and `CpuMonitor` by default. */
export function sharedCpuTracker(): CpuUsageTracker {
  shared ??= new CpuUsageTracker();
  return shared;
}
