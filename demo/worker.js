'use strict';
// One generator thread of the demo. It writes its share of the records to
// its own part file, in whole batches, and keeps a window of recent batches
// in memory (as an indexer or aggregator would). The bytes of that window are
// charged to a budget shared by all generator threads. The batch size and the
// window follow the degradation level that the main thread publishes.
const fs = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
const { Budget } = require('../dist/index.js');

const { id, file, quota, baseBatch, budgetName, budgetLimit, control, progress, windowBatches, seed } = workerData;
const ctl = new Int32Array(control); // [0] level index, [1] stop flag, [2] start flag
const prog = new Float64Array(progress); // per worker: records, bytes, batches, retained
const budget = Budget.open(budgetName, budgetLimit);

// Actions per level: batch size factor, and how many batches to retain
// (normal: as many as the shared budget allows; minimal: none, flush).
const FACTOR = [1, 0.5, 0.25, 0];
const RETAIN = [Infinity, windowBatches, 0, 0];

let state = seed >>> 0 || 1;
function rand() {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 4294967296;
}
const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliett'];
const CITIES = ['Lisbon', 'Osaka', 'Lagos', 'Quito', 'Tromsø', 'Perth', 'Tbilisi', 'Halifax'];

function record(n) {
  return JSON.stringify({
    id: `${id}-${n}`,
    ts: 1_700_000_000_000 + n * 37,
    user: `user${Math.floor(rand() * 100_000)}`,
    city: CITIES[Math.floor(rand() * CITIES.length)],
    amount: Math.round(rand() * 1e6) / 100,
    tags: [WORDS[Math.floor(rand() * 10)], WORDS[Math.floor(rand() * 10)]],
    note: WORDS[Math.floor(rand() * 10)].repeat(1 + Math.floor(rand() * 12)),
  });
}

const fd = fs.openSync(file, 'w');
// Wait until every thread is up, so the main thread measures the starting
// RSS with all of them loaded.
parentPort.postMessage({ ready: true });
Atomics.wait(ctl, 2, 0);
const window = []; // retained batches: { buf }
let retained = 0;
let written = 0;
let bytes = 0;
let batches = 0;
let flushes = 0;
let stoppedEarly = false;

function dropOldest() {
  const old = window.shift();
  retained -= old.length;
  budget.release(old.length);
}

function flushWindow() {
  if (window.length > 0) flushes++;
  while (window.length > 0) dropOldest();
}

function publish() {
  const base = id * 4;
  prog[base] = written;
  prog[base + 1] = bytes;
  prog[base + 2] = batches;
  prog[base + 3] = retained;
}

while (written < quota) {
  if (Atomics.load(ctl, 1) !== 0) {
    stoppedEarly = true;
    break;
  }
  const level = Atomics.load(ctl, 0);
  if (FACTOR[level] === 0) {
    // Emergency: generate nothing; the main thread is about to stop us.
    flushWindow();
    publish();
    Atomics.wait(ctl, 1, 0, 20);
    continue;
  }
  if (RETAIN[level] === 0) flushWindow();
  const n = Math.min(quota - written, Math.max(1, Math.floor(baseBatch * FACTOR[level])));
  const lines = new Array(n);
  for (let i = 0; i < n; i++) lines[i] = record(written + i);
  const buf = Buffer.from(`${lines.join('\n')}\n`);
  // A batch is written whole or not at all: one write of complete lines.
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
  written += n;
  bytes += buf.length;
  batches++;
  // Retain it if the level allows and the shared budget has room.
  while (window.length >= RETAIN[level] && window.length > 0) dropOldest();
  if (RETAIN[level] > 0) {
    if (!budget.tryReserve(buf.length)) {
      flushWindow();
      if (!budget.tryReserve(buf.length)) {
        publish();
        continue;
      }
    }
    window.push(buf);
    retained += buf.length;
  }
  publish();
}

flushWindow();
fs.fsyncSync(fd);
fs.closeSync(fd);
publish();
budget.close();
parentPort.postMessage({ id, file, written, bytes, batches, flushes, stoppedEarly });
