'use strict';
// A pool of real TCP connections to a small line-protocol server on
// loopback: connections are made on demand up to `max`, recycled by age
// (`maxLifetime`), checked before they are lent (`validate`), charged to a
// byte budget for their buffers, and a request that waits too long fails
// with PoolTimeoutError, counted as a timeout (not as an error).
//
//   node examples/connection-pool.js
const net = require('node:net');
const { Budget, PoolTimeoutError, ResourcePool } = require('resource-guard');

const BUFFER = 64 * 1024; // bytes each connection keeps for its reads

// The server answers each line with its upper-case copy.
const server = net.createServer((socket) => {
  socket.setEncoding('utf8');
  let pending = '';
  socket.on('data', (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      socket.write(`${pending.slice(0, nl).toUpperCase()}\n`);
      pending = pending.slice(nl + 1);
    }
  });
  socket.on('error', () => {});
});

/** One connection: send a line, get the answer line. */
function connect(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setEncoding('utf8');
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.on('error', () => socket.destroy());
      let buffered = '';
      const waiters = [];
      socket.on('data', (chunk) => {
        buffered += chunk;
        let nl;
        while ((nl = buffered.indexOf('\n')) >= 0 && waiters.length > 0) {
          waiters.shift().resolve(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
        }
      });
      // A connection that goes away fails the questions still waiting on it.
      socket.on('close', () => {
        for (const w of waiters.splice(0)) w.reject(new Error('connection closed before the answer'));
      });
      resolve({
        socket,
        buffer: Buffer.allocUnsafe(BUFFER),
        ask: (line) => new Promise((res, rej) => {
          if (socket.destroyed) return rej(new Error('connection closed'));
          waiters.push({ resolve: res, reject: rej });
          socket.write(`${line}\n`);
        }),
      });
    });
  });
}

async function main() {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const budget = Budget.open(`example-pool-${process.pid}`, 16 * BUFFER);

  const pool = new ResourcePool(
    {
      create: () => connect(port),
      destroy: (conn) => new Promise((resolve) => {
        if (conn.socket.destroyed) return resolve(); // already gone (the server closed it)
        conn.socket.once('close', resolve);
        conn.socket.end();
      }),
      validate: (conn) => !conn.socket.destroyed && conn.socket.writable,
    },
    {
      name: 'upper',
      max: 4,
      min: 1,
      acquireTimeout: 30_000,
      maxLifetime: 50, // ms: old connections are replaced, lent ones after they come back
      budget,
      resourceSize: BUFFER, // reserved before create(): a refusal makes nothing
    },
  );
  try {
    await pool.ready();

    // 40 requests at once on 4 connections; some connections pass their
    // lifetime on the way and are replaced.
    const words = Array.from({ length: 40 }, (_, i) => `word-${i}`);
    const answers = await Promise.all(
      words.map((w, i) =>
        pool.use(async (conn) => {
          if (i % 10 === 0) await new Promise((r) => setTimeout(r, 60)); // a slow request
          return conn.ask(w);
        }),
      ),
    );
    console.log(answers.slice(0, 3).join(' '), '…', answers.length, 'answers');
    if (!answers.every((a, i) => a === words[i].toUpperCase())) throw new Error('a wrong answer');

    // Every connection lent and a request that may wait 20 ms: a timeout.
    const held = await Promise.all([1, 2, 3, 4].map(() => pool.acquire()));
    try {
      await pool.acquire({ timeout: 20 });
    } catch (err) {
      if (!(err instanceof PoolTimeoutError)) throw err;
      console.log(`${err.code}: waited ${Math.round(err.waited)} ms with ${err.inUse} of ${err.max} lent`);
    }
    for (const conn of held) pool.release(conn);

    const m = pool.metrics();
    console.log(
      `requests ${m.requests}, successes ${m.successes}, timeouts ${m.timeouts}, errors ${m.errors};`,
      `created ${m.created}, destroyed ${m.destroyed}; budget ${budget.used / BUFFER} buffers charged`,
    );
    console.log(`health ${pool.health().status} (score ${pool.health().score.toFixed(1)})`);
  } finally {
    // However the work ended: wait for the loans, destroy every connection
    // and give the bytes back, then stop the server.
    await pool.close();
    console.log(`after close: ${budget.used} bytes charged, ${pool.metrics().size} connections`);
    budget.close();
    await new Promise((resolve) => server.close(resolve));
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
