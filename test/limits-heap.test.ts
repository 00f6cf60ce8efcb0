// runWithLimits heap breaches on every supported Node line: the caller's
// process survives (no "FATAL ERROR: Reached heap limit" abort of the whole
// process, which would kill this test's fork) and the run rejects with
// MemoryLimitError. On Node 24 and 26 a worker can get stuck at its heap limit
// without Node reporting ERR_WORKER_OUT_OF_MEMORY; the run then ends as a heap
// runaway (MemoryLimitError, cause ERR_WORKER_HEAP_RUNAWAY), seen once the
// process has grown past the runaway mark. That takes a few seconds (3-5 s
// with both cores busy); the runs here get a timeout of two minutes, so the
// heap error, not the timeout, ends them however loaded the machine is.
// Needs dist/ (npm run build:ts).
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { MemoryLimitError } from '../src/errors';
import { TimeoutError, runWithLimits, type UsageReport } from '../src/limits/index';

const MiB = 1024 * 1024;
const fixture = path.join(__dirname, 'fixtures', 'limits-tasks.cjs');
const growHeap = { module: fixture, export: 'growHeap' };
// Far beyond the few seconds a breach takes to be seen, so that only a real
// failure to see it (not a slow machine) ends a run by its timeout.
const RUN_TIMEOUT = 120_000;
const TEST_TIMEOUT = RUN_TIMEOUT + 30_000;

async function rejection(p: Promise<unknown>): Promise<Error & { report: UsageReport }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { report: UsageReport };
  }
  throw new Error('expected the run to fail');
}

describe('heap limit on this Node line', () => {
  for (const heap of [16, 32, 64]) {
    test(`growHeap under a ${heap} MiB heap limit rejects with MemoryLimitError and the process survives`, async () => {
      const err = await rejection(runWithLimits(growHeap, { heap: heap * MiB, timeout: RUN_TIMEOUT }));
      expect(err).toBeInstanceOf(MemoryLimitError);
      expect(err).toMatchObject({ code: 'ERR_MEMORY_LIMIT', kind: 'heap', limit: heap * MiB });
      expect(['ERR_WORKER_OUT_OF_MEMORY', 'ERR_WORKER_HEAP_RUNAWAY']).toContain((err.cause as { code?: string }).code);
      expect(err.report.exitReason).toBe('heap');
      // The young generation is sized from the heap limit, not left at the
      // process default (192 MiB on Node 24), so the whole heap stays near it.
      expect(err.report.heapSizeLimit).toBeLessThanOrEqual(heap * MiB + 32 * MiB);
    }, TEST_TIMEOUT);
  }

  test('two heap breaches at once in the same process both reject', async () => {
    const runs = [16, 24].map((h) => rejection(runWithLimits(growHeap, { heap: h * MiB, timeout: RUN_TIMEOUT })));
    for (const err of await Promise.all(runs)) {
      expect(err).toBeInstanceOf(MemoryLimitError);
      expect(err.report.exitReason).toBe('heap');
    }
  }, TEST_TIMEOUT);

  test("the run's own timeout always ends a heap-limited run: it settles with a typed error", async () => {
    // Whatever Node does at the limit (stop the worker, or fail to), the
    // caller gets a typed rejection: the heap breach, or the timeout.
    const err = await rejection(runWithLimits(growHeap, { heap: 16 * MiB, timeout: 3_000 }));
    expect(err instanceof MemoryLimitError || err instanceof TimeoutError).toBe(true);
    expect(['heap', 'timeout']).toContain(err.report.exitReason);
  });
});
