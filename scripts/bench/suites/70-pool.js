'use strict';
// ResourcePool against generic-pool and tarn, side by side in one run:
// acquire + release of an idle resource, many borrowers contending for a few
// resources, and the pool load test in real time (5000
// acquisitions on a pool of 2000, 5 s timeout, 10 ms hold).
const { performance } = require('node:perf_hooks');
const { sink } = require('../harness');

function optional(name) {
  try {
    return require(name);
  } catch {
    console.log(`  (${name} is not installed: its rows are skipped)`);
    return null;
  }
}

const range = (row) => {
  const s = [...row.samples].sort((a, b) => a - b);
  const f = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(2));
  console.log(`    range ${f(s[0])}–${f(s[s.length - 1])} ${row.unit} over ${s.length} repetitions`);
  return row;
};

let ids = 0;
const newResource = () => ({ id: ++ids });

/** The three pools behind one acquire/release interface. */
async function makePools(lib, genericPool, tarn, max) {
  const pools = [];
  const rg = new lib.ResourcePool({ create: newResource, destroy: () => undefined }, { max, acquireTimeout: 30_000 });
  pools.push({
    name: 'resource-guard ResourcePool',
    acquire: () => rg.acquire(),
    release: (r) => rg.release(r),
    close: () => rg.close(),
  });
  if (genericPool) {
    const gp = genericPool.createPool({ create: async () => newResource(), destroy: async () => undefined }, { max, min: 0, acquireTimeoutMillis: 30_000 });
    pools.push({
      name: 'generic-pool',
      acquire: () => gp.acquire(),
      release: (r) => gp.release(r),
      close: async () => {
        await gp.drain();
        await gp.clear();
      },
    });
  }
  if (tarn) {
    const tp = new tarn.Pool({ create: async () => newResource(), destroy: () => undefined, min: 0, max, acquireTimeoutMillis: 30_000 });
    pools.push({
      name: 'tarn',
      acquire: () => tp.acquire().promise,
      release: (r) => tp.release(r),
      close: () => tp.destroy(),
    });
  }
  // Warm every pool to its maximum so the timed loops measure reuse, not creation.
  for (const p of pools) {
    const held = await Promise.all(Array.from({ length: max }, () => p.acquire()));
    for (const r of held) p.release(r);
    await new Promise((r) => setImmediate(r));
  }
  return pools;
}

/**
 * Times `body(pool, n)` for every pool, interleaved: each repetition runs
 * every pool once, in a rotating order, so a burst of load on the shared
 * machine lands on all of them rather than on one row. Returns ns/op
 * samples per pool.
 */
async function interleaved(bench, pools, body) {
  const { reps, warmup, repMs } = bench.options;
  const n = new Map();
  for (const p of pools) {
    let k = 1;
    for (;;) {
      const t0 = performance.now();
      await body(p, k);
      const dt = performance.now() - t0;
      if (dt >= repMs / 4 || k >= 1 << 22) {
        n.set(p.name, Math.max(1, Math.round((k * repMs) / Math.max(dt, 0.001))));
        break;
      }
      k *= 4;
    }
  }
  const samples = new Map(pools.map((p) => [p.name, []]));
  for (let r = 0; r < warmup + reps; r++) {
    for (let i = 0; i < pools.length; i++) {
      const p = pools[(i + r) % pools.length];
      const k = n.get(p.name);
      const t0 = performance.now();
      await body(p, k);
      const dt = performance.now() - t0;
      if (r >= warmup) samples.get(p.name).push((dt * 1e6) / k);
    }
  }
  return samples;
}

/** Rows for one section: each pool's ns/op, then ResourcePool against each peer. */
function report(bench, pools, samples, label) {
  const rg = pools[0].name;
  for (const p of pools) range(bench.value(`${p.name}: ${label}`, samples.get(p.name), 'ns/op'));
  for (const p of pools.slice(1)) {
    bench.value(`ResourcePool, vs ${p.name}`, samples.get(rg), 'ns/op', { baseline: `${p.name}: ${label}` });
    // The same comparison repetition by repetition (both measured back to back).
    const ratios = samples.get(rg).map((v, i) => samples.get(p.name)[i] / v);
    range(bench.value(`ResourcePool vs ${p.name}, per-repetition speed ratio`, ratios, '×', { higherIsBetter: true }));
  }
}

exports.run = async function run(bench, lib) {
  const genericPool = optional('generic-pool');
  const tarn = optional('tarn');

  // ---- one borrower ------------------------------------------------------------
  bench.section('pool: acquire + release of an idle resource, one borrower');
  let pools = await makePools(lib, genericPool, tarn, 8);
  let samples = await interleaved(bench, pools, async (p, n) => {
    for (let i = 0; i < n; i++) {
      const r = await p.acquire();
      sink(r.id);
      await p.release(r);
    }
  });
  report(bench, pools, samples, 'await acquire(); release()');
  for (const p of pools) await p.close();

  // ---- contention ------------------------------------------------------------------
  bench.section('pool: 64 borrowers contending for 8 resources');
  pools = await makePools(lib, genericPool, tarn, 8);
  samples = await interleaved(bench, pools, async (p, n) => {
    const per = Math.max(1, Math.ceil(n / 64));
    const borrower = async () => {
      for (let i = 0; i < per; i++) {
        const r = await p.acquire();
        await null; // hold across a turn of the microtask queue
        await p.release(r);
      }
    };
    await Promise.all(Array.from({ length: 64 }, borrower));
  });
  report(bench, pools, samples, 'acquire/release, 64 borrowers');
  for (const p of pools) await p.close();

  // ---- the pool load test, real time --------------------------------------
  bench.section('pool load test: 5000 acquisitions on a pool of 2000, 5 s timeout, ~10 ms hold');
  const hold = () => new Promise((r) => setTimeout(r, 10));
  const reps = Math.max(5, Math.min(bench.options.reps, 7));
  const ok = [];
  const p50 = [];
  const p99 = [];
  for (let r = 0; r < reps + 1; r++) {
    const pool = new lib.ResourcePool({ create: newResource, destroy: () => undefined }, { max: 2000, acquireTimeout: 5000, waitSamples: 8192 });
    const results = await Promise.allSettled(Array.from({ length: 5000 }, () => pool.use(hold)));
    const m = pool.metrics();
    if (m.inUse !== 0) throw new Error('bench: pool load test left resources in use');
    await pool.close();
    if (r === 0) continue; // warm-up
    ok.push((100 * results.filter((x) => x.status === 'fulfilled').length) / 5000);
    p50.push(m.waitP50);
    p99.push(m.waitP99);
  }
  bench.value('ResourcePool success rate', ok, '%', { higherIsBetter: true, target: '≥ 95 %', min: 95 });
  range(bench.value('ResourcePool p50 wait', p50, 'ms'));
  range(bench.value('ResourcePool p99 wait', p99, 'ms', { target: '< 100 ms', max: 100 }));
};
