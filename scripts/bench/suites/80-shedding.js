'use strict';
// Requests per second of a minimal Fastify server on 127.0.0.1 with the
// resource-guard plugin, with @fastify/under-pressure, and with neither.
// Each server runs in its own child process; this process drives it with a
// bounded undici loop (fixed connections, fixed duration). The three set-ups
// are measured in turn, five rounds, and each row is the median of its five
// runs, so drift on a shared machine touches all three alike.
const { spawn, spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

function optional(name) {
  try {
    return require(name);
  } catch {
    return null;
  }
}

const ROOT = path.resolve(__dirname, '../../..');

const SERVER = `
const Fastify = require('fastify');
const mode = process.argv[1];
(async () => {
  const app = Fastify({ logger: false });
  if (mode === 'under-pressure') {
    await app.register(require('@fastify/under-pressure'), {
      maxEventLoopDelay: 1000, maxHeapUsedBytes: 1e9, maxRssBytes: 2e9, maxEventLoopUtilization: 0.98,
    });
  } else if (mode === 'resource-guard') {
    const { resourceGuardFastify } = require(${JSON.stringify(path.join(ROOT, 'dist/index.js'))});
    await app.register(resourceGuardFastify, {});
  }
  app.get('/', async () => ({ hello: 'world' }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  process.stdout.write(String(app.server.address().port) + '\\n');
  process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
})();
`;

/**
 * CPU placement. The servers and the load generator share the machine; left
 * to the scheduler, each server process keeps whatever placement it started
 * with for the whole run, which favoured one set-up over another by several
 * per cent in a way that repeated round after round. Where `taskset` exists
 * and there are two CPUs or more, every server runs on the last CPU and this
 * process (the load generator, all its threads) on the others for the
 * section, so the three set-ups are measured alike.
 */
function pinning() {
  const cpus = os.cpus().length;
  if (process.platform !== 'linux' || cpus < 2) return null;
  const probe = spawnSync('taskset', ['-p', String(process.pid)], { encoding: 'utf8' });
  const mask = probe.status === 0 ? /:\s*([0-9a-f,]+)\s*$/i.exec(probe.stdout)?.[1] : undefined;
  if (mask === undefined) return null;
  const server = String(cpus - 1);
  const client = cpus === 2 ? '0' : `0-${cpus - 2}`;
  const set = (m, list) => spawnSync('taskset', ['-a', list ? '-cp' : '-p', m, String(process.pid)], { stdio: 'ignore' }).status === 0;
  return {
    server,
    pinClient: () => set(client, true),
    restore: () => set(mask, false),
  };
}

function startServer(mode, pin) {
  return new Promise((resolve, reject) => {
    const argv = ['-e', SERVER, mode];
    const child = pin
      ? spawn('taskset', ['-c', pin.server, process.execPath, ...argv], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
      : spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, port: Number(out.slice(0, nl)) });
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`server ${mode} exited with ${code}`)));
  });
}

async function load(undici, port, durationMs, connections) {
  const pool = new undici.Pool(`http://127.0.0.1:${port}`, { connections, pipelining: 1 });
  let count = 0;
  let failed = 0;
  const end = Date.now() + durationMs;
  const worker = async () => {
    while (Date.now() < end) {
      const res = await pool.request({ path: '/', method: 'GET' });
      await res.body.dump();
      if (res.statusCode === 200) count++;
      else failed++;
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: connections }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await pool.close();
  return { rps: count / seconds, failed };
}

/**
 * The onRequest hook a plugin registers on a Fastify instance, captured as
 * it is added, so its own cost per request can be timed in this process
 * (the HTTP rows below cannot resolve a few nanoseconds against ~30 µs of
 * request). Also returns a real Fastify request and reply of that instance,
 * kept from one injected request: with them the hook pays what it pays in a
 * server (Fastify's `url` and `routeOptions` are getters; `routeOptions`
 * builds an object on every read).
 */
async function onRequestHook(Fastify, register) {
  const app = Fastify({ logger: false });
  const hooks = [];
  const addHook = app.addHook;
  app.addHook = function (name, fn) {
    if (name === 'onRequest') hooks.push(fn);
    return addHook.call(this, name, fn);
  };
  await register(app);
  let real = null;
  app.get('/api/items', async (req, reply) => {
    real = { req, reply };
    return { hello: 'world' };
  });
  await app.ready();
  if (hooks.length !== 1) throw new Error(`bench: expected one onRequest hook, got ${hooks.length}`);
  const res = await app.inject({ method: 'GET', url: '/api/items?page=2' });
  if (res.statusCode !== 200 || real === null) throw new Error(`bench: the injected request was answered ${res.statusCode}`);
  return { app, hook: hooks[0], req: real.req, reply: real.reply };
}

async function hookCost(bench, fastify, underPressure) {
  bench.section('shedding: cost of the onRequest hook per request (in process, nothing shed)');
  const { resourceGuardFastify } = require(path.join(ROOT, 'dist/index.js'));
  const up = await onRequestHook(fastify, (app) =>
    app.register(underPressure, { maxEventLoopDelay: 1000, maxHeapUsedBytes: 1e9, maxRssBytes: 2e9, maxEventLoopUtilization: 0.98 }),
  );
  const rg = await onRequestHook(fastify, (app) => app.register(resourceGuardFastify, {}));
  // A plain object in place of the request: only the hook's own work, no
  // Fastify getter behind `url` or `routeOptions`.
  const plain = { url: '/api/items?page=2', method: 'GET', routeOptions: { config: {} }, raw: {} };
  let passed = 0;
  const next = () => {
    passed++;
  };
  const UP_REAL = '@fastify/under-pressure hook, Fastify request';
  const RG_REAL = 'resource-guard hook, Fastify request';
  const UP_PLAIN = '@fastify/under-pressure hook, plain object as request';
  const RG_PLAIN = 'resource-guard hook, plain object as request';
  let rows;
  try {
    // One flush: the four rows take turns in the same rounds, in rotating order.
    rows = {
      upReal: bench.op(UP_REAL, (n) => {
        for (let i = 0; i < n; i++) up.hook(up.req, up.reply, next);
      }),
      rgReal: bench.op(
        RG_REAL,
        (n) => {
          for (let i = 0; i < n; i++) rg.hook(rg.req, rg.reply, next);
        },
        { baseline: UP_REAL },
      ),
      upPlain: bench.op(UP_PLAIN, (n) => {
        for (let i = 0; i < n; i++) up.hook(plain, {}, next);
      }),
      rgPlain: bench.op(
        RG_PLAIN,
        (n) => {
          for (let i = 0; i < n; i++) rg.hook(plain, {}, next);
        },
        { baseline: UP_PLAIN },
      ),
    };
    await bench.flush();
  } finally {
    await up.app.close();
    await rg.app.close();
  }
  if (passed === 0) throw new Error('bench: the hooks never let a request through');
  // Round i of one row against round i of the other (timed seconds apart).
  const perRound = (a, b) => a.samples.map((x, i) => x / b.samples[i]);
  bench.value('per-round ratio: resource-guard / under-pressure, Fastify request', perRound(rows.rgReal, rows.upReal), 'x', {
    note: '< 1: the resource-guard hook costs less',
  });
  bench.value('per-round ratio: resource-guard / under-pressure, plain object', perRound(rows.rgPlain, rows.upPlain), 'x', {
    note: '< 1: the resource-guard hook costs less',
  });
}

exports.run = async function run(bench) {
  const undici = optional('undici');
  const fastify = optional('fastify');
  const underPressure = optional('@fastify/under-pressure');
  if (fastify && underPressure) await hookCost(bench, fastify, underPressure);
  bench.section('shedding: Fastify requests/s on 127.0.0.1');
  if (!undici || !fastify || !underPressure) {
    console.log('  (undici, fastify and @fastify/under-pressure are needed: skipped)');
    return;
  }
  const quick = bench.options.reps <= 5 && bench.options.repMs <= 20;
  const durationMs = quick ? 1000 : 3000; // per run; the bound is 10 s
  const rounds = 5;
  const connections = 8;
  const modes = ['neither', 'under-pressure', 'resource-guard'];
  const pin = pinning();
  const servers = {};
  for (const m of modes) servers[m] = await startServer(m, pin);
  const pinned = pin !== null && pin.pinClient();
  const samples = { neither: [], 'under-pressure': [], 'resource-guard': [] };
  let failed = 0;
  try {
    for (const m of modes) await load(undici, servers[m].port, 300, connections); // warm-up
    for (let r = 0; r < rounds; r++) {
      // The order rotates each round, so no set-up always runs first or last.
      for (const m of modes.map((_, i) => modes[(i + r) % modes.length])) {
        const x = await load(undici, servers[m].port, durationMs, connections);
        samples[m].push(x.rps);
        failed += x.failed;
      }
    }
  } finally {
    if (pinned) pin.restore();
    for (const m of modes) {
      servers[m].child.removeAllListeners('exit');
      servers[m].child.kill('SIGTERM');
    }
  }
  for (const m of modes) {
    const xs = samples[m].map((x) => Math.round(x));
    console.log(`  ${m}: runs ${xs.join(', ')} req/s (range ${Math.min(...xs)}–${Math.max(...xs)})`);
  }
  const placement = pinned ? `, servers on CPU ${pin.server}, load generator on the others` : '';
  const note = `${connections} connections, ${durationMs} ms per run, median of ${rounds}${placement}${failed ? `, ${failed} non-200 answers` : ''}`;
  bench.value('neither', samples.neither, 'req/s', { higherIsBetter: true, note });
  bench.value('with @fastify/under-pressure', samples['under-pressure'], 'req/s', { higherIsBetter: true, baseline: 'neither', note });
  bench.value('with resource-guard plugin', samples['resource-guard'], 'req/s', { higherIsBetter: true, baseline: 'neither', note });
  bench.value('resource-guard plugin vs under-pressure', samples['resource-guard'], 'req/s', {
    higherIsBetter: true,
    baseline: 'with @fastify/under-pressure',
    note: '> 1: less overhead than under-pressure',
  });
  // Ratios within each round (measured seconds apart) are steadier than
  // ratios of medians when the machine's load swings between rounds.
  const perRound = (a, b) => samples[a].map((x, i) => x / samples[b][i]);
  bench.value('per-round ratio: resource-guard / under-pressure', perRound('resource-guard', 'under-pressure'), 'x', {
    higherIsBetter: true,
    note: '> 1: resource-guard served more requests than under-pressure in the same round',
  });
  bench.value('per-round ratio: resource-guard / neither', perRound('resource-guard', 'neither'), 'x', { higherIsBetter: true });
  bench.value('per-round ratio: under-pressure / neither', perRound('under-pressure', 'neither'), 'x', { higherIsBetter: true });
};
