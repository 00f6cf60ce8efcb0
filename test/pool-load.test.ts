// The pool under load: 5,000 concurrent acquisitions on
// a pool of 2,000 with a 5 s acquire timeout, each holding its resource for
// 10 ms, then 10,000 acquire/release cycles. Time is a manual clock, so every
// figure asserted is a count (or a wait in clock time), never wall time; the
// wall-clock figures are measured by the benchmark suite 70-pool.js.
import { describe, expect, test } from 'vitest';
import { ResourcePool } from '../src/pool';
import { ManualTime } from './manual-time';

const flush = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
};

describe('pool load', () => {
  test('5,000 concurrent acquisitions on max 2,000: >= 95 % succeed, p99 wait < 100 ms, in use back to 0', async () => {
    const time = new ManualTime();
    let made = 0;
    let destroyed = 0;
    const pool = new ResourcePool(
      { create: () => ({ id: ++made }), destroy: () => void destroyed++ },
      { max: 2000, acquireTimeout: 5000, clock: time.clock, timers: time },
    );
    let ok = 0;
    let failed = 0;
    const all: Promise<void>[] = [];
    for (let i = 0; i < 5000; i++) {
      all.push(
        pool.acquire().then(
          (r) =>
            new Promise<void>((done) => {
              ok++;
              // hold the resource for 10 ms of clock time
              time.setTimeout(() => {
                pool.release(r);
                done();
              }, 10);
            }),
          () => void failed++,
        ),
      );
    }
    // Let the requests settle and drive the clock 10 ms at a time.
    for (let step = 0; step < 1000 && ok + failed < 5000; step++) {
      await flush();
      time.advance(10);
    }
    await flush();
    time.advance(10);
    await Promise.all(all);
    const m = pool.metrics();
    expect(ok + failed).toBe(5000);
    expect(ok / 5000).toBeGreaterThanOrEqual(0.95);
    expect(m.successes).toBe(ok);
    expect(m.timeouts + m.errors).toBe(failed);
    expect(m.waitP99).toBeLessThan(100);
    expect(m.inUse).toBe(0);
    expect(m.waiting).toBe(0);
    expect(m.size).toBeLessThanOrEqual(2000);
    expect(made).toBe(2000);
    expect(m.health).toBe('healthy');
    await pool.close();
    expect(destroyed).toBe(2000);
  });

  test('10,000 cycles with timeouts and failures mixed in leave no structure growing', async () => {
    const time = new ManualTime();
    let n = 0;
    const pool = new ResourcePool(
      {
        create: () => {
          n++;
          if (n % 97 === 0) throw new Error('flaky');
          return { id: n };
        },
        destroy: () => undefined,
      },
      { max: 8, acquireTimeout: 50, maxLifetime: 200, idleTimeout: 100, evictionInterval: 25, clock: time.clock, timers: time, waitSamples: 1024 },
    );
    const sizes: number[] = [];
    for (let cycle = 0; cycle < 10_000; cycle += 20) {
      // 20 requests against 8 resources: some wait, some time out.
      const held: Promise<unknown>[] = [];
      for (let i = 0; i < 20; i++) {
        held.push(
          pool.acquire().then(
            (r) => new Promise<void>((done) => time.setTimeout(() => (pool.release(r), done()), 30)),
            () => undefined,
          ),
        );
      }
      for (let k = 0; k < 4; k++) {
        await flush();
        time.advance(30);
      }
      await flush();
      time.advance(60);
      await Promise.all(held);
      const s = pool.internals();
      sizes.push(s.entries + s.idleList + s.queueSlots + s.destroying);
      expect(s.entries).toBeLessThanOrEqual(8);
      expect(s.queueSlots).toBe(0); // nobody waits between cycles
      expect(s.waitSamples).toBeLessThanOrEqual(1024);
    }
    const m = pool.metrics();
    expect(m.requests).toBe(10_000);
    expect(m.successes + m.timeouts + m.errors).toBe(10_000);
    expect(m.timeouts).toBeGreaterThan(0);
    expect(m.errors).toBeGreaterThan(0);
    expect(m.inUse).toBe(0);
    expect(m.waiting).toBe(0);
    // Bounded: the last cycles hold no more than the first ones did at most.
    expect(Math.max(...sizes.slice(-50))).toBeLessThanOrEqual(Math.max(...sizes.slice(0, 50), 8 + 8 + 20));
    expect(time.pending).toBe(1); // only the eviction timer is left
    await pool.close();
    expect(time.pending).toBe(0);
  });
});
