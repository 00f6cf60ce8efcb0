import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { MemoryGuard } from '../src/guards';
import { readRss } from '../src/sampler';

const MiB = 1024 * 1024;

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
    expect(grown).toBeGreaterThan(64 * MiB); // it really reached the limit
    expect(grown).toBeLessThan(128 * MiB);
    expect(keep.length).toBeGreaterThan(32);
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
    expect(out.grown).toBeGreaterThan(64 * MiB);
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

  it('without the guard the same worker dies of heap exhaustion', async () => {
    const { message, error } = await runWorker(false);
    expect(message).toBeNull();
    expect(error?.code).toBe('ERR_WORKER_OUT_OF_MEMORY');
  });
});
