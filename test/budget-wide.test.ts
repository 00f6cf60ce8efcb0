// Wide budgets (a limit of 2^32 bytes or more, 64-bit counters): a handle
// keeps a guess of the counter, the limit as a BigInt and the highest usage
// it wrote to the peak. These tests show that none of those decides an
// outcome: a lowered limit, another handle's bytes, another handle's peak and
// many workers on one budget with a moving limit all give the exact answer.
// Workers run the compiled library.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, test } from 'vitest';
import { Budget, LimitedAllocator } from '../src/index';
import type { PressureChange } from '../src/index';
import { moveLimitUntil } from './helpers';

const fixture = path.join(__dirname, 'fixtures', 'lease-worker.cjs');
const dist = path.join(__dirname, '..', 'dist', 'index.js');
const STOP = 1;
const DONE = 2;
const G = 2 ** 32;

let counter = 0;
const unique = (p: string) => `${p}-${process.pid}-${++counter}`;

beforeAll(() => {
  const src = path.join(__dirname, '..', 'src', 'budget.ts');
  const out = path.join(__dirname, '..', 'dist', 'budget.js');
  if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(src).mtimeMs) {
    throw new Error('dist/budget.js is missing or older than src/budget.ts: run `npm run build:ts` first');
  }
});

describe('a wide budget in one thread', () => {
  test('a lowered limit refuses the next reservation of a handle that reserved under the old one', () => {
    const b = Budget.open(unique('wide-lower'), 2 * G);
    expect(b.tryReserve(G + 10)).toBe(true);
    b.release(G + 10);
    b.setLimit(G + 5);
    expect(b.tryReserve(G + 10)).toBe(false);
    expect(b.tryReserve(G + 5)).toBe(true);
    expect(b.tryReserve(1)).toBe(false);
    b.release(G + 5);
    b.setLimit(4 * G);
    expect(b.tryReserve(3 * G)).toBe(true);
    expect(b.tryReserve(G)).toBe(true);
    expect(b.tryReserve(1)).toBe(false);
    expect(b.used).toBe(4 * G);
    b.release(4 * G);
    expect(b.stats()).toMatchObject({ used: 0, successes: 4, failures: 3, peak: 4 * G });
    b.close();
  });

  test("another handle's bytes are counted by a handle whose last view of the counter is older", () => {
    const name = unique('wide-two');
    const limit = 3 * G;
    const one = Budget.open(name, limit);
    const two = Budget.open(name);
    expect(one.tryReserve(G)).toBe(true);
    expect(two.tryReserve(G)).toBe(true);
    // `one` last saw G; the counter is 2G.
    expect(one.tryReserve(G + 1)).toBe(false);
    expect(one.tryReserve(G)).toBe(true);
    expect(two.tryReserve(1)).toBe(false);
    expect(one.used).toBe(limit);
    one.release(2 * G);
    // `two` last saw the counter at the limit; it is G now.
    expect(two.tryReserve(2 * G)).toBe(true);
    expect(one.tryReserve(1)).toBe(false);
    two.release(3 * G);
    expect(one.used).toBe(0);
    expect(one.held).toBe(0);
    expect(two.held).toBe(0);
    one.close();
    two.close();
  });

  test("the peak is the highest usage whichever handle reached it, never lowered by another's", () => {
    const name = unique('wide-peak');
    const one = Budget.open(name, 8 * G);
    const two = Budget.open(name);
    expect(one.tryReserve(G + 100)).toBe(true);
    one.release(G + 100);
    expect(one.peak).toBe(G + 100);
    expect(two.tryReserve(G + 200)).toBe(true);
    two.release(G + 200);
    expect(one.peak).toBe(G + 200);
    // `one` last wrote G + 100; a usage between the two must not lower the peak.
    expect(one.tryReserve(G + 150)).toBe(true);
    one.release(G + 150);
    expect(two.peak).toBe(G + 200);
    // `two` last wrote G + 200: a higher usage raises it, from either handle.
    expect(one.tryReserve(G + 300)).toBe(true);
    expect(two.tryReserve(7)).toBe(true);
    expect(one.peak).toBe(G + 307);
    one.release(G + 300);
    two.release(7);
    expect(two.stats()).toMatchObject({ used: 0, peak: G + 307, successes: 5 });
    one.close();
    two.close();
  });

  test('an allocator on a wide budget reports the exact usage in its pressure events', () => {
    const limit = 10 * G;
    const a = LimitedAllocator.shared(unique('wide-alloc'), limit);
    const changes: PressureChange[] = [];
    a.on('pressure', (c) => changes.push(c));
    expect(a.reserveBytes(6 * G + 1)).toBe(true);
    expect(a.reserveBytes(2 * G)).toBe(true);
    expect(a.reserveBytes(1.5 * G + 3)).toBe(true);
    expect(a.reserveBytes(G)).toBe(false);
    a.releaseBytes(9.5 * G + 4);
    // Each event carries the counter right after the operation that changed the level.
    expect(changes.map((c) => [c.level, c.used])).toEqual([
      ['medium', 6 * G + 1],
      ['high', 8 * G + 1],
      ['critical', 9.5 * G + 4],
      ['low', 0],
    ]);
    expect(a.allocatedBytes).toBe(0);
    a.close();
  });
});

type Report = Record<string, number | boolean>;

function start(workerData: Record<string, unknown>): { worker: Worker; message: Promise<Report>; exit: Promise<number> } {
  const worker = new Worker(fixture, { workerData: { dist, lease: false, ...workerData } });
  const message = new Promise<Report>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const exit = new Promise<number>((resolve) => worker.once('exit', resolve));
  return { worker, message, exit };
}

describe('a wide budget shared by threads', () => {
  test('8 workers x 100,000 random operations across 2^32, a monitor and a moving limit: never above the limit, ends at 0', async () => {
    const hi = 2 * G;
    const lo = G + 12_345;
    const name = unique('wide-churn');
    const b = Budget.open(name, hi);
    const sab = new SharedArrayBuffer(16);
    const sync = new Int32Array(sab);
    const monitor = start({ mode: 'monitor', name, limit: hi, sab, ceiling: hi, wide: true });
    // A worker keeping up to 64 reservations of up to 2^28 bytes holds about
    // 2^33 bytes on average, the higher limit, even with no other worker
    // running: the counter crosses 2^32 both ways all the time and reaches
    // the limit, so there are refusals however the workers are scheduled.
    const workers = Array.from({ length: 8 }, (_, i) =>
      start({ mode: 'churn', name, limit: hi, sab, seed: 0x3a1de + i * 7919, ops: 100_000, keep: 64, maxSize: 2 ** 28 }),
    );
    const { lowered, refused } = await moveLimitUntil(b, lo, hi, () => Atomics.load(sync, DONE) >= workers.length);
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
    const stats = b.stats();
    expect(stats.used).toBe(0);
    expect(stats.successes).toBe(reports.reduce((a, r) => a + (r.reserved as number), 0));
    expect(stats.failures).toBe(reports.reduce((a, r) => a + (r.refused as number), 0));
    expect(stats.failures).toBeGreaterThan(0);
    expect(stats.peak).toBeGreaterThan(G);
    expect(stats.peak).toBeLessThanOrEqual(hi);
    b.close();
  }, 120_000);
});
