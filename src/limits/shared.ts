/**
 * What the parent and the task worker of one run share: the layout of the
 * run's `SharedArrayBuffer`, the data the worker starts with, the messages it
 * sends, a per-thread CPU clock, and errors turned into plain data and back.
 *
 * The worker writes the counters; the parent only reads them. Each slot is an
 * aligned 8-byte float written whole, so a reader sees an old or a new value,
 * never a torn one. The final figures come by message when the task ends
 * (the sandbox meters' included); a run ended from outside reports what the
 * slots held when it ended.
 *
 * This module must not load the native addon: the task worker imports it.
 *
 * @module
 */
import * as fs from 'node:fs';

/** Index of each figure in the run's shared `Float64Array`. */
export const Slot = {
  fuelUsed: 0,
  heapUsed: 1,
  heapPeak: 2,
  ioWritten: 3,
  ioRead: 4,
  budgetReserved: 5,
  budgetHeld: 6,
  budgetPeak: 7,
  /** Kernel thread id of the worker, or -1 where there is none to read. */
  tid: 8,
  /** V8's heap size limit in the worker, bytes. */
  heapSizeLimit: 9,
  // Sandbox meters (sandbox.ts), published at each use; slot 15 is the
  // activity stamp (ACTIVITY_SLOT).
  /** Most files held open at once through `ctx.io`. */
  openFilesPeak: 10,
  /** Workers started through `taskSandbox().threads`. */
  threadsStarted: 11,
  /** Most of those running at once. */
  threadsPeak: 12,
  /** Memory growth granted by `taskSandbox().memory`, in its unit (bytes or pages). */
  memoryGrowth: 13,
  /** Requests let through `taskSandbox().network`. */
  networkRequests: 14,
  networkBytesSent: 16,
  networkBytesReceived: 17,
  /** Most network connections at once. */
  networkConnectionsPeak: 18,
} as const;

export const SLOTS = 24;

/** How the worker finds the task. */
export type TaskSpec =
  | { kind: 'module'; url: string; exportName: string }
  | { kind: 'source'; source: string };

/** `workerData` of a task worker. */
export interface WorkerData {
  shared: SharedArrayBuffer;
  task: TaskSpec;
  input: unknown;
  fuel: number | null;
  ioWrite: number | null;
  ioRead: number | null;
  budget: { name: string; limit: number | undefined } | null;
  /** Milliseconds between heap publications. */
  publishMs: number;
  limits: unknown;
}

/** A plain-data error that crosses the thread boundary with its fields. */
export interface ErrorData {
  name: string;
  message: string;
  stack: string | undefined;
  code: string | undefined;
  /** Own enumerable fields with primitive values (limit, used, …). */
  fields: Record<string, string | number | boolean | null>;
  cause?: ErrorData;
}

/** Figures the worker measures itself at the end of the task. */
export interface FinalUsage {
  endEpoch: number;
  cpuNs: number;
  rss: number;
  fuelUsed: number;
  heapUsed: number;
  heapPeak: number;
  ioWritten: number;
  ioRead: number;
  budgetReserved: number;
  budgetPeak: number;
  /** The sandbox meters' slots at the task's end, in `SANDBOX_SLOTS` order (sandbox.ts). */
  meters: number[];
}

export type WorkerMessage =
  | { type: 'started'; startEpoch: number; rss: number; cpuNs: number }
  | { type: 'done'; ok: true; value: unknown; usage: FinalUsage }
  | { type: 'done'; ok: false; error: ErrorData; breach: boolean; phase: 'load' | 'task'; usage: FinalUsage | null };

/**
 * CPU time of one thread in nanoseconds from its `schedstat` file (Linux:
 * the first field is time spent on a CPU, in ns), or NaN when unreadable.
 */
export function threadCpuNs(schedstatPath: string): number {
  try {
    const text = fs.readFileSync(schedstatPath, 'latin1');
    const end = text.indexOf(' ');
    const v = Number(end > 0 ? text.slice(0, end) : text);
    return Number.isFinite(v) ? v : NaN;
  } catch {
    return NaN;
  }
}

/** Kernel id of the calling thread, or -1 (not Linux, or /proc unavailable). */
export function currentTid(): number {
  if (process.platform !== 'linux') return -1;
  try {
    const link = fs.readlinkSync('/proc/thread-self'); // "<pid>/task/<tid>"
    const tid = Number(link.slice(link.lastIndexOf('/') + 1));
    return Number.isInteger(tid) && tid > 0 ? tid : -1;
  } catch {
    return -1;
  }
}

/** Turns any thrown value into {@link ErrorData}. */
export function errorToData(err: unknown, depth = 0): ErrorData {
  if (!(err instanceof Error)) {
    return { name: 'Error', message: describeThrown(err), stack: undefined, code: undefined, fields: { thrown: typeof err } };
  }
  const fields: ErrorData['fields'] = {};
  for (const key of Object.keys(err)) {
    if (key === 'code' || key === 'message' || key === 'stack' || key === 'name' || key === 'cause') continue;
    const v = (err as unknown as Record<string, unknown>)[key];
    if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') fields[key] = v;
  }
  const code = (err as { code?: unknown }).code;
  const data: ErrorData = {
    name: err.name,
    message: err.message,
    stack: err.stack,
    code: typeof code === 'string' ? code : undefined,
    fields,
  };
  if (err.cause !== undefined && depth < 4) data.cause = errorToData(err.cause, depth + 1);
  return data;
}

function describeThrown(v: unknown): string {
  try {
    return `Non-error value thrown: ${typeof v === 'string' ? v : JSON.stringify(v) ?? String(v)}`;
  } catch {
    return `Non-error value thrown: ${String(v)}`;
  }
}
