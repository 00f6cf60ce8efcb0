'use strict';
// Platform smoke test: the native addon and the parts of the library that
// depend on it, run with node's own test runner in ONE process (worker
// threads, no child processes), so that it runs where vitest cannot: an
// arm64 Node under qemu-user (no binfmt, so no child process can start) and
// the Windows Node under Wine. Run it from the package root:
//
//   PREBUILDS_ONLY=1 node test/platform/smoke.cjs
//
// With PREBUILDS_ONLY=1 node-gyp-build loads prebuilds/<platform>-<arch>/
// and never build/, so the binary under test is the one that ships.
// Covers: every platform reader (RSS, peak RSS, process and host CPU, host
// memory, cgroup, PSI, disk), the monotonic clock, the sampler thread, a
// Budget shared exactly by worker threads under contention, a machine-wide
// budget (Linux; elsewhere its typed refusal), and runWithLimits (fuel,
// timeout, CPU) in worker threads.
const assert = require('node:assert/strict');
const os = require('node:os');
const path = require('node:path');
const { test } = require('node:test');
const { Worker } = require('node:worker_threads');

const root = path.join(__dirname, '..', '..');
const file = require('node-gyp-build').resolve(root);
const addon = require(file);
const rg = require(path.join(root, 'dist', 'index.js'));
const E = os.constants.errno;
const win = process.platform === 'win32';

console.log(`# addon ${path.relative(root, file)} on ${process.platform}-${process.arch} ${process.version}`);

test('the addon is the one built for this platform', () => {
  assert.equal(addon.layout().platform, process.platform);
  if (process.env.PREBUILDS_ONLY) assert.match(file, /prebuilds/);
});

test('memory readers', () => {
  assert.ok(addon.readRss() > 0, 'readRss');
  assert.ok(addon.readPeakRss() >= addon.readRss() * 0.5, 'readPeakRss');
  assert.ok(rg.readRss() > 0);
  const f = new Float64Array(4);
  assert.equal(addon.readSystemMemory(f), 0);
  assert.ok(f[0] > 0 && f[1] > 0 && f[1] <= f[0], 'total and available memory');
});

test('CPU readers', () => {
  const f = new Float64Array(4);
  assert.equal(addon.readProcessCpu(f), 0);
  assert.ok(f[0] + f[1] > 0, 'process CPU time');
  assert.equal(addon.readSystemCpu(f), 0);
  assert.ok(f[0] > 0 && f[1] > 0, 'host busy and idle time');
  assert.ok(addon.cpuCount() >= 1);
});

test('cgroup and PSI readers answer with a defined result', () => {
  assert.equal(typeof addon.readCgroup().errno, 'number');
  if (process.platform !== 'linux') assert.equal(addon.readPsi('memory'), E.ENOSYS);
});

test('disk reader: a directory, a file, a missing path', () => {
  const f = new Float64Array(4);
  assert.equal(addon.readDisk(root, f), 0);
  assert.ok(f[0] > 0 && f[1] <= f[0] && f[2] <= f[1], 'disk total, free and available');
  assert.equal(addon.readDisk(path.join(root, 'package.json'), f), E.ENOTDIR);
  assert.equal(addon.readDisk(path.join(root, 'no-such-directory'), f), E.ENOENT);
  const d = rg.readDisk(root);
  assert.ok(d.total > 0);
});

test('monotonic clock is the process.hrtime clock', () => {
  const drift = Math.abs(addon.monotonicMs() - Number(process.hrtime.bigint()) / 1e6);
  assert.ok(drift < 1000, `drift ${drift} ms`);
});

test('sampler thread takes samples without read errors', async () => {
  const snap = new Float64Array(addon.layout().snapshotSlots);
  addon.startSampler();
  try {
    // Poll (bounded) rather than sleep a fixed time: emulation is slow.
    for (let i = 0; i < 600; i++) {
      addon.copySnapshot(snap);
      if (snap[11] >= 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    addon.stopSampler();
  }
  assert.ok(snap[11] >= 2, 'sampler thread took samples');
  assert.equal(snap[13], 0, 'sampler read errors');
  const s = rg.readSnapshot();
  assert.ok(s.rss > 0);
});

test('a Budget is shared exactly by worker threads under contention', async () => {
  const name = `smoke-${process.pid}`;
  const limit = 1000;
  const budget = rg.Budget.open(name, limit);
  const start = new SharedArrayBuffer(4);
  const fixture = path.join(root, 'test', 'fixtures', 'budget-worker.cjs');
  const workers = [1, 2, 3].map(
    (seed) => new Worker(fixture, { workerData: { mode: 'churn', name, limit, start, seed, pairs: 2000, maxBytes: 600 } }),
  );
  const results = workers.map((w) => new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  }));
  Atomics.store(new Int32Array(start), 0, 1);
  Atomics.notify(new Int32Array(start), 0);
  const out = await Promise.all(results);
  await Promise.all(workers.map((w) => w.terminate()));
  for (const r of out) assert.equal(r.ok + r.refused, 2000);
  assert.equal(budget.held, 0, 'every reservation was released');
  assert.equal(budget.tryReserve(limit), true, 'the whole budget is free again');
  budget.release(limit);
  budget.close?.();
});

test('machine-wide budgets: shared by handles and a worker thread on Linux, refused with a typed error elsewhere', async () => {
  const dir = require('node:fs').mkdtempSync(path.join(os.tmpdir(), 'rg-smoke-machine-'));
  const name = `smoke-machine-${process.pid}`;
  try {
    if (process.platform !== 'linux') {
      assert.throws(() => rg.Budget.open(name, 100, { scope: 'machine', directory: dir }), { code: 'ERR_BUDGET_UNSUPPORTED' });
      return;
    }
    const a = rg.Budget.open(name, 100, { scope: 'machine', directory: dir });
    const b = rg.Budget.open(name, undefined, { scope: 'machine', directory: dir });
    assert.equal(a.tryReserve(60), true);
    assert.equal(b.tryReserve(50), false);
    assert.equal(b.used, 60);
    assert.equal(a.stats().holders, 1);
    // A worker thread that ends while holding bytes gives them back.
    const w = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const rg = require(workerData.lib);
       const m = rg.Budget.open(workerData.name, undefined, { scope: 'machine', directory: workerData.dir });
       m.reserve(40);
       parentPort.postMessage(m.used);`,
      { eval: true, workerData: { lib: path.join(root, 'dist', 'index.js'), name, dir } },
    );
    assert.equal(await new Promise((resolve, reject) => (w.once('message', resolve), w.once('error', reject))), 100);
    await new Promise((resolve) => w.once('exit', resolve));
    assert.equal(a.used, 60);
    a.release(60);
    a.close();
    b.close();
    assert.deepEqual(require('node:fs').readdirSync(dir), [], 'the last close removes the file');
  } finally {
    require('node:fs').rmSync(dir, { recursive: true, force: true });
  }
});

test('runWithLimits: fuel, timeout and CPU breaches reject typed, in worker threads', async () => {
  const tasks = path.join(root, 'test', 'fixtures', 'limits-tasks.cjs');
  const t = (name) => ({ module: tasks, export: name });
  const ok = await rg.runWithLimits(t('double'), {}, { input: 21, startupTimeout: 120_000 });
  assert.equal(ok.value, 42);
  await assert.rejects(rg.runWithLimits(t('burnFuel'), { fuel: 5000 }, { startupTimeout: 120_000 }), { code: 'ERR_FUEL_EXHAUSTED' });
  await assert.rejects(rg.runWithLimits(t('spin'), { timeout: 300 }, { startupTimeout: 120_000 }), { code: 'ERR_TIMEOUT' });
  if (!win) {
    await assert.rejects(rg.runWithLimits(t('spin'), { cpuTime: 100, timeout: 120_000 }, { startupTimeout: 120_000 }), { code: 'ERR_CPU_TIME' });
  }
  assert.equal(rg.activeRuns(), 0);
});
