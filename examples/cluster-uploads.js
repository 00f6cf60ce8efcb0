'use strict';
// Cluster workers that share one upload-buffer budget: 4 processes, 1 MiB
// of upload buffers between all of them, not 1 MiB each.
//
// The primary opens the machine-wide budget `uploads` (1 MiB) and forks 4
// workers. Each worker runs an HTTP server on its own port that buffers an
// upload body only when the shared budget can take its declared length, and
// answers 503 (with Retry-After) when it cannot. The primary then sends 12
// uploads of 256 KiB at once, three to each worker, and holds them all open
// until every worker has answered: exactly 4 fit in 1 MiB, whichever workers
// take them, and the other 8 get 503. Then one worker is killed with SIGKILL
// while it holds an upload (or two): its bytes come back to the budget
// without anyone closing anything, and the other uploads are stored.
//
//   node examples/cluster-uploads.js
const cluster = require('node:cluster');
const http = require('node:http');
const { Budget } = require('resource-guard');

const NAME = `uploads-${process.env.RG_EXAMPLE_RUN ?? process.pid}`;
const LIMIT = 1024 * 1024;
const UPLOAD = 256 * 1024;
const WORKERS = 4;

if (cluster.isPrimary) {
  process.env.RG_EXAMPLE_RUN = String(process.pid);
  primary().catch((err) => {
    console.error(err);
    process.exitCode = 1;
    for (const w of Object.values(cluster.workers)) w.kill('SIGKILL');
  });
} else {
  worker();
}

function worker() {
  const uploads = Budget.open(NAME, undefined, { scope: 'machine' });
  const server = http.createServer((req, res) => {
    const length = Number(req.headers['content-length']);
    if (!Number.isSafeInteger(length) || !uploads.tryReserve(length)) {
      // Drained without being kept, then refused.
      req.resume();
      req.on('end', () => {
        res.writeHead(503, { 'retry-after': '1' });
        res.end('upload buffers are full\n');
      });
      return;
    }
    // The bytes are held until the upload is answered, or its connection
    // closes first (a client that gives up).
    let holding = true;
    const giveBack = () => {
      if (holding) {
        holding = false;
        uploads.release(length);
      }
    };
    res.on('close', giveBack);
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      process.send({ took: Buffer.concat(chunks).length });
      // Hold the upload until the primary says all uploads were answered.
      process.once('message', (msg) => {
        if (msg !== 'finish') return;
        giveBack();
        res.end('stored\n');
      });
    });
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('message', (msg) => {
    if (msg === 'close') {
      server.close();
      uploads.close();
      process.disconnect();
    }
  });
}

async function primary() {
  const uploads = Budget.open(NAME, LIMIT, { scope: 'machine' });
  const workers = [];
  const ports = [];
  for (let i = 0; i < WORKERS; i++) {
    const w = cluster.fork();
    workers.push(w);
    ports.push(await new Promise((resolve) => w.on('message', (m) => m.port && resolve(m.port))));
  }

  const took = [];
  for (const w of workers) w.on('message', (m) => m.took && took.push(w));
  const body = Buffer.alloc(UPLOAD, 1);
  const send = (port) =>
    new Promise((resolve, reject) => {
      const req = http.request({ port, host: '127.0.0.1', method: 'POST', headers: { 'content-length': body.length } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      // The upload whose worker is killed loses its connection.
      req.on('error', (err) => (err.code === 'ECONNRESET' ? resolve('reset') : reject(err)));
      req.end(body);
    });

  const answers = [];
  let refused = 0;
  for (let i = 0; i < 12; i++) {
    answers.push(
      send(ports[i % WORKERS]).then((code) => {
        if (code === 503) refused++;
        return code;
      }),
    );
  }
  // The 503s come as soon as each upload is decided; the accepted uploads
  // wait for 'finish'. Every upload is decided before anything is freed.
  if (!(await waitFor(() => took.length === 4 && refused === 8))) throw new Error('the uploads were never all decided');
  console.log(`budget full at ${uploads.used} of ${LIMIT} bytes, held by ${uploads.stats().holders} processes`);

  // Kill one worker that holds an upload: its 256 KiB comes back by itself.
  const victim = took[0];
  const held = took.filter((w) => w === victim).length; // it may hold more than one
  victim.process.kill('SIGKILL');
  await new Promise((resolve) => victim.on('exit', resolve));
  if (!(await waitFor(() => uploads.used === LIMIT - held * UPLOAD))) throw new Error('the killed worker\'s bytes never came back');
  console.log(`after SIGKILL of one holder: ${uploads.used} bytes used, ${uploads.stats().reclaimedBytes} given back for it`);

  for (const w of workers) if (w !== victim) w.send('finish');
  const codes = await Promise.all(answers);
  const ok = codes.filter((c) => c === 200).length;
  const shed = codes.filter((c) => c === 503).length;
  const lost = codes.filter((c) => c === 'reset').length;
  console.log(`uploads: ${ok} stored, ${shed} refused with 503, ${lost} lost with the killed worker`);
  if (ok !== 4 - held || shed !== 8 || lost !== held) throw new Error(`expected ${4 - held} stored, 8 refused and ${held} lost, got ${codes}`);
  if (uploads.used !== 0) throw new Error(`budget ended at ${uploads.used}`);

  for (const w of workers) if (w !== victim) w.send('close');
  await Promise.all(workers.filter((w) => w !== victim).map((w) => new Promise((resolve) => w.on('exit', resolve))));
  uploads.close();
}

/** Polls until `done()` holds (a bounded wait, not a timing check). */
async function waitFor(done) {
  const deadline = Date.now() + 30_000;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}
