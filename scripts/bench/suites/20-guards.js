'use strict';
// Guards: the hot memory check in a tight loop against process.memoryUsage.rss()
// and the hot checks of toobusy-js and @fastify/under-pressure; a full
// MemoryGuard#check(); DiskSpaceGuard#checkBeforeWrite() against
// fs.statfsSync; a CPU sample against an os.cpus() delta; and what each hot
// check sees of new memory while the event loop is blocked.
const fs = require('node:fs');
const os = require('node:os');
const v8 = require('node:v8');
const { sink } = require('../harness');

function optional(name) {
  try {
    return require(name);
  } catch {
    return null;
  }
}

/** Busy-waits (the event loop stays blocked) for `ms`. */
function spin(ms) {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

async function run(bench, lib) {
  const g = lib && typeof lib.MemoryGuard === 'function' ? lib : require('../../../dist/guards');
  const sampler = lib && typeof lib.readSystemCpu === 'function' ? lib : require('../../../dist/sampler');
  const toobusy = optional('toobusy-js');
  const fastifyFactory = optional('fastify');
  const underPressure = optional('@fastify/under-pressure');

  const guard = new g.MemoryGuard();
  const resource = new g.ResourceGuard({ memory: guard });
  let app = null;
  if (fastifyFactory && underPressure) {
    app = fastifyFactory();
    await app.register(underPressure, {
      maxEventLoopDelay: 1000,
      maxHeapUsedBytes: 8 * 1024 ** 3,
      maxRssBytes: 16 * 1024 ** 3,
      sampleInterval: 10,
    });
    await app.ready();
  }

  // ---- hot check --------------------------------------------------------------------
  bench.section('guards: hot memory check in a tight loop');
  bench.op('process.memoryUsage.rss()', (n) => {
    let acc = 0;
    for (let i = 0; i < n; i++) acc += process.memoryUsage.rss();
    sink(acc);
  });
  if (toobusy) {
    bench.op('toobusy-js toobusy()', (n) => {
      let busy = 0;
      for (let i = 0; i < n; i++) if (toobusy()) busy++;
      sink(busy);
    });
  } else {
    console.log('  (toobusy-js not installed: its row is skipped)');
  }
  if (app) {
    bench.op('@fastify/under-pressure isUnderPressure()', (n) => {
      let busy = 0;
      for (let i = 0; i < n; i++) if (app.isUnderPressure()) busy++;
      sink(busy);
    });
  } else {
    console.log('  (fastify / @fastify/under-pressure not installed: their row is skipped)');
  }
  const ok = bench.op(
    'MemoryGuard#ok() (RSS + V8 heap)',
    (n) => {
      let fine = 0;
      for (let i = 0; i < n; i++) if (guard.ok()) fine++;
      sink(fine);
    },
    { baseline: 'process.memoryUsage.rss()', target: '≤ 5 ns', maxNs: 5 },
  );
  if (toobusy) bench.value('MemoryGuard#ok(), same run, vs toobusy()', ok.samples, 'ns/op', { baseline: 'toobusy-js toobusy()' });
  if (app) {
    bench.value('MemoryGuard#ok(), same run, vs isUnderPressure()', ok.samples, 'ns/op', {
      baseline: '@fastify/under-pressure isUnderPressure()',
    });
  }
  bench.op(
    'ResourceGuard#ok()',
    (n) => {
      let fine = 0;
      for (let i = 0; i < n; i++) if (resource.ok()) fine++;
      sink(fine);
    },
    { baseline: 'process.memoryUsage.rss()', target: '≤ 5 ns', maxNs: 5 },
  );

  // ---- full checks --------------------------------------------------------------
  bench.section('guards: full memory check');
  bench.op('process.memoryUsage()', (n) => {
    let acc = 0;
    for (let i = 0; i < n; i++) acc += process.memoryUsage().rss;
    sink(acc);
  });
  bench.op('v8.getHeapStatistics()', (n) => {
    let acc = 0;
    for (let i = 0; i < n; i++) acc += v8.getHeapStatistics().used_heap_size;
    sink(acc);
  });
  bench.op(
    'MemoryGuard#check() (fresh RSS + heap, status object)',
    (n) => {
      let acc = 0;
      for (let i = 0; i < n; i++) acc += guard.check().current;
      sink(acc);
    },
    { baseline: 'process.memoryUsage()' },
  );
  const budget = new g.MemoryBudget();
  bench.op(
    'MemoryBudget#checkUsage() (500 ms cache)',
    (n) => {
      for (let i = 0; i < n; i++) budget.checkUsage();
    },
    { baseline: 'process.memoryUsage()' },
  );

  // ---- disk ------------------------------------------------------------------------
  bench.section('guards: disk space before a write');
  const dir = os.tmpdir();
  const disk = new g.DiskSpaceGuard({ path: dir, minFree: 0, softFree: 0 });
  bench.op(`fs.statfsSync('${dir}')`, (n) => {
    let acc = 0;
    for (let i = 0; i < n; i++) acc += fs.statfsSync(dir).bavail;
    sink(acc);
  });
  bench.op(
    'DiskSpaceGuard#checkBeforeWrite(4096)',
    (n) => {
      let acc = 0;
      for (let i = 0; i < n; i++) acc += disk.checkBeforeWrite(4096);
      sink(acc);
    },
    { baseline: `fs.statfsSync('${dir}')` },
  );
  bench.op(
    'DiskSpaceGuard#recordWrite(4096) (re-reads every 100)',
    (n) => {
      for (let i = 0; i < n; i++) disk.recordWrite(4096);
    },
    { baseline: `fs.statfsSync('${dir}')` },
  );

  // ---- CPU ---------------------------------------------------------------------------
  bench.section('guards: CPU load sample');
  let prevBusy = 0;
  let prevTotal = 0;
  bench.op('os.cpus() delta (load since the previous call)', (n) => {
    let acc = 0;
    for (let i = 0; i < n; i++) {
      let busy = 0;
      let total = 0;
      for (const c of os.cpus()) {
        const t = c.times;
        busy += t.user + t.nice + t.sys + t.irq;
        total += t.user + t.nice + t.sys + t.irq + t.idle;
      }
      const load = total > prevTotal ? (busy - prevBusy) / (total - prevTotal) : 0;
      prevBusy = busy;
      prevTotal = total;
      acc += load;
    }
    sink(acc);
  });
  let prev = sampler.readSystemCpu();
  bench.op(
    'readSystemCpu() delta (fresh /proc/stat read)',
    (n) => {
      let acc = 0;
      for (let i = 0; i < n; i++) {
        const now = sampler.readSystemCpu();
        acc += sampler.cpuLoadBetween(prev, now) || 0;
        prev = now;
      }
      sink(acc);
    },
    { baseline: 'os.cpus() delta (load since the previous call)' },
  );
  const cpu = new g.CpuMonitor({ eventLoop: true });
  bench.op(
    'CpuMonitor#sample() (1 s window kept by the sampler thread)',
    (n) => {
      let acc = 0;
      for (let i = 0; i < n; i++) acc += cpu.sample().load;
      sink(acc);
    },
    { baseline: 'os.cpus() delta (load since the previous call)' },
  );

  // ---- freshness ---------------------------------------------------------------------
  // Allocate and touch 64 MiB of new memory in a synchronous block, spin
  // 50 ms (still blocked), and ask each source how much RSS grew. A fresh
  // read is the truth; timer-driven samplers cannot see the growth until the
  // event loop turns again. The buffers are kept, so every repetition needs
  // new pages rather than reusing freed ones.
  bench.section('guards: RSS growth seen with the event loop blocked (64 MiB allocated)');
  const MiB = 1024 * 1024;
  const seen = { truth: [], guard: [], pressure: [] };
  const retained = [];
  const view = sampler.snapshotView;
  const rssField = sampler.SnapshotField.rss;
  for (let rep = 0; rep < 5; rep++) {
    await new Promise((r) => setTimeout(r, 60));
    const beforeTruth = sampler.readRss();
    const beforeGuard = view[rssField];
    const beforePressure = app ? app.memoryUsage().rssBytes : 0;
    for (let k = 0; k < 64; k++) {
      const b = Buffer.allocUnsafe(MiB);
      for (let j = 0; j < b.length; j += 4096) b[j] = 1;
      retained.push(b);
    }
    spin(50);
    seen.truth.push((sampler.readRss() - beforeTruth) / MiB);
    seen.guard.push((view[rssField] - beforeGuard) / MiB);
    if (app) seen.pressure.push((app.memoryUsage().rssBytes - beforePressure) / MiB);
  }
  sink(retained.length);
  retained.length = 0;
  bench.value('fresh readRss() (the truth)', seen.truth, 'MiB', { higherIsBetter: true });
  if (app) {
    bench.value('@fastify/under-pressure memoryUsage().rssBytes', seen.pressure, 'MiB', { higherIsBetter: true });
  }
  bench.value('MemoryGuard snapshot (what ok() compares)', seen.guard, 'MiB', {
    higherIsBetter: true,
    baseline: 'fresh readRss() (the truth)',
  });

  await bench.flush();
  cpu.close();
  resource.close();
  if (toobusy) toobusy.shutdown();
  if (app) await app.close();
}

module.exports = { run };
