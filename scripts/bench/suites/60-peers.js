'use strict';
// resource-guard against the packages a Node user would reach for instead,
// side by side in one run: RSS, disk free, CPU load, and how stale each hot
// value gets while the event loop is blocked.
const fs = require('node:fs');
const os = require('node:os');
const { sink } = require('../harness');

function optional(name) {
  try {
    return require(name);
  } catch {
    console.log(`  (${name} is not installed: its rows are skipped)`);
    return null;
  }
}

function cpusTimes() {
  let busy = 0;
  let idle = 0;
  for (const c of os.cpus()) {
    busy += c.times.user + c.times.nice + c.times.sys + c.times.irq;
    idle += c.times.idle;
  }
  return { busy, idle };
}

exports.run = async function run(bench, lib) {
  const pidusage = optional('pidusage');
  const checkDiskSpace = optional('check-disk-space');
  const diskusage = optional('diskusage');
  const si = optional('systeminformation');
  const toobusy = optional('toobusy-js');
  const fastify = optional('fastify');
  const underPressure = optional('@fastify/under-pressure');
  lib.ensureSampler();
  const view = lib.snapshotView;
  const F = lib.SnapshotField;

  // ---- current RSS --------------------------------------------------------------
  bench.section('peers: current RSS');
  bench.op('process.memoryUsage()', (n) => {
    for (let i = 0; i < n; i++) sink(process.memoryUsage().rss);
  });
  const rssRow = bench.op('process.memoryUsage.rss()', (n) => {
    for (let i = 0; i < n; i++) sink(process.memoryUsage.rss());
  });
  if (pidusage) {
    await bench.opAsync('pidusage(process.pid)', async (n) => {
      for (let i = 0; i < n; i++) sink((await pidusage(process.pid)).memory);
    });
  }
  const hot = bench.op('resource-guard hot read (snapshotView[rss])', (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += view[F.rss];
    sink(s);
  }, { baseline: 'process.memoryUsage()' });
  const fresh = bench.op('resource-guard fresh read (readRss())', (n) => {
    for (let i = 0; i < n; i++) sink(lib.readRss());
  }, { baseline: 'process.memoryUsage()' });
  await bench.flush();
  bench.value('resource-guard hot read, vs process.memoryUsage.rss()', hot.samples, 'ns/op', { baseline: 'process.memoryUsage.rss()' });
  bench.value('resource-guard fresh read, vs process.memoryUsage.rss()', fresh.samples, 'ns/op', { baseline: 'process.memoryUsage.rss()' });
  if (pidusage) bench.value('resource-guard fresh read, vs pidusage', fresh.samples, 'ns/op', { baseline: 'pidusage(process.pid)' });
  sink(rssRow.median);
  if (pidusage && typeof pidusage.clear === 'function') pidusage.clear();

  // ---- disk free ----------------------------------------------------------------
  bench.section('peers: disk free');
  const dir = os.tmpdir();
  bench.op('fs.statfsSync(dir)', (n) => {
    for (let i = 0; i < n; i++) sink(fs.statfsSync(dir).bavail);
  });
  await bench.opAsync('fs.promises.statfs(dir)', async (n) => {
    for (let i = 0; i < n; i++) sink((await fs.promises.statfs(dir)).bavail);
  });
  if (checkDiskSpace) {
    const cds = checkDiskSpace.default ?? checkDiskSpace;
    await bench.opAsync('check-disk-space (spawns df)', async (n) => {
      for (let i = 0; i < n; i++) sink((await cds(dir)).free);
    });
  }
  if (diskusage) {
    bench.op('diskusage.checkSync(dir)', (n) => {
      for (let i = 0; i < n; i++) sink(diskusage.checkSync(dir).available);
    });
  }
  const rd = bench.op('resource-guard readDisk(dir)', (n) => {
    for (let i = 0; i < n; i++) sink(lib.readDisk(dir).available);
  }, { baseline: 'fs.statfsSync(dir)' });
  const reader = lib.DiskReader.open(dir);
  const out = new Float64Array(3);
  const kept = bench.op('resource-guard DiskReader.readInto() (kept fd)', (n) => {
    for (let i = 0; i < n; i++) {
      reader.readInto(out);
      sink(out[2]);
    }
  }, { baseline: 'fs.statfsSync(dir)' });
  await bench.flush();
  reader.close();
  bench.value('resource-guard DiskReader, vs fs.promises.statfs', kept.samples, 'ns/op', { baseline: 'fs.promises.statfs(dir)' });
  if (checkDiskSpace) bench.value('resource-guard readDisk, vs check-disk-space', rd.samples, 'ns/op', { baseline: 'check-disk-space (spawns df)' });
  if (diskusage) bench.value('resource-guard DiskReader, vs diskusage', kept.samples, 'ns/op', { baseline: 'diskusage.checkSync(dir)' });

  // ---- CPU load -----------------------------------------------------------------
  bench.section('peers: CPU load');
  bench.op('os.cpus() delta', (n) => {
    let prev = cpusTimes();
    for (let i = 0; i < n; i++) {
      const cur = cpusTimes();
      const busy = cur.busy - prev.busy;
      sink(busy / (busy + cur.idle - prev.idle || 1));
      prev = cur;
    }
  });
  bench.op('os.loadavg() (1-minute average, not a current load)', (n) => {
    for (let i = 0; i < n; i++) sink(os.loadavg()[0]);
  });
  if (si) {
    await si.currentLoad();
    await bench.opAsync('systeminformation.currentLoad() (caches for 200 ms)', async (n) => {
      for (let i = 0; i < n; i++) sink((await si.currentLoad()).currentLoad);
    });
  }
  const sampled = bench.op('resource-guard readSystemCpu() delta', (n) => {
    let prev = lib.readSystemCpu();
    for (let i = 0; i < n; i++) {
      const cur = lib.readSystemCpu();
      sink(lib.cpuLoadBetween(prev, cur));
      prev = cur;
    }
  }, { baseline: 'os.cpus() delta' });
  const snapLoad = bench.op('resource-guard snapshot load (snapshotView[sysLoad])', (n) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += view[F.sysLoad];
    sink(s);
  }, { baseline: 'os.cpus() delta' });
  await bench.flush();
  if (si) {
    bench.value('resource-guard readSystemCpu() delta, vs systeminformation', sampled.samples, 'ns/op', { baseline: 'systeminformation.currentLoad() (caches for 200 ms)' });
  }
  sink(snapLoad.median);

  // ---- freshness while the event loop is blocked --------------------------------
  // For 300 ms the loop is blocked while 1 MiB is allocated and touched every
  // 5 ms. Each source is polled every millisecond; its staleness at the end
  // is the time since it last updated: for resource-guard, the timestamp of
  // the sample it holds; for the timer-based peers, the last change of their
  // value (their timers cannot run while the loop is blocked, so theirs is
  // the whole block); a fresh process.memoryUsage.rss() read is 0 by
  // definition and is listed for reference.
  bench.section('peers: staleness of the hot value after 300 ms with the event loop blocked (lower is better)');
  let app = null;
  if (fastify && underPressure) {
    app = fastify();
    await app.register(underPressure, { maxRssBytes: 64 * 1024 ** 3, maxEventLoopDelay: 60_000, sampleInterval: 10 });
    await app.ready();
  }
  if (toobusy) toobusy.interval(20);
  const sources = [['process.memoryUsage.rss() (a fresh read each time, µs each)', () => performance.now()]];
  if (app) sources.push(['@fastify/under-pressure memoryUsage().rssBytes', () => app.memoryUsage().rssBytes]);
  if (toobusy) sources.push(['toobusy-js lag()', () => toobusy.lag()]);
  sources.push(['resource-guard snapshotView[rss]', () => view[F.timestampMs]]);
  const stale = new Map(sources.map(([name]) => [name, []]));
  const MiB = 1024 * 1024;
  for (let rep = 0; rep < 5; rep++) {
    await new Promise((r) => setTimeout(r, 100)); // let timers run first
    const keep = [];
    const last = sources.map(([, fn]) => fn());
    const changed = sources.map(() => performance.now());
    const start = performance.now();
    let nextAlloc = start;
    let nextPoll = start;
    while (performance.now() - start < 300) {
      const now = performance.now();
      if (now >= nextAlloc) {
        const b = Buffer.allocUnsafe(MiB);
        for (let j = 0; j < b.length; j += 4096) b[j] = 1;
        keep.push(b);
        nextAlloc += 5;
      }
      if (now >= nextPoll) {
        for (let s = 0; s < sources.length; s++) {
          const v = sources[s][1]();
          if (v !== last[s]) {
            last[s] = v;
            changed[s] = now;
          }
        }
        nextPoll += 1;
      }
    }
    const end = performance.now();
    sources.forEach(([name], s) => stale.get(name).push(end - changed[s]));
    sink(keep.length);
  }
  for (const [name] of sources) {
    bench.value(name, stale.get(name), 'ms', {
      baseline: name.startsWith('resource-guard') ? (app ? '@fastify/under-pressure memoryUsage().rssBytes' : undefined) : undefined,
    });
  }
  if (toobusy) bench.value('resource-guard snapshotView[rss], vs toobusy-js', stale.get('resource-guard snapshotView[rss]'), 'ms', { baseline: 'toobusy-js lag()' });
  if (toobusy) toobusy.shutdown();
  await bench.flush();
  if (app) await app.close();
};
