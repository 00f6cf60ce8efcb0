'use strict';
// Task limits and the bulkhead: what the gate costs per acquisition against
// p-limit and p-queue, what fuel.consume() costs inside a loop, what a
// limited run costs to start against a bare Worker, and the load test
// figures of the pool guide (5000 acquisitions through 2000 permits).
//
// p-limit and p-queue are ES modules (loaded with import()); they are
// development dependencies: npm install --no-save p-limit p-queue.
const { Worker } = require('node:worker_threads');
const path = require('node:path');
const { sink } = require('../harness');
const { Bulkhead } = require('../../../dist/bulkhead.js');
const { Fuel, runWithLimits } = require('../../../dist/limits/index.js');

const CONCURRENCY = 16;
const BATCH = 1000;

async function optional(name) {
  try {
    return (await import(name)).default;
  } catch {
    return null;
  }
}

/** Runs n operations through `submit`, BATCH at a time, all in flight together. */
async function batched(n, submit) {
  for (let done = 0; done < n; ) {
    const k = Math.min(BATCH, n - done);
    const ps = new Array(k);
    for (let i = 0; i < k; i++) ps[i] = submit();
    await Promise.all(ps);
    done += k;
  }
}

function bareWorker() {
  return new Promise((resolve, reject) => {
    const w = new Worker("require('node:worker_threads').parentPort.postMessage(1)", { eval: true });
    w.once('error', reject);
    w.once('exit', resolve);
  });
}

exports.run = async function run(bench, _lib) {
  const pLimit = await optional('p-limit');
  const PQueue = await optional('p-queue');
  if (!pLimit || !PQueue) {
    console.log('  (p-limit / p-queue not installed: npm install --no-save p-limit p-queue; comparison rows skipped)');
  }
  const noop = async () => {};

  bench.section('Bulkhead: one operation at a time (acquire, run a no-op, release)');
  const seqBase = pLimit ? 'p-limit: await limit(fn)' : undefined;
  if (pLimit) {
    const limit = pLimit(CONCURRENCY);
    await bench.opAsync('p-limit: await limit(fn)', async (n) => {
      for (let i = 0; i < n; i++) await limit(noop);
    });
  }
  if (PQueue) {
    const queue = new PQueue({ concurrency: CONCURRENCY });
    await bench.opAsync('p-queue: await queue.add(fn)', async (n) => {
      for (let i = 0; i < n; i++) await queue.add(noop);
    }, { baseline: seqBase });
  }
  const b1 = new Bulkhead({ maxConcurrent: CONCURRENCY, waitTimeout: 5000 });
  await bench.opAsync('Bulkhead: await bulkhead.run(fn)', async (n) => {
    for (let i = 0; i < n; i++) await b1.run(noop);
  }, { baseline: seqBase, target: 'no slower than p-limit' });
  await bench.opAsync('Bulkhead: release = await acquire(); release()', async (n) => {
    for (let i = 0; i < n; i++) (await b1.acquire())();
  }, { baseline: seqBase });
  await bench.flush();
  if (b1.inUse !== 0) throw new Error(`bench: bulkhead ended with ${b1.inUse} in use`);

  bench.section(`Bulkhead: ${BATCH} operations in flight through ${CONCURRENCY} permits`);
  const batchBase = pLimit ? 'p-limit' : undefined;
  if (pLimit) {
    const limit = pLimit(CONCURRENCY);
    await bench.opAsync('p-limit', (n) => batched(n, () => limit(noop)));
  }
  if (PQueue) {
    const queue = new PQueue({ concurrency: CONCURRENCY });
    await bench.opAsync('p-queue', (n) => batched(n, () => queue.add(noop)), { baseline: batchBase });
  }
  const b2 = new Bulkhead({ maxConcurrent: CONCURRENCY, waitTimeout: 5000 });
  await bench.opAsync('Bulkhead.run (queue, 5 s wait timeout each)', (n) => batched(n, () => b2.run(noop)), {
    baseline: batchBase,
    target: 'no slower than p-limit',
  });
  const b3 = new Bulkhead({ maxConcurrent: CONCURRENCY });
  await bench.opAsync('Bulkhead.run (queue, no wait timeout)', (n) => batched(n, () => b3.run(noop)), { baseline: batchBase });
  await bench.flush();
  for (const b of [b2, b3]) if (b.inUse !== 0 || b.queued !== 0) throw new Error('bench: bulkhead did not drain');

  bench.section('Fuel: fuel.consume() inside a loop');
  bench.op('loop alone (i & 1 summed)', (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += i & 1;
    sink(s);
  });
  bench.op('loop with an inline counter and compare (the floor)', (n) => {
    let s = 0;
    let left = Number.MAX_SAFE_INTEGER;
    for (let i = 0; i < n; i++) {
      if (--left < 0) throw new Error('spent');
      s += i & 1;
    }
    sink(s + left);
  }, { baseline: 'loop alone (i & 1 summed)' });
  const unlimited = new Fuel();
  bench.op('loop with fuel.consume() (no budget, counted)', (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      unlimited.consume();
      s += i & 1;
    }
    sink(s);
  }, { baseline: 'loop alone (i & 1 summed)', target: '≤ 5 ns', maxNs: 5 });
  const budgeted = new Fuel(Number.MAX_SAFE_INTEGER);
  bench.op('loop with fuel.consume(1) (with a budget)', (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      budgeted.consume(1);
      s += i & 1;
    }
    sink(s);
  }, { baseline: 'loop alone (i & 1 summed)', target: '≤ 5 ns', maxNs: 5 });
  const shared = new Int32Array(new SharedArrayBuffer(4));
  bench.op('loop with Atomics.add on shared memory per unit (for comparison)', (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      Atomics.add(shared, 0, 1);
      s += i & 1;
    }
    sink(s);
  }, { baseline: 'loop with fuel.consume() (no budget, counted)' });

  bench.section('Starting a run: limited run vs a bare Worker (start, trivial task, exit)');
  await bench.opAsync('new Worker(eval) → message → exit', async (n) => {
    for (let i = 0; i < n; i++) await bareWorker();
  });
  await bench.opAsync('runWithLimits(fn) (no limits)', async (n) => {
    for (let i = 0; i < n; i++) await runWithLimits((x) => x, {}, { input: i });
  }, { baseline: 'new Worker(eval) → message → exit' });
  const fixture = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'limits-tasks.cjs');
  await bench.opAsync("runWithLimits({ module, export }, 'standard') (heap, time, CPU, fuel, IO limits)", async (n) => {
    for (let i = 0; i < n; i++) await runWithLimits({ module: fixture, export: 'double' }, 'standard', { input: i });
  }, { baseline: 'new Worker(eval) → message → exit' });

  await bench.flush();
  bench.section('Bulkhead load test: 5000 acquisitions through 2000 permits, 5 s wait, ~10 ms hold');
  const hold = () => new Promise((r) => setTimeout(r, 10));
  const p50 = [];
  const p99 = [];
  const ok = [];
  const reps = Math.max(3, Math.min(bench.options.reps, 7));
  for (let r = 0; r < reps + 1; r++) {
    const b = new Bulkhead({ maxConcurrent: 2000, waitTimeout: 5000, waitSamples: 8192 });
    const results = await Promise.allSettled(Array.from({ length: 5000 }, () => b.run(hold)));
    const m = b.metrics();
    if (m.inUse !== 0) throw new Error('bench: load test left permits in use');
    if (r === 0) continue; // warm-up
    p50.push(m.waitP50);
    p99.push(m.waitP99);
    ok.push((100 * results.filter((x) => x.status === 'fulfilled').length) / 5000);
  }
  bench.value('success rate', ok, '%', { higherIsBetter: true, target: '≥ 95 %', min: 95 });
  bench.value('p50 wait', p50, 'ms');
  bench.value('p99 wait', p99, 'ms', { target: '< 100 ms', max: 100 });
};
