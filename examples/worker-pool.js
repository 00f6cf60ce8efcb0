'use strict';
// A pool of worker threads that share one byte budget.
//
//   node examples/worker-pool.js
//
// Each job needs a buffer of its size while it runs. The buffers of all four
// workers are charged to one process-wide budget ('pool-buffers', 48 MiB):
// a worker whose buffer does not fit now hands the job back to be retried, so
// together the threads never hold more than the limit. One worker is
// terminated in the middle of a job: the bytes it held go back to the budget
// when it ends. At the end every byte has been given back.
const { Worker } = require('node:worker_threads');
const { LimitedAllocator } = require('resource-guard');

const WORKERS = 4;
const MiB = 1024 * 1024;
const budget = LimitedAllocator.shared('pool-buffers', '48MiB');
const levelsSeen = new Map(); // pressure level -> times entered
budget.on('pressure', ({ level }) => levelsSeen.set(level, (levelsSeen.get(level) ?? 0) + 1));

const source = `
const { parentPort } = require('node:worker_threads');
const { LimitedAllocator } = require('resource-guard');
const buffers = LimitedAllocator.shared('pool-buffers'); // the same counter as every other thread
parentPort.on('message', (job) => {
  const buf = buffers.allocate(job.bytes); // a zero-filled Buffer charged to the budget, or null
  if (buf === null) return parentPort.postMessage({ id: job.id, retry: true });
  if (job.hold) return parentPort.postMessage({ id: job.id, holding: job.bytes }); // keeps it: terminated below
  try {
    for (let i = 0; i < buf.length; i += 4096) buf[i] = job.id & 0xff; // the work: touch every page
    let sum = 0;
    for (let i = 0; i < buf.length; i += 4096) sum += buf[i];
    parentPort.postMessage({ id: job.id, sum });
  } finally {
    buffers.free(buf);
  }
});
`;

function startWorker() {
  return new Worker(source, { eval: true });
}

async function main() {
  const jobs = Array.from({ length: 40 }, (_, id) => ({ id, bytes: (4 + (id % 5) * 4) * MiB }));
  const queue = [...jobs];
  const done = new Map();
  let retries = 0;
  // Other threads' reservations are seen at this allocator's next operation,
  // or when asked: look every 20 ms so the 'pressure' events follow the pool.
  const watch = setInterval(() => budget.checkPressure(), 20);

  // One worker takes 16 MiB and is terminated while holding it.
  const doomed = startWorker();
  await new Promise((resolve) => {
    doomed.once('message', resolve);
    doomed.postMessage({ id: -1, bytes: 16 * MiB, hold: true });
  });
  console.log(`a worker holds 16 MiB: ${budget.allocatedBytes / MiB} MiB reserved`);
  await doomed.terminate();
  console.log(`terminated: ${budget.allocatedBytes / MiB} MiB reserved`);

  const pool = Array.from({ length: WORKERS }, startWorker);
  await Promise.all(
    pool.map(
      (w) =>
        new Promise((resolve, reject) => {
          w.on('error', reject);
          const next = () => {
            const job = queue.shift();
            if (job === undefined) return resolve();
            w.postMessage(job);
          };
          w.on('message', (m) => {
            if (m.retry) {
              retries++;
              queue.push(jobs[m.id]); // try again later, after others free their buffers
              setTimeout(next, 5);
              return;
            }
            done.set(m.id, m.sum);
            next();
          });
          next();
        }),
    ),
  );
  await Promise.all(pool.map((w) => w.terminate()));
  clearInterval(watch);
  budget.checkPressure();

  const s = budget.stats();
  console.log(`${done.size} jobs done by ${WORKERS} workers, ${retries} retried when the budget was full`);
  console.log(`pressure levels entered: ${[...levelsSeen].map(([l, n]) => `${l} ${n}×`).join(', ')}`);
  console.log(`budget: limit ${s.limit / MiB} MiB, peak ${s.peakBytes / MiB} MiB, reserved now ${s.allocatedBytes} B, refusals ${s.failures}`);
  budget.close();
  if (done.size !== jobs.length || s.allocatedBytes !== 0 || s.peakBytes > s.limit) {
    throw new Error('the pool did not finish cleanly');
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
