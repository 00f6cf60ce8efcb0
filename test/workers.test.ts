// Worker threads are first-class: the addon loads in many at once, one budget
// name is one counter everywhere, exactness holds under contention, and a
// worker that is terminated gives back what it held.
import { once } from 'node:events';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, test } from 'vitest';
import { Budget, readSnapshot } from '../src/index';

const fixture = path.join(__dirname, 'fixtures', 'budget-worker.cjs');
const live: Worker[] = [];

function spawn(workerData: Record<string, unknown>): Worker {
  const w = new Worker(fixture, { workerData });
  live.push(w);
  return w;
}

afterEach(async () => {
  await Promise.all(live.splice(0).map((w) => w.terminate()));
});

describe('worker threads', () => {
  test('the addon loads in the main thread and 8 workers at once; all share one budget', async () => {
    const name = `probe-${process.pid}`;
    const main = Budget.open(name, 1000);
    const workers = Array.from({ length: 8 }, () => spawn({ mode: 'probe', name, limit: 1000 }));
    const exited = workers.map((w) => once(w, 'exit'));
    const results = await Promise.all(workers.map((w) => once(w, 'message').then(([m]) => m)));
    const ids = new Set(results.map((r) => r.threadId));
    expect(ids.size).toBe(8);
    for (const r of results) {
      expect(r.seq).toBeGreaterThan(0);
      expect(r.rss).toBeGreaterThan(0);
      expect(r.reserved).toBe(true);
      expect(r.shared).toBe(true);
    }
    await Promise.all(exited);
    const stats = main.stats();
    // 8 successful reservations in the workers, counted after they exited.
    expect(stats.successes).toBe(8);
    expect(stats.used).toBe(0);
    expect(stats.openHandles).toBe(1);
    main.close();
  });

  test('4 workers x 100,000 random reserve/release pairs end at exactly 0, never above the limit', async () => {
    const name = `churn-${process.pid}`;
    const limit = 10_000;
    const budget = Budget.open(name, limit);
    const start = new SharedArrayBuffer(4);
    const pairs = 100_000;
    const workers = Array.from({ length: 4 }, (_, i) =>
      spawn({ mode: 'churn', name, limit, pairs, maxBytes: 4000, seed: 0x9e3779b9 ^ (i + 1), start }),
    );
    await Promise.all(workers.map((w) => once(w, 'online')));
    const done = Promise.all(workers.map((w) => once(w, 'message').then(([m]) => m)));
    Atomics.store(new Int32Array(start), 0, 1);
    Atomics.notify(new Int32Array(start), 0);
    // Read the counter from this thread while they run.
    let reads = 0;
    let maxSeen = 0;
    let finished = false;
    void done.then(() => {
      finished = true;
    });
    while (!finished) {
      for (let i = 0; i < 10_000; i++) {
        const u = budget.used;
        if (u > maxSeen) maxSeen = u;
        reads++;
      }
      await new Promise((r) => setImmediate(r));
    }
    const results = await done;
    expect(maxSeen).toBeLessThanOrEqual(limit);
    expect(maxSeen).toBeGreaterThan(0);
    expect(reads).toBeGreaterThan(0);
    expect(budget.used).toBe(0);
    const okTotal = results.reduce((a, r) => a + r.ok, 0);
    const refusedTotal = results.reduce((a, r) => a + r.refused, 0);
    expect(okTotal + refusedTotal).toBe(4 * pairs);
    for (const r of results) expect(r.held).toBe(0);
    await Promise.all(workers.map((w) => w.terminate()));
    const stats = budget.stats();
    expect(stats.successes).toBe(okTotal);
    expect(stats.failures).toBe(refusedTotal);
    expect(stats.peak).toBeLessThanOrEqual(limit);
    budget.close();
  });

  test('a worker terminated while holding reservations gives back exactly what it held', async () => {
    const name = `hold-${process.pid}`;
    const budget = Budget.open(name, 1_000_000);
    budget.reserve(1234);
    const holders = [spawn({ mode: 'hold', name, bytes: 100_000 }), spawn({ mode: 'hold', name, bytes: 250_001 })];
    const held = await Promise.all(holders.map((w) => once(w, 'message').then(([m]) => m.held)));
    expect(held).toEqual([100_000, 250_001]);
    expect(budget.used).toBe(1234 + 100_000 + 250_001);
    await holders[0]!.terminate();
    expect(budget.used).toBe(1234 + 250_001);
    await holders[1]!.terminate();
    expect(budget.used).toBe(1234);
    budget.release(1234);
    expect(budget.used).toBe(0);
    budget.close();
  });

  test.each([
    ['narrow', 1_000_000, 1234, 100_000],
    ['wide', 2 ** 40, 2 ** 33 + 7, 2 ** 32 + 1],
  ])('peak is process-wide (%s): a worker\'s high counts while it runs and after it exits', async (kind, limit, mine, theirs) => {
    // Each thread records the highs its own reservations produce; peak is
    // the largest record, and an exiting thread's record is kept.
    const name = `peak-${kind}-${process.pid}`;
    const budget = Budget.open(name, limit);
    budget.reserve(mine);
    expect(budget.peak).toBe(mine);
    const holder = spawn({ mode: 'hold', name, bytes: theirs });
    const [m] = await once(holder, 'message');
    expect(m.held).toBe(theirs);
    budget.release(mine);
    expect(budget.used).toBe(theirs);
    expect(budget.peak).toBe(mine + theirs);
    expect(budget.stats().peak).toBe(mine + theirs);
    await holder.terminate();
    expect(budget.used).toBe(0);
    expect(budget.peak).toBe(mine + theirs);
    budget.reserve(1);
    budget.release(1);
    expect(budget.stats()).toMatchObject({ used: 0, peak: mine + theirs });
    budget.close();
    expect(() => budget.peak).toThrow(expect.objectContaining({ code: 'ERR_BUDGET_CLOSED' }));
  });

  test('the sampler keeps running for the main thread after workers that used it exit', async () => {
    const name = `sampler-${process.pid}`;
    const w = spawn({ mode: 'probe', name, limit: 10 });
    await once(w, 'message');
    await w.terminate();
    const a = readSnapshot();
    await new Promise((r) => setTimeout(r, 60));
    const b = readSnapshot();
    expect(b.running).toBe(true);
    expect(b.seq).toBeGreaterThan(a.seq);
  });
});
