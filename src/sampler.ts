/**
 * The sampler snapshot and fresh reads of the kernel's figures.
 *
 * One native thread per process refreshes a snapshot (RSS, process CPU,
 * host CPU ticks and load, a timestamp and a sequence number) every interval,
 * 10 ms by default. Every JS environment maps the snapshot as a
 * `Float64Array`, so reading it is a plain array read: no native call, no
 * allocation, and it keeps moving while this thread is stuck in a synchronous
 * loop. The thread starts on first use and stops when the last environment
 * using it goes away.
 *
 * Where external buffers are refused (Electron's V8 sandbox, or
 * `RESOURCE_GUARD_NO_EXTERNAL_BUFFERS=1`), the view is a private copy that
 * {@link refreshSnapshot} fills with one native call.
 *
 * @module
 */
import { binding, type NativePsiLine } from './binding';
import { PathError, SamplerError } from './errors';
import { validateCpuInterval, validateNumber, validateOneOf, validateString } from './validate';

/** Index of each figure in {@link snapshotView}. */
export const SnapshotField = {
  seq: 0,
  timestampMs: 1,
  rss: 2,
  peakRss: 3,
  cpuUserUs: 4,
  cpuSystemUs: 5,
  sysBusyUs: 6,
  sysIdleUs: 7,
  sysLoad: 8,
  processLoad: 9,
  intervalMs: 10,
  samples: 11,
  cgroupUsage: 12,
  errors: 13,
  cpuCount: 14,
  running: 15,
  loadWindowMs: 16,
  stops: 17,
  sysCpuMs: 18,
} as const;

const layout = binding.layout();
const region = binding.sharedRegion();

/** True when JS reads the process-wide memory directly (the normal case). */
export const sharedMemory: boolean = region !== null;

/**
 * The live snapshot, indexed by {@link SnapshotField}. Single fields are
 * always whole values; use {@link readSnapshot} for a consistent set.
 */
export const snapshotView: Float64Array =
  region !== null ? new Float64Array(region, 0, layout.snapshotSlots) : new Float64Array(layout.snapshotSlots);

/** The shared region itself (budgets live after the snapshot), or null. */
export const sharedRegion: ArrayBuffer | null = region;
export const nativeLayout = layout;

/** Whether the application's own hold (ensureSampler/stopSampler) is taken. */
let started = false;

/**
 * Takes one hold on the sampler for an owner inside the library (a guard, a
 * monitor, a task run) and returns the function that gives it back
 * (idempotent). The thread runs while any hold in the process is taken, so
 * one owner's release, or the application's {@link stopSampler}, never stops
 * the sampler under another owner.
 * @internal
 */
export function acquireSampler(): () => void {
  binding.startSampler();
  if (region === null) binding.copySnapshot(snapshotView);
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    binding.stopSampler();
  };
}

/**
 * Takes the application's hold on the sampler (idempotent): the thread runs
 * from now on, until {@link stopSampler}. Guards and monitors take holds of
 * their own, so this is only needed to read the snapshot view directly.
 */
export function ensureSampler(): void {
  if (started) return;
  binding.startSampler();
  started = true;
  if (region === null) binding.copySnapshot(snapshotView);
}

/**
 * Gives back the application's hold taken by {@link ensureSampler}. The
 * thread stops when no hold is left in the process: every guard and monitor
 * keeps its own until it is closed, so this never blinds them. Once the
 * thread has stopped, the snapshot's `running` is false and its RSS and load
 * figures are NaN (unknown) until it starts again.
 */
export function stopSampler(): void {
  if (!started) return;
  started = false;
  binding.stopSampler();
}

/** Whether the application's hold ({@link ensureSampler}) is taken in this environment. */
export function samplerStarted(): boolean {
  return started;
}

/**
 * Sets the process-wide sampling interval in milliseconds (1 to 60000).
 * @default 10
 */
export function setSamplerInterval(ms: number): void {
  validateNumber(ms, 'ms', 1, 60000);
  binding.setSamplerInterval(ms);
}

/** Fallback mode only: copies the native snapshot into {@link snapshotView}. */
export function refreshSnapshot(): void {
  if (region === null) binding.copySnapshot(snapshotView);
}

/** A consistent copy of the sampler's figures. */
export interface Snapshot {
  /** Even sequence number, +2 per sample. */
  seq: number;
  /** CLOCK_MONOTONIC milliseconds (the clock of `process.hrtime`). */
  timestampMs: number;
  rss: number;
  peakRss: number;
  cpuUserUs: number;
  cpuSystemUs: number;
  sysBusyUs: number;
  sysIdleUs: number;
  /**
   * Host CPU load 0..1 over about the last second (since boot until two
   * readings exist), as of `sysCpuMs`.
   */
  sysLoad: number;
  /** Process CPU seconds per wall second over the window (may exceed 1). */
  processLoad: number;
  intervalMs: number;
  samples: number;
  /** cgroup memory usage in bytes, or null outside a memory cgroup. */
  cgroupUsage: number | null;
  errors: number;
  cpuCount: number;
  running: boolean;
  /** The span `processLoad` covers, in ms. */
  loadWindowMs: number;
  /**
   * When `sysBusyUs`, `sysIdleUs` and `sysLoad` were read (the clock of
   * `timestampMs`): the host's CPU times count in 10 ms ticks and are read at
   * most every 100 ms, so they can be up to that much older than the sample.
   * NaN before the first read or after one that failed.
   */
  sysCpuMs: number;
}

/** Reads the snapshot consistently (sequence lock), starting the sampler if needed. */
export function readSnapshot(): Snapshot {
  ensureSampler();
  const v = snapshotView;
  if (region === null) binding.copySnapshot(v);
  for (;;) {
    const seq = v[0]!;
    if (seq % 2 !== 0) continue;
    const s: Snapshot = {
      seq,
      timestampMs: v[1]!,
      rss: v[2]!,
      peakRss: v[3]!,
      cpuUserUs: v[4]!,
      cpuSystemUs: v[5]!,
      sysBusyUs: v[6]!,
      sysIdleUs: v[7]!,
      sysLoad: v[8]!,
      processLoad: v[9]!,
      intervalMs: v[10]!,
      samples: v[11]!,
      cgroupUsage: Number.isNaN(v[12]!) ? null : v[12]!,
      errors: v[13]!,
      cpuCount: v[14]!,
      running: v[15] === 1,
      loadWindowMs: v[16]!,
      sysCpuMs: v[18]!,
    };
    if (v[0] === seq) return s;
  }
}

// ---- fresh reads ------------------------------------------------------------------

const pair = new Float64Array(2);
const triple = new Float64Array(3);

function check(errno: number, source: string): void {
  if (errno !== 0) throw new SamplerError(source, errno);
}

/** Current resident set size in bytes, read now (Linux: pread of /proc/self/statm). */
export function readRss(): number {
  const v = binding.readRss();
  if (v < 0) throw new SamplerError('resident set size', -v);
  return v;
}

/** Highest resident set size this process has reached, in bytes. */
export function readPeakRss(): number {
  const v = binding.readPeakRss();
  if (v < 0) throw new SamplerError('peak resident set size', -v);
  return v;
}

export interface CpuTimes {
  userUs: number;
  systemUs: number;
}

/** CPU time this process has used (all threads), microseconds. */
export function readProcessCpu(): CpuTimes {
  check(binding.readProcessCpu(pair), 'process CPU time');
  return { userUs: pair[0]!, systemUs: pair[1]! };
}

export interface SystemCpuTimes {
  busyUs: number;
  idleUs: number;
}

/** Cumulative host CPU busy and idle time, microseconds, summed over CPUs. */
export function readSystemCpu(): SystemCpuTimes {
  check(binding.readSystemCpu(pair), 'system CPU time');
  return { busyUs: pair[0]!, idleUs: pair[1]! };
}

/**
 * Host CPU load, 0..1, between two {@link readSystemCpu} readings, `a` taken
 * before `b`: busy time over busy plus idle time. Never NaN and never out of
 * [0, 1]:
 * - when no CPU time passed between them (equal readings) it is 0;
 * - a counter that went back (readings swapped, or counters reset) is
 *   refused with `ERR_INVALID_ARG_VALUE`, since no load can be derived;
 * - readings that are not objects with finite `busyUs` and `idleUs` >= 0 are
 *   refused with `ERR_INVALID_ARG_TYPE` or `ERR_OUT_OF_RANGE`.
 */
export function cpuLoadBetween(a: SystemCpuTimes, b: SystemCpuTimes): number {
  const [busy, idle] = validateCpuInterval(a, b);
  const total = busy + idle;
  return total > 0 ? busy / total : 0;
}

/** Logical CPUs online. */
export function cpuCount(): number {
  return binding.cpuCount();
}

export interface SystemMemory {
  total: number;
  available: number;
}

/** Physical RAM and what can be allocated without swapping, bytes. */
export function readSystemMemory(): SystemMemory {
  check(binding.readSystemMemory(pair), 'system memory');
  return { total: pair[0]!, available: pair[1]! };
}

export interface CgroupInfo {
  /** 0 when the process is in no cgroup (or not on Linux). */
  version: 0 | 1 | 2;
  /** Memory limit in bytes, or null when there is none ("max" / v1's huge value). */
  memoryLimit: number | null;
  memoryUsage: number | null;
  /** CPU quota in CPUs (e.g. 1.5), or null when unlimited. */
  cpuQuota: number | null;
}

/** The control group's memory limit and usage and CPU quota. */
export function readCgroup(): CgroupInfo {
  const c = binding.readCgroup();
  check(c.errno, 'cgroup');
  return { version: c.version, memoryLimit: c.memoryLimit, memoryUsage: c.memoryUsage, cpuQuota: c.cpuQuota };
}

export type PsiLine = NativePsiLine;
export interface PsiInfo {
  some: PsiLine;
  full: PsiLine | null;
}

/** Pressure stall information, or null where the kernel has none. */
export function readPsi(resource: 'memory' | 'cpu' | 'io'): PsiInfo | null {
  validateOneOf(resource, 'resource', ['memory', 'cpu', 'io'] as const);
  const r = binding.readPsi(resource);
  if (typeof r === 'number') {
    if (r === ENOSYS || r === ENOENT) return null;
    throw new SamplerError(`/proc/pressure/${resource}`, r);
  }
  return r;
}

export interface DiskInfo {
  path: string;
  /** Size of the file system, bytes. */
  total: number;
  /** Free bytes, including blocks reserved for root. */
  free: number;
  /** Free bytes an unprivileged process may use. */
  available: number;
}

const ENOENT = 2;
const ENOTDIR = 20;
const ENOSYS = process.platform === 'darwin' ? 78 : process.platform === 'win32' ? 40 : 38;

/**
 * Space on the file system that holds `dir`, which must be an existing
 * directory. Throws {@link PathError} (`ERR_PATH_NOT_FOUND`,
 * `ERR_NOT_A_DIRECTORY`, `ERR_PATH_UNREADABLE`) otherwise.
 */
export function readDisk(dir: string): DiskInfo {
  validateString(dir, 'path');
  const err = binding.readDisk(dir, triple);
  if (err !== 0) throw pathError(dir, err);
  return { path: dir, total: triple[0]!, free: triple[1]!, available: triple[2]! };
}

const diskHandles = new FinalizationRegistry<number>((handle) => binding.diskClose(handle));

/**
 * A directory kept open for repeated disk-space reads: each read is one
 * `fstatvfs` on the kept descriptor instead of a path lookup (Linux, macOS).
 * On Windows, which reads by path, it reads by path. Close it when done; a
 * reader that is garbage-collected is closed for you.
 */
export class DiskReader {
  readonly path: string;
  #handle: number;

  private constructor(path: string, handle: number) {
    this.path = path;
    this.#handle = handle;
    if (handle >= 0) diskHandles.register(this, handle, this);
  }

  /** Opens `dir`, which must be an existing directory (throws {@link PathError}). */
  static open(dir: string): DiskReader {
    validateString(dir, 'path');
    const h = dir.includes('\0') ? -ENOENT : binding.diskOpen(dir);
    if (h >= 0) return new DiskReader(dir, h);
    if (-h === ENOSYS) {
      readDisk(dir); // validates the path the same way
      return new DiskReader(dir, -1);
    }
    throw pathError(dir, -h);
  }

  /** Fills `out` with [total, free, available]; returns 0 or an errno. No allocation. */
  readInto(out: Float64Array): number {
    if (this.#handle === -2) return EBADF;
    return this.#handle >= 0 ? binding.diskRead(this.#handle, out) : binding.readDisk(this.path, out);
  }

  /** Reads the file system's space now. */
  read(): DiskInfo {
    const err = this.readInto(triple);
    if (err !== 0) throw pathError(this.path, err);
    return { path: this.path, total: triple[0]!, free: triple[1]!, available: triple[2]! };
  }

  get closed(): boolean {
    return this.#handle === -2;
  }

  /** Releases the descriptor. Idempotent. */
  close(): void {
    if (this.#handle >= 0) {
      diskHandles.unregister(this);
      binding.diskClose(this.#handle);
    }
    this.#handle = -2;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

const EBADF = 9;

function pathError(dir: string, errno: number): PathError {
  if (errno === ENOENT) return new PathError('ERR_PATH_NOT_FOUND', dir, errno, 'no such file or directory');
  if (errno === ENOTDIR) return new PathError('ERR_NOT_A_DIRECTORY', dir, errno, 'not a directory');
  return new PathError('ERR_PATH_UNREADABLE', dir, errno, `errno ${errno}`);
}
