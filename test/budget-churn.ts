// Workers of test/fixtures/lease-worker.cjs, and the contention run that the
// leasing and wide budget tests share: 8 workers churn one budget while a
// monitor thread reads its counter and this thread moves the limit.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { expect } from 'vitest';
import type { Budget } from '../src/index';
import { moveLimitUntil } from './helpers';

const fixture = path.join(__dirname, 'fixtures', 'lease-worker.cjs');
const dist = path.join(__dirname, '..', 'dist', 'index.js');
/** Indices of the fixture's shared Int32Array. */
export const GO = 0;
export const STOP = 1;
export const DONE = 2;

export type Report = Record<string, number | boolean>;

/** Workers run the compiled library: refuses to go on with a dist/budget.js older than its source. */
export function assertDistCurrent(): void {
  const src = path.join(__dirname, '..', 'src', 'budget.ts');
  const out = path.join(__dirname, '..', 'dist', 'budget.js');
  if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(src).mtimeMs) {
    throw new Error('dist/budget.js is missing or older than src/budget.ts: run `npm run build:ts` first');
  }
}

/** Starts a fixture worker (see lease-worker.cjs for the modes and their data). */
export function startWorker(workerData: Record<string, unknown>): {
  worker: Worker;
  message: Promise<Report>;
  exit: Promise<number>;
} {
  const worker = new Worker(fixture, { workerData: { dist, ...workerData } });
  const message = new Promise<Report>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const exit = new Promise<number>((resolve) => worker.once('exit', resolve));
  return { worker, message, exit };
}

/**
 * 8 workers × 100,000 random reservations and releases on `budget` (each
 * keeping at most 64, of 1 to `maxSize` bytes), a monitor reading the
 * counter, and the limit moving between `hi` and `lo` until the workers are
 * done. Checks what holds for every budget: each worker ends holding nothing
 * with as many releases as reservations, the monitor never read more than
 * `hi`, and the limit moved. Returns the workers' reports once every thread
 * has exited.
 */
export async function churnWithMonitor(
  budget: Budget,
  options: { lo: number; hi: number; lease: boolean; wide: boolean; seed: number; maxSize: number },
): Promise<Report[]> {
  const { lo, hi, lease, wide, seed, maxSize } = options;
  const name = budget.name;
  const sab = new SharedArrayBuffer(16);
  const sync = new Int32Array(sab);
  const monitor = startWorker({ mode: 'monitor', name, limit: hi, sab, ceiling: hi, wide });
  const workers = Array.from({ length: 8 }, (_, i) =>
    startWorker({ mode: 'churn', name, limit: hi, sab, lease, seed: seed + i * 7919, ops: 100_000, keep: 64, maxSize }),
  );
  const { lowered, refused } = await moveLimitUntil(budget, lo, hi, () => Atomics.load(sync, DONE) >= workers.length);
  const reports = await Promise.all(workers.map((w) => w.message));
  for (const r of reports) {
    expect(r.held).toBe(0);
    expect(r.reserved).toBe(r.released);
  }
  Atomics.store(sync, STOP, 1);
  const seen = await monitor.message;
  expect(seen.over).toBe(0);
  expect(seen.reads as number).toBeGreaterThan(0);
  expect(seen.highest as number).toBeLessThanOrEqual(hi);
  expect(lowered + refused).toBeGreaterThan(0);
  await Promise.all([...workers, monitor].map((w) => w.exit));
  return reports;
}

/** The sum of one field of the reports. */
export function total(reports: Report[], field: string): number {
  return reports.reduce((a, r) => a + (r[field] as number), 0);
}
