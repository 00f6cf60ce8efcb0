'use strict';
// Tasks run under limits: each runs in a worker thread and is stopped when it
// passes one of its limits; every run, successful or not, has a usage report.
//
//   node examples/task-limits.js
//
// Four tasks: one that completes within its limits, one that spins forever
// (stopped by its timeout), one that spends its fuel, and one that grows its
// heap without bound (stopped by the heap limit). Behind a Bulkhead, at most
// two run at once.
const { Bulkhead, runWithLimits, reportOf, TimeoutError, FuelExhaustedError, MemoryLimitError } = require('resource-guard');

const gate = new Bulkhead({ name: 'tasks', maxConcurrent: 2 });

const tasks = {
  // Completes: sums word lengths, spending one unit of fuel per word.
  wordLengths: {
    fn: (words, { fuel }) => words.reduce((n, w) => (fuel.consume(), n + w.length), 0),
    limits: { heap: '64MiB', timeout: 10_000, cpuTime: 5000, fuel: 1000 },
    input: ['resource', 'guard', 'keeps', 'a', 'process', 'inside', 'its', 'budget'],
  },
  // Never returns: the timeout terminates the worker, which stops even `for (;;);`.
  spin: {
    fn: () => {
      for (;;);
    },
    limits: { timeout: 300 },
  },
  // Counts forever, but each step spends fuel: deterministic whatever the machine's speed.
  countForever: {
    fn: (_input, { fuel }) => {
      for (let i = 0; ; i++) fuel.consume();
    },
    limits: { fuel: 50_000, timeout: 20_000 },
  },
  // Keeps every object it makes: V8 stops the worker at its heap limit.
  hoard: {
    fn: () => {
      const kept = [];
      for (let i = 0; ; i++) kept.push({ i, text: `item ${i}`, more: [i, i + 1, i + 2] });
    },
    limits: { heap: '32MiB', timeout: 30_000 },
  },
};

async function runOne(name, { fn, limits, input }) {
  try {
    const { value, report } = await gate.run(() => runWithLimits(fn, limits, { input }));
    return `${name}: ${report.exitReason}, value ${value}, ${report.wallTime.toFixed(0)} ms, fuel used ${report.fuelUsed}`;
  } catch (err) {
    const report = reportOf(err);
    if (err instanceof TimeoutError) return `${name}: ${err.code} after ${err.used.toFixed(0)} ms (limit ${err.limit} ms), report says ${report?.exitReason}`;
    if (err instanceof FuelExhaustedError) return `${name}: ${err.code}, used ${err.used} of ${err.limit}, report says ${report?.exitReason}`;
    if (err instanceof MemoryLimitError) return `${name}: ${err.code} (${err.kind}), limit ${err.limit} B, peak heap ${report?.peakHeap} B`;
    throw err;
  }
}

async function main() {
  const lines = await Promise.all(Object.entries(tasks).map(([name, task]) => runOne(name, task)));
  for (const line of lines) console.log(line);
  const expected = ['completed', 'ERR_TIMEOUT', 'ERR_FUEL_EXHAUSTED', 'ERR_MEMORY_LIMIT'];
  expected.forEach((what, i) => {
    if (!lines[i].includes(what)) throw new Error(`expected ${what}: ${lines[i]}`);
  });
  const m = gate.metrics();
  console.log(`bulkhead: ${m.acquisitions} runs, ${m.successes} succeeded, ${m.errors} failed, in use now ${m.inUse}`);
  gate.close();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
