'use strict';
// Sampler thread cost: what the native sampler thread costs an idle process,
// measured from that thread's own CPU time (/proc/self/task/<tid>/schedstat),
// not from wall-clock timing, in fresh processes (workers/sampler-cost.js).
// Also the real period at 1 ms: the snapshot's timestamp span over the
// samples taken. Linux only (the thread's CPU time is read from /proc).
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const script = path.join(__dirname, '..', 'workers', 'sampler-cost.js');

function measure(intervalMs, seconds) {
  const out = execFileSync(process.execPath, [script, String(intervalMs), String(seconds)], { encoding: 'utf8' });
  const r = JSON.parse(out.trim().split('\n').pop());
  if (r.error) throw new Error(`sampler-cost: ${r.error}`);
  return r;
}

exports.run = async function run(bench) {
  if (process.platform !== 'linux') return;
  const quick = bench.options.repMs <= 20; // --quick
  const seconds = quick ? 2 : 10;
  const runs = quick ? 1 : 3;
  bench.section('sampler thread cost (idle process, thread CPU time)');
  const at = { 10: [], 1: [] };
  // Alternate the two intervals run by run.
  for (let i = 0; i < runs; i++) for (const ms of [10, 1]) at[ms].push(measure(ms, seconds));
  for (const ms of [10, 1]) {
    bench.value(`${ms} ms: sampler thread CPU per sample`, at[ms].map((r) => r.cpuNsPerSample / 1000), 'µs', {
      note: `${seconds} s idle, ${runs} process(es); includes wake-up and scheduling cost on this machine`,
    });
    bench.value(`${ms} ms: % of one core`, at[ms].map((r) => r.coreFraction * 100), '%', {
      target: ms === 10 ? '≤ 0.3 % of a core' : '',
      max: ms === 10 ? 0.3 : undefined,
    });
  }
  bench.value('1 ms: real period', at[1].map((r) => r.realPeriodMs), 'ms', {
    target: 'within 5 % of 1 ms',
    max: 1.05,
    note: 'timestamp span / samples taken',
  });
};
