'use strict';
// Measures the native sampler thread from outside JS's own clock: starts the
// sampler at the interval given, finds the thread it created (the task that
// appeared in /proc/self/task), and after `seconds` of an idle event loop
// reports the thread's own CPU time (utime + stime from
// /proc/self/task/<tid>/stat) and the samples it took. Prints one JSON line.
//
//   node scripts/bench/workers/sampler-cost.js <intervalMs> <seconds>
const fs = require('node:fs');
const path = require('node:path');

const intervalMs = Number(process.argv[2] ?? 10);
const seconds = Number(process.argv[3] ?? 10);
const lib = require(path.join(__dirname, '..', '..', '..', 'dist', 'sampler.js'));

const tasks = () => new Set(fs.readdirSync('/proc/self/task'));
const ticks = Number(process.env.CLK_TCK || 100);

function threadCpuMs(tid) {
  const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
  return ((Number(f[11]) + Number(f[12])) * 1000) / ticks;
}

// Schedstat has nanosecond resolution where the kernel keeps it.
function threadCpuNs(tid) {
  try {
    const s = fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ');
    return Number(s[0]);
  } catch {
    return NaN;
  }
}

const before = tasks();
lib.setSamplerInterval(intervalMs);
lib.ensureSampler();
const fresh = [...tasks()].filter((t) => !before.has(t));
if (fresh.length !== 1) {
  console.log(JSON.stringify({ error: `expected one new thread, saw ${fresh.length}` }));
  process.exit(1);
}
const tid = fresh[0];
const view = lib.snapshotView;
const S = lib.SnapshotField;
const ns0 = threadCpuNs(tid);
const ms0 = threadCpuMs(tid);
const n0 = view[S.samples];
const t0 = view[S.timestampMs];
setTimeout(() => {
  const ns1 = threadCpuNs(tid);
  const ms1 = threadCpuMs(tid);
  const n1 = view[S.samples];
  const t1 = view[S.timestampMs];
  const samples = n1 - n0;
  const cpuNs = Number.isFinite(ns0) && Number.isFinite(ns1) ? ns1 - ns0 : (ms1 - ms0) * 1e6;
  lib.stopSampler();
  console.log(JSON.stringify({
    intervalMs,
    samples,
    cpuNs,
    cpuNsPerSample: cpuNs / samples,
    coreFraction: cpuNs / ((t1 - t0) * 1e6),
    realPeriodMs: (t1 - t0) / samples,
  }));
}, seconds * 1000);
