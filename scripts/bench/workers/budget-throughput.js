'use strict';
// Worker for the throughput rows: reserve/release pairs on one shared budget
// for a fixed time after a common start signal; reports pairs completed.
const { parentPort, workerData } = require('node:worker_threads');
const { Budget } = require('../../../dist/index.js');

const budget = Budget.open(workerData.name, workerData.limit);
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
