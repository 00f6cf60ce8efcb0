'use strict';
// Worker for the throughput rows: reserve/release pairs on one shared budget
// for a fixed time after a common start signal; reports pairs completed.
// workerData.mode: 'shared' (default: the budget named `name`), 'lease' (the
// same, opened with leases), 'separate' (a budget of this worker's own,
// `name`-`index`) or 'atomics' (a bare JS compare-exchange counter in the
// SharedArrayBuffer `counter`, with no ledger: the floor of one shared word).
const { parentPort, workerData } = require('node:worker_threads');
const { Budget } = require('../../../dist/index.js');

const mode = workerData.mode ?? 'shared';
const budget =
  mode === 'atomics'
    ? atomicsCounter(new Int32Array(workerData.counter), workerData.limit)
    : mode === 'separate'
      ? Budget.open(`${workerData.name}-${workerData.index}`, workerData.limit)
      : Budget.open(workerData.name, workerData.limit, { lease: mode === 'lease' });

function atomicsCounter(word, limit) {
  return {
    tryReserve(n) {
      let cur = Atomics.load(word, 0);
      for (;;) {
        if (cur + n > limit) return false;
        const prev = Atomics.compareExchange(word, 0, cur, cur + n);
        if (prev === cur) return true;
        cur = prev;
      }
    },
    release(n) {
      Atomics.sub(word, 0, n);
    },
  };
}
const flag = new Int32Array(workerData.start);
parentPort.postMessage('ready');
Atomics.wait(flag, 0, 0);
const end = Date.now() + workerData.ms;
let pairs = 0;
while (Date.now() < end) {
  for (let i = 0; i < 1000; i++) {
    const n = 64 + (i & 255);
    if (budget.tryReserve(n)) budget.release(n);
  }
  pairs += 1000;
}
parentPort.postMessage(pairs);
