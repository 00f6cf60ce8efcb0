import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LimitedAllocator } from '../src/allocator';

const fixture = path.join(__dirname, 'fixtures', 'allocator-worker.cjs');
// Indexes into the shared Int32Array; see the fixture.
const READY = 0;
const GO = 1;
const TRIED = 2;
const RELEASE = 3;
const WON = 4;

const open: LimitedAllocator[] = [];
afterEach(() => {
  for (const a of open.splice(0)) a.close();
});

// Workers run the compiled library: refuse to test a stale build.
beforeAll(() => {
  const src = path.join(__dirname, '..', 'src', 'allocator.ts');
  const out = path.join(__dirname, '..', 'dist', 'allocator.js');
  if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(src).mtimeMs) {
    throw new Error('dist/allocator.js is missing or older than src/allocator.ts: run `npm run build:ts` first');
  }
});

function budget(name: string, limit: number): LimitedAllocator {
  const a = LimitedAllocator.shared(name, limit);
  open.push(a);
  return a;
}

interface Started {
  worker: Worker;
  message: Promise<Record<string, number | boolean>>;
  exit: Promise<number>;
}

function start(workerData: Record<string, unknown>): Started {
  const worker = new Worker(fixture, { workerData });
  const message = new Promise<Record<string, number | boolean>>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const exit = new Promise<number>((resolve) => worker.once('exit', resolve));
  return { worker, message, exit };
}

// Atomics.waitAsync (Node 16+) is in the ES2024 lib, newer than the one this project compiles against.
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, i: number, v: number, ms: number): { async: boolean; value: Promise<string> | string };
}).waitAsync;

/** Waits (without blocking this thread) until sync[index] >= value. */
async function waitFor(sync: Int32Array, index: number, value: number): Promise<void> {
  for (;;) {
    const seen = Atomics.load(sync, index);
    if (seen >= value) return;
    const r = waitAsync(sync, index, seen, 1000);
    if (r.async) await r.value;
  }
}

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('a budget shared by worker threads', () => {
  it('50 workers try to keep 60 of 100 bytes at the same moment: exactly one succeeds', async () => {
    const name = `alloc-race-${process.pid}`;
    const a = budget(name, 100);
    const sab = new SharedArrayBuffer(8 * 4);
    const sync = new Int32Array(sab);
    const workers = Array.from({ length: 50 }, () => start({ mode: 'race', name, size: 60, sab }));
    await waitFor(sync, READY, 50);
    Atomics.store(sync, GO, 1);
    Atomics.notify(sync, GO); // the start barrier opens for all 50
    await waitFor(sync, TRIED, 50);
    // every worker has tried and the winner still holds its bytes
    expect(Atomics.load(sync, WON)).toBe(1);
    expect(a.allocatedBytes).toBe(60);
    expect(a.peakBytes).toBe(60);
    const s = a.stats();
    expect(s.successes).toBe(1);
    expect(s.failures).toBe(49);
    Atomics.store(sync, RELEASE, 1);
    Atomics.notify(sync, RELEASE);
    const results = await Promise.all(workers.map((w) => w.message));
    expect(results.filter((r) => r.won)).toHaveLength(1);
    expect(results.every((r) => r.held === 0)).toBe(true);
    expect(await Promise.all(workers.map((w) => w.exit))).toEqual(Array(50).fill(0));
    expect(a.allocatedBytes).toBe(0);
  });

  it('8 workers x 100,000 random reserve/release end at exactly 0, never above the limit', async () => {
    const name = `alloc-random-${process.pid}`;
    const limit = 64 * 1024;
    const a = budget(name, limit);
    const sab = new SharedArrayBuffer(8 * 4);
    const sync = new Int32Array(sab);
    const workers = Array.from({ length: 8 }, (_, i) => start({ mode: 'random', name, ops: 100_000, seed: 0x9e3779b9 ^ (i * 7919 + 1), sab }));
    await waitFor(sync, READY, 8);
    Atomics.store(sync, GO, 1);
    Atomics.notify(sync, GO);
    const results = await Promise.all(workers.map((w) => w.message));
    await Promise.all(workers.map((w) => w.exit));
    const ok = results.reduce((n, r) => n + (r.ok as number), 0);
    const refused = results.reduce((n, r) => n + (r.refused as number), 0);
    // the budget was contended: some reservations were refused
    expect(refused).toBeGreaterThan(0);
    expect(results.every((r) => r.overLimit === 0 && r.held === 0)).toBe(true);
    expect(a.allocatedBytes).toBe(0);
    expect(a.peakBytes).toBeLessThanOrEqual(limit);
    expect(a.peakBytes).toBeGreaterThan(limit / 2);
    const s = a.stats();
    // every reservation attempt is counted once (resizes add their own)
    expect(s.successes).toBeGreaterThanOrEqual(ok);
    expect(s.failures).toBeGreaterThanOrEqual(refused);
  });

  it.each([
    ['terminated', false],
    ['crashed', true],
  ])('a worker %s while holding bytes gives them back', async (_label, crash) => {
    const name = `alloc-hold-${process.pid}-${crash ? 'crash' : 'term'}`;
    const a = budget(name, 10_000);
    a.reserveBytes(100);
    const w = start({ mode: 'hold', name, crash });
    const msg = await w.message;
    expect(msg.held).toBe(6000);
    expect(a.allocatedBytes).toBe(6100);
    let error: unknown;
    w.worker.on('error', (e) => (error = e));
    if (!crash) await w.worker.terminate();
    await w.exit;
    await until(() => a.allocatedBytes === 100);
    expect(a.allocatedBytes).toBe(100);
    expect(a.heldBytes).toBe(100);
    if (crash) expect((error as Error).message).toBe('worker crashed on purpose');
  });
});
