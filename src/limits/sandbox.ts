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
import { InvalidArgTypeError, OutOfRangeError } from '../errors';
import { TimeoutError } from './errors';
import type { IoMeterOptions, IoRate } from './io';
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
}

/** Validated sandbox settings (plain data: it crosses into the worker). */
export interface SandboxSettings {
  idleTimeout: number | null;
  ioWriteRate: IoRate | null;
  ioReadRate: IoRate | null;
  openFiles: number | null;
}

/**
 * Slot of the run's shared `Float64Array` holding the epoch time (ms) of the
 * task's last activity; 0 until the task starts. The first slots belong to
 * the run's own figures (see shared.ts); this one is kept apart at the end.
 */
export const ACTIVITY_SLOT = 15;

/** Validates `options.sandbox`; throws a typed error before any worker starts. */
export function resolveSandbox(value: unknown, name = 'options.sandbox'): SandboxSettings | null {
  if (value === undefined) return null;
  if (typeof value !== 'object' || value === null) throw new InvalidArgTypeError(name, 'of type object', value);
  const o = value as SandboxOptions;
  const known = ['idleTimeout', 'ioWriteRate', 'ioReadRate', 'openFiles'];
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
  };
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

/** Stamps activity at `epochMs`. */
export function markActivity(view: Float64Array, epochMs: number): void {
  view[ACTIVITY_SLOT] = epochMs;
}

/**
 * The idle breach at `epochNow`, or null: idle exactly `idleTimeout` ms is
 * still alive. Before the task's first stamp, its start counts.
 */
export function idleBreach(s: SandboxSettings | null, view: Float64Array, startEpoch: number, epochNow: number): TimeoutError | null {
  if (s === null || s.idleTimeout === null) return null;
  const last = Math.max(view[ACTIVITY_SLOT] ?? 0, startEpoch);
  const idle = epochNow - last;
  return idle > s.idleTimeout ? new TimeoutError(s.idleTimeout, idle, 'task', 'idle') : null;
}
