'use strict';
// Foundation: what the native core costs from JS, against what a Node user
// would call instead, measured side by side in this run.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { sink } = require('../harness');
const { binding } = require('../../../dist/binding.js');

async function throughput(lib, workers, ms, mode = 'shared') {
  const name = `bench-throughput-${workers}`;
  const budgets = mode === 'separate' ? Array.from({ length: workers }, (_, i) => lib.Budget.open(`${name}-${i}`, 1 << 20)) : [lib.Budget.open(name, 1 << 20)];
  const counter = new SharedArrayBuffer(4);
  const start = new SharedArrayBuffer(4);
  const file = path.join(__dirname, '..', 'workers', 'budget-throughput.js');
  const ws = Array.from(
    { length: workers },
    (_, index) => new Worker(file, { workerData: { name, limit: 1 << 20, start, ms, mode, index, counter } }),
  );
  await Promise.all(ws.map((w) => new Promise((r) => w.once('message', r))));
  const done = Promise.all(ws.map((w) => new Promise((r) => w.once('message', r))));
  Atomics.store(new Int32Array(start), 0, 1);
  Atomics.notify(new Int32Array(start), 0);
  const counts = await done;
  await Promise.all(ws.map((w) => w.terminate()));
  for (const budget of budgets) {
    // A leasing budget's leases go back when the workers end: 0 here too.
    if (budget.used !== 0 || budget.stats().leased !== 0) throw new Error(`throughput: budget ended at ${budget.used}, not 0`);
    budget.close();
  }
  if (new Int32Array(counter)[0] !== 0) throw new Error('throughput: the Atomics counter did not end at 0');
  return counts.reduce((a, b) => a + b, 0) / (ms / 1000) / 1e6;
}

// Rows of the section 'Budget throughput: separate, shared and leasing
// budgets'. Each round runs every (workers, mode) pair once, the modes in a
// rotated order, so load that comes and goes falls on every row alike.
const MODES = [
  ['separate', 'separate budgets (one each)'],
  ['shared', 'one budget'],
  ['lease', 'one budget, lease: true'],
  ['atomics', 'one JS Atomics counter (CAS + sub, no ledger)'],
];
const WORKERS = [1, 2, 4, 8];

async function throughputByMode(bench, lib, ms, reps) {
  bench.section('Budget throughput: separate, shared and leasing budgets');
  const figures = new Map();
  for (let r = 0; r < reps; r++) {
    for (const workers of WORKERS) {
      for (let m = 0; m < MODES.length; m++) {
        const [mode] = MODES[(m + r) % MODES.length];
        const key = `${workers}:${mode}`;
        if (!figures.has(key)) figures.set(key, []);
        figures.get(key).push(await throughput(lib, workers, ms, mode));
      }
    }
  }
  for (const workers of WORKERS) {
    const label = (title) => `${workers} worker${workers > 1 ? 's' : ''}, ${title}`;
    for (const [mode, title] of MODES) {
      bench.value(label(title), figures.get(`${workers}:${mode}`), 'M pairs/s', {
        higherIsBetter: true,
        ...(mode === 'separate' ? {} : { baseline: label(MODES[0][1]) }),
        ...(workers > 2 && mode === 'separate' ? { note: `${workers} workers on 2 cores` } : {}),
      });
    }
  }
}

exports.run = async function run(bench, lib) {
  const view = lib.snapshotView;
  const RSS = lib.SnapshotField.rss;
  lib.ensureSampler();

  bench.section('Current RSS');
  bench.op('process.memoryUsage.rss()', (n) => {
    for (let i = 0; i < n; i++) sink(process.memoryUsage.rss());
  });
  bench.op('snapshot read from JS (snapshotView[rss])', (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += view[RSS];
    sink(s);
  }, { baseline: 'process.memoryUsage.rss()', target: '≤ 5 ns', maxNs: 5 });
  bench.op('fresh RSS read: readRss()', (n) => {
    for (let i = 0; i < n; i++) sink(lib.readRss());
  }, { baseline: 'process.memoryUsage.rss()', target: '≤ 1.5 µs; ≥ 5× better', maxNs: 1500, minRatio: 5 });

  bench.section('Disk free');
  const dir = os.tmpdir();
  bench.op('fs.statfsSync(dir)', (n) => {
    for (let i = 0; i < n; i++) sink(fs.statfsSync(dir).bavail);
  });
  bench.op('readDisk(dir)', (n) => {
    for (let i = 0; i < n; i++) sink(lib.readDisk(dir).available);
  }, { baseline: 'fs.statfsSync(dir)', target: 'no slower than fs.statfsSync', minRatio: 1 });
  const reader = lib.DiskReader.open(dir);
  const out = new Float64Array(3);
  bench.op('DiskReader.readInto() (kept-open fd, fstatvfs)', (n) => {
    for (let i = 0; i < n; i++) {
      reader.readInto(out);
      sink(out[2]);
    }
  }, { baseline: 'fs.statfsSync(dir)', target: 'no slower than fs.statfsSync', minRatio: 1 });
  bench.op('DiskReader.read() (returns an object)', (n) => {
    for (let i = 0; i < n; i++) sink(reader.read().available);
  }, { baseline: 'fs.statfsSync(dir)', target: 'no slower than fs.statfsSync', minRatio: 1 });
  await bench.flush(); // time the rows above before closing what they use
  reader.close();

  bench.section('System CPU sample');
  bench.op('os.cpus() delta (one sample: os.cpus() + sum of times)', (n) => {
    let prev = 0;
    for (let i = 0; i < n; i++) {
      let busy = 0;
      let idle = 0;
      for (const c of os.cpus()) {
        busy += c.times.user + c.times.nice + c.times.sys + c.times.irq;
        idle += c.times.idle;
      }
      sink(busy - prev + idle);
      prev = busy;
    }
  });
  bench.op('readSystemCpu() (kept-open /proc/stat)', (n) => {
    let prev = lib.readSystemCpu();
    for (let i = 0; i < n; i++) {
      const cur = lib.readSystemCpu();
      sink(lib.cpuLoadBetween(prev, cur));
      prev = cur;
    }
  }, { baseline: 'os.cpus() delta (one sample: os.cpus() + sum of times)', target: '≥ 5× better', minRatio: 5 });

  bench.section('Budget reserve+release pair from JS');
  // The obvious JS way with the same semantics: a 64-bit CAS loop that never
  // goes above the limit, on a SharedArrayBuffer.
  const sab = new BigInt64Array(new SharedArrayBuffer(16));
  const LIMIT = 1n << 40n;
  bench.op('JS Atomics on a SharedArrayBuffer (BigInt64 CAS + sub)', (n) => {
    for (let i = 0; i < n; i++) {
      const b = BigInt(64 + (i & 255));
      for (;;) {
        const cur = Atomics.load(sab, 0);
        if (cur + b > LIMIT) break;
        if (Atomics.compareExchange(sab, 0, cur, cur + b) === cur) break;
      }
      Atomics.sub(sab, 0, b);
    }
  });
  const i32 = new Int32Array(new SharedArrayBuffer(8));
  bench.op('JS Atomics, 32-bit (Int32 CAS + sub)', (n) => {
    for (let i = 0; i < n; i++) {
      const b = 64 + (i & 255);
      for (;;) {
        const cur = Atomics.load(i32, 0);
        if (cur + b > 1e9) break;
        if (Atomics.compareExchange(i32, 0, cur, cur + b) === cur) break;
      }
      Atomics.sub(i32, 0, b);
    }
  }, { baseline: 'JS Atomics on a SharedArrayBuffer (BigInt64 CAS + sub)' });
  const napiBudget = lib.Budget.open('bench-napi', 1 << 30);
  bench.op('two N-API calls (binding.budgetReserve + budgetRelease)', (n) => {
    const slot = napiBudget.slot;
    for (let i = 0; i < n; i++) {
      const b = 64 + (i & 255);
      if (binding.budgetReserve(slot, b) === 0) binding.budgetRelease(slot, b);
    }
  }, { baseline: 'JS Atomics on a SharedArrayBuffer (BigInt64 CAS + sub)' });
  const narrow = lib.Budget.open('bench-narrow', 1 << 30);
  bench.op('Budget tryReserve+release (limit < 4 GiB)', (n) => {
    for (let i = 0; i < n; i++) {
      const b = 64 + (i & 255);
      if (narrow.tryReserve(b)) narrow.release(b);
    }
  }, { baseline: 'JS Atomics on a SharedArrayBuffer (BigInt64 CAS + sub)', target: '≤ 30 ns', maxNs: 30 });
  const wide = lib.Budget.open('bench-wide', 2 ** 40);
  bench.op('Budget tryReserve+release (limit ≥ 4 GiB, 64-bit)', (n) => {
    for (let i = 0; i < n; i++) {
      const b = 64 + (i & 255);
      if (wide.tryReserve(b)) wide.release(b);
    }
  }, { baseline: 'JS Atomics on a SharedArrayBuffer (BigInt64 CAS + sub)', target: '≤ 1.2× the BigInt64 loop', minRatio: 1 / 1.2 });
  // A machine-wide budget: one native call per operation, under the lock in
  // the shared file (uncontended here). Its ratio is against the process-wide
  // pair; the floor's row above gives the other one.
  const machine = process.platform === 'linux' ? lib.Budget.open(`bench-machine-${process.pid}`, 1 << 30, { scope: 'machine' }) : null;
  if (machine) {
    bench.op('Budget tryReserve+release (machine-wide, scope: machine)', (n) => {
      for (let i = 0; i < n; i++) {
        const b = 64 + (i & 255);
        if (machine.tryReserve(b)) machine.release(b);
      }
    }, { baseline: 'Budget tryReserve+release (limit < 4 GiB)' });
    let k = 0;
    bench.op('machine budget: first open (creates the file) + close (removes it)', (n) => {
      for (let i = 0; i < n; i++) lib.Budget.open(`bench-first-${process.pid}-${k++}`, 1000, { scope: 'machine' }).close();
    });
  }
  await bench.flush();
  if (machine) {
    if (machine.used !== 0) throw new Error(`machine budget ended at ${machine.used}`);
    machine.close();
  }
  for (const b of [napiBudget, narrow, wide]) {
    if (b.used !== 0) throw new Error(`budget ${b.name} ended at ${b.used}`);
    b.close();
  }

  bench.section('Budget throughput, workers on one budget');
  const ms = bench.options.repMs >= 60 ? 400 : 150;
  const reps = Math.max(5, Math.min(bench.options.reps, 5));
  const one = [];
  const two = [];
  for (let r = 0; r < reps; r++) {
    one.push(await throughput(lib, 1, ms));
    two.push(await throughput(lib, 2, ms));
  }
  bench.value('1 worker', one, 'M pairs/s', { higherIsBetter: true });
  bench.value('2 workers, aggregate', two, 'M pairs/s', { higherIsBetter: true, baseline: '1 worker', note: '2 cores, one shared counter' });

  await throughputByMode(bench, lib, ms, reps);
};
