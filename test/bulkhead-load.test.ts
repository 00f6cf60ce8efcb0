// Load test: 5000 concurrent acquisitions through a bulkhead of 2000 with a
// 5 s wait, each holding about 10 ms: at least 95 % succeed and in-use
// returns to exactly 0 (the wait percentiles are measured by the benchmark).
// Then 10,000 acquisitions, repeated, show no unbounded growth of memory.
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { describe, expect, test } from 'vitest';
import { Bulkhead } from '../src/bulkhead';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const hold = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('bulkhead under load', () => {
  // Only what does not depend on the machine's speed is asserted here; the
  // wait percentiles are wall-clock figures, measured by `npm run bench`
  // ("Bulkhead load test" rows), not by a test.
  test('5000 concurrent acquisitions through 2000 permits with a 5 s wait', { timeout: 60_000 }, async () => {
    let peakInUse = 0;
    const wave = (b: Bulkhead) =>
      Promise.allSettled(
        Array.from({ length: 5000 }, () =>
          b.run(async () => {
            if (b.inUse > peakInUse) peakInUse = b.inUse;
            await hold(10);
          }),
        ),
      );
    // A warm-up wave on another bulkhead, as load tests do: the figures below
    // then measure the gate rather than V8 compiling this code for the first time.
    await wave(new Bulkhead({ maxConcurrent: 2000, waitTimeout: 5000 }));
    peakInUse = 0;

    // A wait window wide enough that the percentiles cover all 5000.
    const b = new Bulkhead({ maxConcurrent: 2000, waitTimeout: 5000, name: 'load', waitSamples: 8192 });
    const results = await wave(b);
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const m = b.metrics();
    expect(ok / 5000).toBeGreaterThanOrEqual(0.95);
    expect(m.successes).toBe(ok);
    expect(m.acquisitions + m.timeouts + m.rejections).toBe(5000);
    expect(peakInUse).toBe(2000);
    expect(m.waitSamples).toBe(5000);
    expect(m.waitP99).toBeGreaterThanOrEqual(0);
    expect(m.inUse).toBe(0);
    expect(m.queued).toBe(0);
    expect(m.health).toBe('healthy');
  });

  test('10,000 acquisitions, five times over: memory does not grow with them', async () => {
    const b = new Bulkhead({ maxConcurrent: 100, waitTimeout: 5000 });
    const round = () => Promise.all(Array.from({ length: 10_000 }, () => b.run(() => new Promise<void>((r) => setImmediate(r)))));
    const heap: number[] = [];
    for (let i = 0; i < 5; i++) {
      await round();
      gc();
      gc();
      heap.push(process.memoryUsage().heapUsed);
    }
    expect(b.metrics()).toMatchObject({ acquisitions: 50_000, successes: 50_000, inUse: 0, queued: 0 });
    // After the first 10,000, four more rounds (40,000 acquisitions) add
    // less than 1 MiB: nothing is kept per acquisition.
    expect(heap[4]! - heap[0]!).toBeLessThan(1024 * 1024);
  }, 60_000);
});
