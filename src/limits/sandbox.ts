/**
 * Sandbox settings of a limited run beyond its `limits`: an idle timeout,
 * IO read/write rates and an open-files limit on the task's IO meter
 * (`ctx.io`). Given as `runWithLimits(task, limits, { sandbox })`.
 *
 * Idle: the task's worker stamps the time of its last activity (any
 * successful IO charge, file open or close, or fuel checkpoint) into the
 * run's shared memory; the parent's periodic check ends the run with
 * `TimeoutError` (`operation: 'idle'`) once nothing happened for more than
 * `idleTimeout` ms. The start of the task counts as activity.
 *
 * This module must not load the native addon: the task worker imports it.
 *
 * @module
 */
import { isMainThread, workerData } from 'node:worker_threads';
import { InvalidArgTypeError, OutOfRangeError, ResourceError } from '../errors';
import { TimeoutError } from './errors';
import type { IoMeterOptions, IoRate } from './io';
import { GrowthRateMeter, NetworkMeter, ThreadMeter } from './meters';
import { Slot } from './shared';
import type { SandboxUsage } from './types';
import { amountOf, windowOf } from './window';

/** Sandbox settings of a run (all optional). */
export interface SandboxOptions {
  /** Milliseconds without activity after which the run ends with `TimeoutError` (`operation: 'idle'`). */
  idleTimeout?: number;
  /** Bytes the task may write through `ctx.io` per sliding window. */
  ioWriteRate?: IoRate;
  /** Bytes the task may read through `ctx.io` per sliding window. */
  ioReadRate?: IoRate;
  /** Files the task may hold open through `ctx.io` at once. */
  openFiles?: number;
  /** Memory growth per sliding window, through `taskSandbox().memory`: bytes or 64 KiB pages. */
  memoryGrowthRate?: { bytes?: number; pages?: number; windowMs: number };
  /** Workers the task may run at once through `taskSandbox().threads`. */
  threads?: number;
  /** Network limits of `taskSandbox().network`. */
  network?: { connections?: number; requestsPerSecond?: number; bytesSent?: number; bytesReceived?: number };
}

/** Validated sandbox settings (plain data: it crosses into the worker). */
export interface SandboxSettings {
  idleTimeout: number | null;
  ioWriteRate: IoRate | null;
  ioReadRate: IoRate | null;
  openFiles: number | null;
  memoryGrowthRate: { limit: number; unit: 'bytes' | 'pages'; windowMs: number } | null;
  threads: number | null;
  network: { connections?: number; requestsPerSecond?: number; bytesSent?: number; bytesReceived?: number } | null;
}

/**
 * Slot of the run's shared `Float64Array` holding the epoch time (ms) of the
 * task's last activity; 0 until the task starts. The first slots belong to
 * the run's own figures (see shared.ts); this one is kept apart at the end.
 */
export const ACTIVITY_SLOT = 15;

/** Validates `options.sandbox`; throws a typed error before any worker starts. */
export function resolveSandbox(value: unknown, name = 'options.sandbox'): SandboxSettings | null {
  if (typeof name !== 'string') throw new InvalidArgTypeError('name', 'of type string', name);
  if (value === undefined) return null;
  if (typeof value !== 'object' || value === null) throw new InvalidArgTypeError(name, 'of type object', value);
  const o = value as SandboxOptions;
  const known = ['idleTimeout', 'ioWriteRate', 'ioReadRate', 'openFiles', 'memoryGrowthRate', 'threads', 'network'];
  for (const key of Object.keys(o)) {
    if (!known.includes(key)) throw new OutOfRangeError(`${name}.${key}`, `one of ${known.join(', ')}`, key);
  }
  let idle: number | null = null;
  if (o.idleTimeout !== undefined) {
    idle = windowOf(o.idleTimeout, `${name}.idleTimeout`);
    if (idle > 2 ** 31 - 1) throw new OutOfRangeError(`${name}.idleTimeout`, `at most ${2 ** 31 - 1} ms`, idle);
  }
  return {
    idleTimeout: idle,
    ioWriteRate: rate(o.ioWriteRate, `${name}.ioWriteRate`),
    ioReadRate: rate(o.ioReadRate, `${name}.ioReadRate`),
    openFiles: o.openFiles === undefined ? null : amountOf(o.openFiles, `${name}.openFiles`),
    memoryGrowthRate: growth(o.memoryGrowthRate, `${name}.memoryGrowthRate`),
    threads: o.threads === undefined ? null : amountOf(o.threads, `${name}.threads`),
    network: network(o.network, `${name}.network`),
  };
}

function growth(v: unknown, name: string): SandboxSettings['memoryGrowthRate'] {
  if (v === undefined) return null;
  if (typeof v !== 'object' || v === null) throw new InvalidArgTypeError(name, 'of type object ({ bytes | pages, windowMs })', v);
  const g = v as { bytes?: unknown; pages?: unknown; windowMs?: unknown };
  if ((g.bytes === undefined) === (g.pages === undefined)) throw new InvalidArgTypeError(name, 'an object with exactly one of bytes and pages', v);
  const windowMs = windowOf(g.windowMs, `${name}.windowMs`);
  return g.bytes !== undefined
    ? { limit: amountOf(g.bytes, `${name}.bytes`), unit: 'bytes', windowMs }
    : { limit: amountOf(g.pages, `${name}.pages`), unit: 'pages', windowMs };
}

function network(v: unknown, name: string): SandboxSettings['network'] {
  if (v === undefined) return null;
  if (typeof v !== 'object' || v === null) throw new InvalidArgTypeError(name, 'of type object', v);
  const out: NonNullable<SandboxSettings['network']> = {};
  for (const [key, value] of Object.entries(v)) {
    if (key !== 'connections' && key !== 'requestsPerSecond' && key !== 'bytesSent' && key !== 'bytesReceived') {
      throw new OutOfRangeError(`${name}.${key}`, 'one of connections, requestsPerSecond, bytesSent, bytesReceived', key);
    }
    out[key] = amountOf(value, `${name}.${key}`);
  }
  return out;
}

/** Meters a task gets from {@link taskSandbox}. */
export interface TaskSandbox {
  /** Memory growth per window (null without `memoryGrowthRate`). Call `grow(n)` before growing. */
  memory: GrowthRateMeter | null;
  /** Start workers through `threads.startWorker()`. */
  threads: ThreadMeter;
  /** Use `network.fetch()`. */
  network: NetworkMeter;
}

/** taskSandbox() was called outside a task worker of runWithLimits. */
export class NotInTaskError extends ResourceError {
  constructor() {
    super('ERR_NOT_IN_TASK', 'taskSandbox() can only be called inside a task run by runWithLimits');
  }
}

let meters: TaskSandbox | null = null;

/**
 * Inside a task run by `runWithLimits`: the run's memory-growth, thread and
 * network meters, set from `options.sandbox`, whose use counts as activity
 * for the idle timeout. The same meters on every call. A refusal throws a
 * typed error (`ERR_MEMORY_GROWTH_RATE`, `ERR_THREADS_LIMIT`,
 * `ERR_CONNECTIONS_LIMIT`, `ERR_NETWORK_RATE`, `ERR_NETWORK_BYTES_LIMIT`);
 * a task that lets it escape ends with it.
 */
export function taskSandbox(): TaskSandbox {
  if (meters !== null) return meters;
  const data = workerData as { shared?: unknown; sandbox?: SandboxSettings | null } | null;
  if (isMainThread || data === null || typeof data !== 'object' || !(data.shared instanceof SharedArrayBuffer)) throw new NotInTaskError();
  const view = new Float64Array(data.shared);
  // Every use stamps the activity time and publishes the meters' figures
  // into the run's shared memory, where the parent reads them for the usage
  // report, also when it has to end the worker from outside.
  const onActivity = (): void => {
    markActivity(view, performance.timeOrigin + performance.now());
    if (meters !== null) publishMeters(view, meters);
  };
  const s = data.sandbox ?? null;
  const g = s?.memoryGrowthRate ?? null;
  meters = {
    memory: g === null ? null : new GrowthRateMeter({ limit: g.limit, windowMs: g.windowMs, unit: g.unit, onActivity }),
    threads: new ThreadMeter({ threads: s?.threads ?? undefined, onActivity }),
    network: new NetworkMeter({ ...(s?.network ?? {}), onActivity }),
  };
  return meters;
}

function rate(v: unknown, name: string): IoRate | null {
  if (v === undefined) return null;
  if (typeof v !== 'object' || v === null) throw new InvalidArgTypeError(name, 'of type object ({ bytes, windowMs })', v);
  const r = v as { bytes?: unknown; windowMs?: unknown };
  return { bytes: amountOf(r.bytes, `${name}.bytes`), windowMs: windowOf(r.windowMs, `${name}.windowMs`) };
}

/** IO meter options for the worker (rates, open files, activity stamping). */
export function sandboxIoOptions(s: SandboxSettings | null | undefined, view: Float64Array, epochNow: () => number): Partial<IoMeterOptions> {
  const out: Partial<IoMeterOptions> = { onActivity: () => markActivity(view, epochNow()) };
  if (s == null) return out;
  if (s.ioWriteRate !== null) out.writeRate = s.ioWriteRate;
  if (s.ioReadRate !== null) out.readRate = s.ioReadRate;
  if (s.openFiles !== null) out.openFiles = s.openFiles;
  return out;
}

function publishMeters(view: Float64Array, m: TaskSandbox): void {
  if (m.memory !== null) view[Slot.memoryGrowth] = m.memory.total;
  view[Slot.threadsStarted] = m.threads.started;
  view[Slot.threadsPeak] = m.threads.peak;
  view[Slot.networkRequests] = m.network.requests;
  view[Slot.networkBytesSent] = m.network.bytesSent;
  view[Slot.networkBytesReceived] = m.network.bytesReceived;
  view[Slot.networkConnectionsPeak] = m.network.peakConnections;
}

/**
 * The sandbox part of a run's usage report, from the figures the task's
 * meters published into the run's shared memory, as they stood when the
 * task ended (`meters`: the values of {@link SANDBOX_SLOTS}, in order).
 */
export function sandboxUsage(s: SandboxSettings | null, meters: readonly number[], startEpoch: number | null): SandboxUsage {
  const at = (slot: number): number => meters[SANDBOX_SLOTS.indexOf(slot as (typeof SANDBOX_SLOTS)[number])]!;
  const last = at(ACTIVITY_SLOT);
  return {
    limits: s,
    memoryGrowth: at(Slot.memoryGrowth),
    memoryGrowthUnit: s?.memoryGrowthRate?.unit ?? null,
    threadsStarted: at(Slot.threadsStarted),
    threadsPeak: at(Slot.threadsPeak),
    openFilesPeak: at(Slot.openFilesPeak),
    networkRequests: at(Slot.networkRequests),
    networkBytesSent: at(Slot.networkBytesSent),
    networkBytesReceived: at(Slot.networkBytesReceived),
    networkConnectionsPeak: at(Slot.networkConnectionsPeak),
    lastActivity: last > 0 && startEpoch !== null ? Math.max(0, last - startEpoch) : null,
  };
}

/** The slots of the run's shared memory that sandboxUsage() reads, the activity stamp included. */
export const SANDBOX_SLOTS = [
  Slot.openFilesPeak,
  Slot.threadsStarted,
  Slot.threadsPeak,
  Slot.memoryGrowth,
  Slot.networkRequests,
  Slot.networkBytesSent,
  Slot.networkBytesReceived,
  Slot.networkConnectionsPeak,
  ACTIVITY_SLOT,
] as const;

/** Stamps activity at `epochMs`. */
function finiteTime(value: unknown, name: string): void {
  if (typeof value !== 'number') throw new InvalidArgTypeError(name, 'of type number', value);
  if (!Number.isFinite(value)) throw new OutOfRangeError(name, 'a finite number of milliseconds', value);
}

export function markActivity(view: Float64Array, epochMs: number): void {
  view[ACTIVITY_SLOT] = epochMs;
}

/**
 * The idle breach at `epochNow`, or null: idle exactly `idleTimeout` ms is
 * still alive. Before the task's first stamp, its start counts.
 */
export function idleBreach(s: SandboxSettings | null, view: Float64Array, startEpoch: number, epochNow: number): TimeoutError | null {
  if (s !== null && (typeof s !== 'object' || Array.isArray(s))) throw new InvalidArgTypeError('s', 'settings from resolveSandbox() or null', s);
  const limit = s === null ? null : s.idleTimeout;
  if (limit !== null) {
    if (typeof limit !== 'number') throw new InvalidArgTypeError('s.idleTimeout', 'of type number or null', limit);
    if (!Number.isFinite(limit) || limit <= 0 || limit > 2 ** 31 - 1) throw new OutOfRangeError('s.idleTimeout', `a number of milliseconds > 0 and <= ${2 ** 31 - 1}`, limit);
  }
  if (!(view instanceof Float64Array)) throw new InvalidArgTypeError('view', 'an instance of Float64Array', view);
  finiteTime(startEpoch, 'startEpoch');
  finiteTime(epochNow, 'epochNow');
  if (s === null || s.idleTimeout === null) return null;
  const last = Math.max(view[ACTIVITY_SLOT] ?? 0, startEpoch);
  const idle = epochNow - last;
  return idle > s.idleTimeout ? new TimeoutError(s.idleTimeout, idle, 'task', 'idle') : null;
}
