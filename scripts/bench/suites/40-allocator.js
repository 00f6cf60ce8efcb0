'use strict';
// LimitedAllocator and BudgetedCache: the reserve+release pair against the
// obvious JS and native ways, throughput of worker threads on one budget,
// charged Buffers against plain ones, and the cache against lru-cache.
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { performance } = require('node:perf_hooks');
const { sink } = require('../harness');

const dist = path.join(__dirname, '..', '..', '..', 'dist');
const { LimitedAllocator } = require(path.join(dist, 'allocator.js'));
const { BudgetedCache } = require(path.join(dist, 'cache.js'));
const { binding } = require(path.join(dist, 'binding.js'));

async function run(bench, lib) {
  pairs(bench, lib);
  await workers(bench);
  buffers(bench);
  cache(bench);
}

// ---- one thread -------------------------------------------------------------------

function pairs(bench, lib) {
  bench.section('allocator: reserve + release pair, one thread');
  const LIMIT = 1 << 30;

  // The same semantics done the obvious way in JS: a CAS loop that refuses
  // to pass the limit, and an atomic subtraction.
  const cell = new BigInt64Array(new SharedArrayBuffer(8));
  const limit64 = BigInt(LIMIT);
  const jsReserve = (n) => {
    const b = BigInt(n);
    let cur = Atomics.load(cell, 0);
    for (;;) {
      const next = cur + b;
      if (next > limit64) return false;
      const prev = Atomics.compareExchange(cell, 0, cur, next);
      if (prev === cur) return true;
      cur = prev;
    }
  };
  const jsRelease = (n) => {
    Atomics.sub(cell, 0, BigInt(n));
  };
  bench.op('JS Atomics: BigInt64Array CAS loop + Atomics.sub', (n) => {
    for (let i = 0; i < n; i++) {
      jsReserve(64);
      jsRelease(64);
    }
  });

  // The same on 32 bits: the two Atomics calls every exact pair needs, and
  // nothing else (no per-thread ledger, counts or peak).
  const cell32 = new Int32Array(new SharedArrayBuffer(4));
  bench.op(
    'JS Atomics: Int32Array CAS loop + Atomics.sub',
    (n) => {
      for (let i = 0; i < n; i++) {
        let cur = cell32[0];
        for (;;) {
          const next = cur + 64;
          if (next > LIMIT) break;
          const prev = Atomics.compareExchange(cell32, 0, cur, next);
          if (prev === cur) break;
          cur = prev;
        }
        Atomics.sub(cell32, 0, 64);
      }
    },
    { baseline: 'JS Atomics: BigInt64Array CAS loop + Atomics.sub' },
  );

  const budget = lib.Budget.create(LIMIT);
  const slot = budget.slot;
  const napi = bench.op(
    'two N-API calls: binding.budgetReserve + budgetRelease',
    (n) => {
      for (let i = 0; i < n; i++) {
        binding.budgetReserve(slot, 64);
        binding.budgetRelease(slot, 64);
      }
    },
    { baseline: 'JS Atomics: BigInt64Array CAS loop + Atomics.sub' },
  );

  bench.op(
    'Budget.tryReserve + release',
    (n) => {
      for (let i = 0; i < n; i++) {
        budget.tryReserve(64);
        budget.release(64);
      }
    },
    { baseline: 'JS Atomics: BigInt64Array CAS loop + Atomics.sub' },
  );
  bench.flush(); // synchronous: only synchronous rows are pending
  budget.close();

  const a = new LimitedAllocator(LIMIT);
  const raw = bench.op(
    'LimitedAllocator.reserveBytes + releaseBytes',
    (n) => {
      for (let i = 0; i < n; i++) {
        a.reserveBytes(64);
        a.releaseBytes(64);
      }
    },
    { baseline: 'JS Atomics: BigInt64Array CAS loop + Atomics.sub', target: '≤ 30 ns', maxNs: 30 },
  );
  bench.op(
    'LimitedAllocator.tryReserve + Reservation.release',
    (n) => {
      for (let i = 0; i < n; i++) a.tryReserve(64).release();
    },
    { baseline: 'JS Atomics: BigInt64Array CAS loop + Atomics.sub' },
  );
  // From 60 % to 96 % and back on every pair: the slow path that recomputes
  // the pressure level runs twice per pair (no listener attached). An
  // allocator of its own: the rows above are timed in the same rounds, and
  // with 60 % held on theirs, their 64-byte pairs would cross the 60 % mark
  // each time too.
  const crossing = new LimitedAllocator(LIMIT);
  crossing.reserveBytes(Math.floor(LIMIT * 0.6));
  const big = Math.floor(LIMIT * 0.36);
  bench.op(
    'LimitedAllocator.reserveBytes + releaseBytes, crossing levels each time',
    (n) => {
      for (let i = 0; i < n; i++) {
        crossing.reserveBytes(big);
        crossing.releaseBytes(big);
      }
    },
    { baseline: 'JS Atomics: BigInt64Array CAS loop + Atomics.sub' },
  );
  bench.flush();
  if (a.heldBytes !== 0) throw new Error(`allocator bench: ${a.heldBytes} bytes left held`);
  a.close();
  crossing.releaseBytes(crossing.heldBytes);
  crossing.close();
  bench.value('reserveBytes + releaseBytes speed-up over two N-API calls', [napi.median / raw.median], '×', { higherIsBetter: true });
}

// ---- worker threads on one budget -----------------------------------------------------

const WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const { LimitedAllocator } = require(workerData.allocatorPath);
const sync = new Int32Array(workerData.sab);
const a = LimitedAllocator.shared(workerData.name);
const pairs = workerData.pairs;
let round = 0;
parentPort.postMessage('ready');
for (;;) {
  Atomics.wait(sync, 0, round); // generation counter: the test bumps it to start a round
  round = Atomics.load(sync, 0);
  if (round < 0) break;
  for (let i = 0; i < pairs; i++) {
    a.reserveBytes(64);
    a.releaseBytes(64);
  }
  Atomics.add(sync, 1, 1);
  Atomics.notify(sync, 1);
}
a.close();
`;

async function workers(bench) {
  bench.section('allocator: aggregate throughput, worker threads on one budget');
  const reps = bench.options.reps;
  const warmup = bench.options.warmup;
  const pairsPerRound = Math.max(50_000, Math.round(bench.options.repMs * 30_000));
  for (const count of [1, 2, 4]) {
    const name = `bench-workers-${process.pid}-${count}`;
    const owner = LimitedAllocator.shared(name, 1 << 30);
    const sab = new SharedArrayBuffer(8);
    const sync = new Int32Array(sab);
    const ws = [];
    for (let i = 0; i < count; i++) {
      const w = new Worker(WORKER, {
        eval: true,
        workerData: { sab, name, pairs: pairsPerRound, allocatorPath: path.join(dist, 'allocator.js') },
      });
      await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      ws.push(w);
    }
    const samples = [];
    for (let r = 1; r <= warmup + reps; r++) {
      Atomics.store(sync, 1, 0);
      const t0 = performance.now();
      Atomics.store(sync, 0, r);
      Atomics.notify(sync, 0);
      // Blocking is fine here (this thread only waits); the deadline keeps a
      // worker that died from hanging the run.
      const deadline = t0 + 60_000;
      for (let done = 0; done < count; done = Atomics.load(sync, 1)) {
        if (performance.now() > deadline) throw new Error(`bench: ${count - done} worker(s) did not finish a round`);
        Atomics.wait(sync, 1, done, 1000);
      }
      const ms = performance.now() - t0;
      if (r > warmup) samples.push((count * pairsPerRound) / ms / 1000); // million pairs per second
    }
    Atomics.store(sync, 0, -1);
    Atomics.notify(sync, 0);
    await Promise.all(ws.map((w) => new Promise((resolve) => w.once('exit', resolve))));
    const used = owner.allocatedBytes;
    owner.close();
    if (used !== 0) throw new Error(`bench: ${used} bytes left on the shared budget`);
    const label = `${count} worker${count > 1 ? 's' : ''}: reserveBytes + releaseBytes pairs`;
    bench.value(label, samples, 'M pairs/s', {
      higherIsBetter: true,
      baseline: count > 1 ? '1 worker: reserveBytes + releaseBytes pairs' : undefined,
      note: `${require('node:os').cpus().length} CPUs`,
    });
  }
}

// ---- buffers --------------------------------------------------------------------

function buffers(bench) {
  for (const [size, label] of [
    [64, '64 B'],
    [4096, '4 KiB'],
    [65536, '64 KiB'],
  ]) {
    bench.section(`allocator: allocate + free vs Buffer, ${label}`);
    const base = `Buffer.allocUnsafe(${label}) (pooled below 4 KiB)`;
    bench.op(base, (n) => {
      for (let i = 0; i < n; i++) sink(Buffer.allocUnsafe(size)[0]);
    });
    bench.op(
      `Buffer.alloc(${label})`,
      (n) => {
        for (let i = 0; i < n; i++) sink(Buffer.alloc(size)[0]);
      },
      { baseline: base },
    );
    const a = new LimitedAllocator(1 << 30);
    bench.op(
      `allocator.allocate(${label}) + free`,
      (n) => {
        for (let i = 0; i < n; i++) {
          const b = a.allocate(size);
          sink(b[0]);
          a.free(b);
        }
      },
      { baseline: base },
    );
    bench.op(
      `allocator.allocateUnsafe(${label}) + free`,
      (n) => {
        for (let i = 0; i < n; i++) {
          const b = a.allocateUnsafe(size);
          sink(b[0]);
          a.free(b);
        }
      },
      { baseline: base },
    );
    bench.flush();
    a.close();
  }
}

// ---- cache ----------------------------------------------------------------------

function loadLruCache() {
  try {
    return require('lru-cache').LRUCache;
  } catch {
    return null;
  }
}

function cache(bench) {
  bench.section('cache: BudgetedCache vs lru-cache (maxSize)');
  const LRUCache = loadLruCache();
  if (LRUCache === null) console.log('  lru-cache is not installed (npm install --save-dev lru-cache): comparison rows skipped');
  const N = 10_000;
  const keys = Array.from({ length: N }, (_, i) => `key-${i}`);
  const values = keys.map((k) => ({ k }));
  const size = () => 100;

  // gets that hit: everything fits
  const lruAll = LRUCache && new LRUCache({ maxSize: N * 100, sizeCalculation: size });
  const ours = new BudgetedCache({ maxBytes: N * 100, sizeOf: size });
  for (let i = 0; i < N; i++) {
    lruAll?.set(keys[i], values[i]);
    ours.set(keys[i], values[i]);
  }
  const getHit = 'lru-cache get (hit)';
  if (lruAll) {
    bench.op(getHit, (n) => {
      for (let i = 0; i < n; i++) sink(lruAll.get(keys[i % N]) !== undefined);
    });
  }
  bench.op(
    'BudgetedCache get (hit)',
    (n) => {
      for (let i = 0; i < n; i++) sink(ours.get(keys[i % N]) !== undefined);
    },
    lruAll ? { baseline: getHit, target: '≤ 1.1× lru-cache', minRatio: 1 / 1.1 } : {},
  );

  // sets that evict: a tenth of the keys fit
  const lruSmall = LRUCache && new LRUCache({ maxSize: (N / 10) * 100, sizeCalculation: size });
  const oursSmall = new BudgetedCache({ maxBytes: (N / 10) * 100, sizeOf: size });
  const setEvict = 'lru-cache set (each evicts one)';
  if (lruSmall) {
    bench.op(setEvict, (n) => {
      for (let i = 0; i < n; i++) lruSmall.set(keys[i % N], values[i % N]);
    });
  }
  bench.op(
    'BudgetedCache set (each evicts one; bytes charged to the budget)',
    (n) => {
      for (let i = 0; i < n; i++) oursSmall.set(keys[i % N], values[i % N]);
    },
    lruSmall ? { baseline: setEvict } : {},
  );

  // sets of keys already cached: a new value of the same size each time
  const other = keys.map((k) => ({ k, v: 2 }));
  const lruOver = LRUCache && new LRUCache({ maxSize: N * 100, sizeCalculation: size });
  const oursOver = new BudgetedCache({ maxBytes: N * 100, sizeOf: size });
  for (let i = 0; i < N; i++) {
    lruOver?.set(keys[i], values[i]);
    oursOver.set(keys[i], values[i]);
  }
  const setOver = 'lru-cache set of a key already cached (new value)';
  if (lruOver) {
    bench.op(setOver, (n) => {
      for (let i = 0; i < n; i++) lruOver.set(keys[i % N], (i / N) & 1 ? values[i % N] : other[i % N]);
    });
  }
  bench.op(
    'BudgetedCache set of a key already cached (new value, overwritten in place)',
    (n) => {
      for (let i = 0; i < n; i++) oursOver.set(keys[i % N], (i / N) & 1 ? values[i % N] : other[i % N]);
    },
    lruOver ? { baseline: setOver, target: '≤ 1.3× lru-cache', minRatio: 1 / 1.3 } : {},
  );

  // gets that hit, with a time-to-live
  const lruTtl = LRUCache && new LRUCache({ maxSize: N * 100, sizeCalculation: size, ttl: 60_000 });
  const oursTtl = new BudgetedCache({ maxBytes: N * 100, sizeOf: size, ttlMs: 60_000 });
  for (let i = 0; i < N; i++) {
    lruTtl?.set(keys[i], values[i]);
    oursTtl.set(keys[i], values[i]);
  }
  const getTtl = 'lru-cache get (hit, ttl)';
  if (lruTtl) {
    bench.op(getTtl, (n) => {
      for (let i = 0; i < n; i++) sink(lruTtl.get(keys[i % N]) !== undefined);
    });
  }
  bench.op(
    'BudgetedCache get (hit, ttl)',
    (n) => {
      for (let i = 0; i < n; i++) sink(oursTtl.get(keys[i % N]) !== undefined);
    },
    lruTtl ? { baseline: getTtl } : {},
  );
  bench.flush();
  const s = ours.stats();
  if (s.hitRate !== 1) throw new Error(`bench: expected only hits, hit rate ${s.hitRate}`);
  ours.close();
  oursSmall.close();
  oursOver.close();
  oursTtl.close();
}

module.exports = { run };
