'use strict';
// Sampler thread cost: what the native sampler thread costs an idle process,
// measured from that thread's own CPU time (/proc/self/task/<tid>/schedstat),
// not from wall-clock timing, in fresh processes (workers/sampler-cost.js).
// Also the real period at 1 ms: the snapshot's timestamp span over the
// samples taken. Linux only (the thread's CPU time is read from /proc).
//
// Beside it, the floor: a native thread that wakes at the same interval the
// same way and does nothing else (native/wake-floor.cc, compiled here with
// the C++ compiler node-gyp uses). On a virtual machine waking alone can cost
// tens of microseconds, which no sampler can go below; the ratio against the
// floor is what the sampler's own work adds.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const script = path.join(__dirname, '..', 'workers', 'sampler-cost.js');
const floorSource = path.join(__dirname, '..', 'native', 'wake-floor.cc');
const floorBinary = path.join(__dirname, '..', '..', '..', 'build', 'bench', 'wake-floor');

function parse(what, out) {
  const r = JSON.parse(out.trim().split('\n').pop());
  if (r.error) throw new Error(`${what}: ${r.error}`);
  return r;
}

function measure(intervalMs, seconds) {
  return parse('sampler-cost', execFileSync(process.execPath, [script, String(intervalMs), String(seconds)], { encoding: 'utf8' }));
}

// The floor's program, built when missing or older than its source; null
// (with the reason) where no C++ compiler runs.
function buildFloor() {
  try {
    if (fs.existsSync(floorBinary) && fs.statSync(floorBinary).mtimeMs >= fs.statSync(floorSource).mtimeMs) return { binary: floorBinary };
    fs.mkdirSync(path.dirname(floorBinary), { recursive: true });
    const cxx = process.env.CXX || 'c++';
    execFileSync(cxx, ['-O2', '-std=c++17', '-pthread', floorSource, '-o', floorBinary], { stdio: ['ignore', 'ignore', 'pipe'] });
    return { binary: floorBinary };
  } catch (err) {
    return { binary: null, reason: String(err.message).split('\n')[0] };
  }
}

function measureFloor(binary, intervalMs, seconds) {
  return parse('wake-floor', execFileSync(binary, [String(intervalMs), String(seconds)], { encoding: 'utf8' }));
}

exports.run = async function run(bench) {
  if (process.platform !== 'linux') return;
  const quick = bench.options.repMs <= 20; // --quick
  const seconds = quick ? 2 : 10;
  const runs = quick ? 1 : 5;
  bench.section('sampler thread cost (idle process, thread CPU time)');
  const floor = buildFloor();
  const at = { 10: [], 1: [] };
  const floorAt = { 10: [], 1: [] };
  // Alternate the intervals run by run, and which of sampler and floor goes
  // first, so that load that comes and goes falls on both alike.
  for (let i = 0; i < runs; i++) {
    for (const ms of [10, 1]) {
      const pair = [() => at[ms].push(measure(ms, seconds))];
      if (floor.binary) pair.push(() => floorAt[ms].push(measureFloor(floor.binary, ms, seconds)));
      if (i % 2 === 1) pair.reverse();
      for (const run of pair) run();
    }
  }
  for (const ms of [10, 1]) {
    const floorName = `${ms} ms: floor, a thread that only wakes (CPU per wake-up)`;
    if (floor.binary) {
      bench.value(floorName, floorAt[ms].map((r) => r.cpuNsPerSample / 1000), 'µs', {
        note: `${seconds} s, ${runs} process(es); native/wake-floor.cc: the sampler's wait, no work`,
      });
    }
    bench.value(`${ms} ms: sampler thread CPU per sample`, at[ms].map((r) => r.cpuNsPerSample / 1000), 'µs', {
      note: `${seconds} s idle, ${runs} process(es); includes wake-up and scheduling cost on this machine${floor.binary ? '' : `; no floor row: ${floor.reason}`}`,
      baseline: floor.binary ? floorName : undefined,
    });
    if (floor.binary) {
      bench.value(`${ms} ms: floor, % of one core`, floorAt[ms].map((r) => r.coreFraction * 100), '%');
    }
    bench.value(`${ms} ms: % of one core`, at[ms].map((r) => r.coreFraction * 100), '%', {
      target: ms === 10 ? '≤ 0.3 % of a core' : '',
      max: ms === 10 ? 0.3 : undefined,
      baseline: floor.binary ? `${ms} ms: floor, % of one core` : undefined,
    });
  }
  bench.value('1 ms: real period', at[1].map((r) => r.realPeriodMs), 'ms', {
    target: 'within 5 % of 1 ms',
    max: 1.05,
    note: 'timestamp span / samples taken',
  });
};
