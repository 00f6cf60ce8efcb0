/**
 * Entry point of the worker thread that `runWithLimits` starts. It loads the
 * task, publishes its baselines, runs it with a fuel budget, an IO meter and
 * (when asked) a byte budget, and reports the outcome with the figures it
 * measured itself. The parent enforces time, CPU and RSS limits and
 * terminates this thread on a breach; V8 enforces the heap limit.
 *
 * Breaches of fuel and IO budgets are sticky: a task that catches the
 * `FuelExhaustedError` (or `IoLimitError`) and carries on still fails with it.
 *
 * Runs as compiled JavaScript only (`dist/limits/worker.js`), and loads the
 * native addon only when the run has a byte budget.
 *
 * @module
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import * as v8 from 'node:v8';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { InvalidArgValueError } from '../errors';
import { TaskBudget, type TaskContext } from './context';
import { Fuel } from './fuel';
import { IoMeter } from './io';
import {
  Slot,
  currentTid,
  errorToData,
  threadCpuNs,
  type FinalUsage,
  type TaskSpec,
  type WorkerData,
  type WorkerMessage,
} from './shared';
import type { ResolvedLimits } from './types';
import { SANDBOX_SLOTS, markActivity, sandboxIoOptions, type SandboxSettings } from './sandbox';

if (isMainThread || parentPort === null) {
  throw new Error('resource-guard: limits/worker.js is the entry point of a task worker; runWithLimits starts it');
}

const port = parentPort;
const data = workerData as WorkerData;
const view = new Float64Array(data.shared);
const SCHEDSTAT = '/proc/thread-self/schedstat';

let breach: Error | null = null;
let lastHeapPublish = -Infinity;

function publishHeap(force: boolean): void {
  const now = performance.now();
  if (!force && now - lastHeapPublish < data.publishMs) return;
  lastHeapPublish = now;
  const used = v8.getHeapStatistics().used_heap_size;
  view[Slot.heapUsed] = used;
  if (used > view[Slot.heapPeak]!) view[Slot.heapPeak] = used;
}

function cpuNow(): number {
  return view[Slot.tid]! > 0 ? threadCpuNs(SCHEDSTAT) : NaN;
}

function finalUsage(fuel: Fuel, io: IoMeter): FinalUsage {
  publishHeap(true);
  view[Slot.fuelUsed] = fuel.used;
  return {
    endEpoch: performance.timeOrigin + performance.now(),
    cpuNs: cpuNow(),
    rss: process.memoryUsage.rss(),
    fuelUsed: fuel.used,
    heapUsed: view[Slot.heapUsed]!,
    heapPeak: view[Slot.heapPeak]!,
    ioWritten: io.written,
    ioRead: io.read,
    budgetReserved: view[Slot.budgetReserved]!,
    budgetPeak: view[Slot.budgetPeak]!,
    meters: Array.from(SANDBOX_SLOTS, (i) => view[i]!),
  };
}

async function loadTask(spec: TaskSpec): Promise<(input: unknown, ctx: TaskContext) => unknown> {
  if (spec.kind === 'source') {
    // Source tasks get a require() that resolves from the working directory.
    const req = createRequire(path.join(process.cwd(), 'limited-task.js'));
    const fn: unknown = new Function('require', `'use strict';\nreturn (${spec.source}\n);`)(req);
    if (typeof fn !== 'function') throw new InvalidArgValueError('task', spec.source, 'must be the source of a function');
    return fn as (input: unknown, ctx: TaskContext) => unknown;
  }
  const fn = pick(await loadModule(spec.url), spec.exportName);
  if (typeof fn !== 'function') {
    throw new InvalidArgValueError('task.export', spec.exportName, `must name a function exported by ${spec.url}`);
  }
  return fn as (input: unknown, ctx: TaskContext) => unknown;
}

/**
 * CommonJS through require() (a few times faster to start than the ES
 * module loader), anything else through import().
 */
async function loadModule(url: string): Promise<unknown> {
  const file = fileURLToPath(url);
  if (!file.endsWith('.mjs')) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return require(file) as unknown;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') throw err;
    }
  }
  return import(url);
}

/** The export called `name` of a CommonJS module or an ES module namespace. */
function pick(mod: unknown, name: string): unknown {
  if (name === 'default' && typeof mod === 'function') return mod;
  if (typeof mod !== 'object' || mod === null) return undefined;
  const m = mod as Record<string, unknown>;
  if (m[name] !== undefined) return m[name];
  // A CommonJS module imported as ES: its exports sit under `default`.
  const d = m.default;
  return name !== 'default' && typeof d === 'object' && d !== null ? (d as Record<string, unknown>)[name] : undefined;
}

function post(message: WorkerMessage): void {
  port.postMessage(message);
}

async function main(): Promise<void> {
  view[Slot.tid] = currentTid();
  view[Slot.heapSizeLimit] = v8.getHeapStatistics().heap_size_limit;

  const fuel = new Fuel(data.fuel ?? Infinity, {
    onCheckpoint(used) {
      markActivity(view, performance.timeOrigin + performance.now());
      view[Slot.fuelUsed] = used;
      publishHeap(false);
    },
    onExhausted(err) {
      breach ??= err;
    },
  });
  const ioSandbox = sandboxIoOptions((data as WorkerData & { sandbox?: SandboxSettings | null }).sandbox, view, () => performance.timeOrigin + performance.now());
  const stamp = ioSandbox.onActivity;
  // Each use also publishes the open-files peak for the usage report.
  ioSandbox.onActivity = () => {
    stamp?.();
    view[Slot.openFilesPeak] = io.peakOpenFiles;
  };
  const io: IoMeter = new IoMeter({
    writeLimit: data.ioWrite ?? Infinity,
    readLimit: data.ioRead ?? Infinity,
    onCharge(written, read) {
      view[Slot.ioWritten] = written;
      view[Slot.ioRead] = read;
    },
    onExceeded(err) {
      breach ??= err;
    },
    ...ioSandbox,
  });

  let fn: (input: unknown, ctx: TaskContext) => unknown;
  let budget: TaskBudget | null = null;
  try {
    if (data.budget !== null) {
      // Loaded here only: it loads the native addon.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { Budget } = require('../budget') as typeof import('../budget');
      const b = Budget.open(data.budget.name, data.budget.limit);
      budget = new TaskBudget(b, (reserved, held, peak) => {
        view[Slot.budgetReserved] = reserved;
        view[Slot.budgetHeld] = held;
        view[Slot.budgetPeak] = peak;
      });
    }
    fn = await loadTask(data.task);
  } catch (err) {
    post({ type: 'done', ok: false, error: errorToData(err), breach: false, phase: 'load', usage: null });
    return;
  }

  const ctx: TaskContext = Object.freeze({ fuel, io, budget, limits: data.limits as ResolvedLimits });
  publishHeap(true);
  // Keeps the heap figure moving while an asynchronous task waits; a
  // synchronous one publishes at fuel checkpoints instead.
  const timer = setInterval(() => publishHeap(true), data.publishMs);
  timer.unref();

  post({ type: 'started', startEpoch: performance.timeOrigin + performance.now(), rss: process.memoryUsage.rss(), cpuNs: cpuNow() });
  let ok = false;
  let value: unknown;
  let error: unknown;
  try {
    value = await fn(data.input, ctx);
    ok = true;
  } catch (err) {
    error = err;
  }
  clearInterval(timer);
  const usage = finalUsage(fuel, io);
  if (breach !== null) {
    post({ type: 'done', ok: false, error: errorToData(breach), breach: true, phase: 'task', usage });
  } else if (ok) {
    try {
      post({ type: 'done', ok: true, value, usage });
    } catch (cloneError) {
      // The result could not be cloned (a function, a socket, ...).
      post({ type: 'done', ok: false, error: errorToData(cloneError), breach: false, phase: 'task', usage });
    }
  } else {
    post({ type: 'done', ok: false, error: errorToData(error), breach: false, phase: 'task', usage });
  }
}

void main();
