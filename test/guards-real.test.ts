import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { MemoryGuard } from '../src/guards';
import { readRss } from '../src/sampler';

const MiB = 1024 * 1024;
/** The 64 MiB limit less what RSS may give back between the stop and a later read. */
const LIMIT_SLACK = 60 * MiB;

describe('MemoryGuard against real memory', () => {
  // Deterministic on a loaded machine: the loop allocates only until a fresh
  // read shows RSS past the limit (with a margin), then keeps calling ok()
  // without allocating until it says no; the 60 s bound is only reached if
  // the guard never notices. So how far RSS grows does not depend on how
  // soon the sampler thread gets a core.
  it('stops a synchronous allocating loop past its limit, with the event loop blocked', () => {
    const base = readRss();
    const limit = base + 64 * MiB;
    const guard = new MemoryGuard({ hardLimit: limit, heap: false });
    let eventLoopRan = false;
    setImmediate(() => {
      eventLoopRan = true;
    });
    const keep: Buffer[] = [];
    let stopped = false;
    let crossed = false;
    const bound = process.hrtime.bigint() + 60_000_000_000n;
    while (process.hrtime.bigint() < bound) {
      if (!guard.ok()) {
        stopped = true;
        break;
      }
      if (crossed) continue;
      const b = Buffer.allocUnsafe(MiB);
      for (let i = 0; i < b.length; i += 4096) b[i] = 1; // touch every page
      keep.push(b);
      crossed = readRss() > limit + 8 * MiB;
    }
    const grown = readRss() - base;
    expect(eventLoopRan).toBe(false); // the loop never yielded
    expect(stopped).toBe(true);
    // ok() turned false on a sample above the limit. RSS read after the stop
    // can sit a little lower (freed pages, a young generation that shrank):
    // 60 KiB under the limit on a loaded run. A guard that stopped early
    // (at half the limit, say) still fails here.
    expect(grown).toBeGreaterThan(LIMIT_SLACK);
    expect(grown).toBeLessThan(128 * MiB);
    expect(keep.length).toBeGreaterThan(32);
    // 16 MiB more, so that a fresh read is clearly above the limit: check()
    // agrees with ok() there.
    for (let k = 0; k < 16; k++) {
      const b = Buffer.allocUnsafe(MiB);
      for (let i = 0; i < b.length; i += 4096) b[i] = 1;
      keep.push(b);
    }
    expect(guard.check().exceedsHard).toBe(true);
    guard.close();
  });
});

describe('MemoryGuard without shared memory (the fallback for runtimes that refuse external buffers)', () => {
  it('still stops a blocked allocating loop past its limit', () => {
    const script = `
      const sampler = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'sampler.js'))});
      const { MemoryGuard } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'guards', 'index.js'))});
      const base = sampler.readRss();
      const guard = new MemoryGuard({ hardLimit: base + 64 * 1048576 });
      const keep = [];
      let stopped = false;
      let crossed = false;
      const bound = process.hrtime.bigint() + 60000000000n;
      while (process.hrtime.bigint() < bound) {
        if (!guard.ok()) { stopped = true; break; }
        if (crossed) continue;
        const b = Buffer.allocUnsafe(1048576);
        for (let i = 0; i < b.length; i += 4096) b[i] = 1;
        keep.push(b);
        crossed = sampler.readRss() > base + 72 * 1048576;
      }
      console.log(JSON.stringify({ shared: sampler.sharedMemory, stopped, grown: sampler.readRss() - base }));`;
    const r = spawnSync(process.execPath, ['-e', script], {
      env: { ...process.env, RESOURCE_GUARD_NO_EXTERNAL_BUFFERS: '1' },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.shared).toBe(false);
    expect(out.stopped).toBe(true);
    expect(out.grown).toBeGreaterThan(LIMIT_SLACK); // as above
    expect(out.grown).toBeLessThan(128 * MiB);
  });
});

function runWorker(guard: boolean): Promise<{ message: any; exitCode: number; error: any }> {
  return new Promise((resolve) => {
    const worker = new Worker(path.join(__dirname, 'fixtures', 'guards-heap-worker.cjs'), {
      workerData: { guard },
      resourceLimits: { maxOldGenerationSizeMb: 64 },
    });
    let message: any = null;
    let error: any = null;
    worker.on('message', (m) => {
      message = m;
    });
    worker.on('error', (e) => {
      error = e;
    });
    worker.on('exit', (exitCode) => resolve({ message, exitCode, error }));
  });
}

describe('MemoryGuard against the V8 heap limit of a worker', () => {
  it('trips on heap use before the worker dies of heap exhaustion', async () => {
    const { message, exitCode, error } = await runWorker(true);
    expect(error).toBeNull();
    expect(exitCode).toBe(0);
    expect(message).not.toBeNull();
    expect(message.limits.heapLimit).toBe(64 * MiB);
    expect(message.status.breach).toBe('heap');
    expect(message.status.heap.used).toBeGreaterThan(message.status.heap.hardLimit);
    expect(message.error).toMatchObject({ code: 'ERR_MEMORY_LIMIT', kind: 'heap' });
    expect(message.retained).toBeGreaterThan(100_000);
  });

  // The contrast: without the guard the worker runs into its heap limit and
  // cannot go on. It runs in a child process of its own, because at that
  // limit some Node lines (24, 26) do not always stop the worker cleanly:
  // V8 may abort the whole process ("FATAL ERROR: Reached heap limit"), which
  // would take this test runner down with it, or the worker may stay stuck
  // at the limit, growing, and never exit. Each of the three endings shows
  // the limit was reached; the clean one is Node's ERR_WORKER_OUT_OF_MEMORY.
  it('without the guard the same worker runs into its heap limit', () => {
    const r = spawnSync(process.execPath, ['-e', UNGUARDED, path.join(__dirname, 'fixtures', 'guards-heap-worker.cjs')], {
      encoding: 'utf8',
      timeout: 100_000,
    });
    const out = r.stdout.trim().split('\n').filter(Boolean).at(-1);
    const result = out === undefined ? null : (JSON.parse(out) as { outcome: string; code?: string; rss?: number });
    const aborted = r.status !== 0 && /Reached heap limit|heap out of memory/.test(r.stderr);
    if (!aborted) {
      expect(result, `child status ${r.status} signal ${r.signal}: ${r.stderr.slice(-2000)}`).not.toBeNull();
      if (result!.outcome === 'runaway') expect(result!.rss).toBeGreaterThan(RUNAWAY_RSS);
      else expect(result).toEqual({ outcome: 'error', code: 'ERR_WORKER_OUT_OF_MEMORY', message: null });
    }
  }, 120_000);
});

/** RSS of the child past which its worker has gone beyond its heap limits (64 MiB old + 8 MiB young) by far. */
const RUNAWAY_RSS = 512 * MiB;

/**
 * Runs the unguarded fixture in a worker with a 64 MiB old generation and,
 * as runWithLimits sizes it, an 8 MiB young one; prints how it ended: the
 * worker's error, its exit, or (when it stays stuck at its limit) a runaway
 * once this process's RSS is far past what the heap may hold.
 */
const UNGUARDED = `
const { Worker } = require('node:worker_threads');
const w = new Worker(process.argv[1], {
  workerData: { guard: false },
  resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 8 },
});
let message = null;
const report = (r) => { console.log(JSON.stringify(r)); process.exit(0); };
w.on('message', (m) => { message = m; });
w.on('error', (e) => report({ outcome: 'error', code: e.code, message }));
w.on('exit', (code) => report({ outcome: 'exit', code, message }));
setInterval(() => {
  const rss = process.memoryUsage.rss();
  if (rss > ${512 * 1024 * 1024}) report({ outcome: 'runaway', rss });
}, 100);
`;
