'use strict';
// Degradation, health and metrics: the cost of DegradationController.update()
// on its hot (no-change) path and on its recovery-candidate path, of a
// budget pressure lookup, of a health report and of a Prometheus scrape.
const path = require('node:path');
const { sink } = require('../harness');

const dist = path.join(__dirname, '..', '..', '..', 'dist');

async function run(bench) {
  const { DegradationController } = require(path.join(dist, 'degradation.js'));
  const { pressureLevel } = require(path.join(dist, 'pressure.js'));
  const { healthReport, createResourceSampler } = require(path.join(dist, 'health.js'));
  const { metrics, registerPromClient, ResourceMetrics } = require(path.join(dist, 'metrics.js'));
  const { Budget } = require(path.join(dist, 'budget.js'));

  bench.section('degradation: DegradationController.update()');
  {
    const c = new DegradationController();
    const status = { memory: 0.5 };
    bench.op(
      'update({ memory }) at a steady level',
      (n) => {
        let x = 0;
        for (let i = 0; i < n; i++) {
          status.memory = 0.3 + (i & 255) / 1024; // 0.30 .. 0.55: always normal
          if (c.update(status).changed) x++;
        }
        sink(x);
      },
      { target: '≤ 100 ns', maxNs: 100 },
    );
  }
  {
    const c = new DegradationController();
    const status = { memory: 0.5, diskAvailable: 50e9, cpu: 0.3, eventLoopLagMs: 2, psi: 0 };
    bench.op(
      'update() with all five readings, steady',
      (n) => {
        let x = 0;
        for (let i = 0; i < n; i++) {
          status.cpu = (i & 255) / 1024;
          if (c.update(status).changed) x++;
        }
        sink(x);
      },
      { target: '≤ 100 ns', maxNs: 100 },
    );
  }
  {
    // Memory oscillating inside the hysteresis band of 'minimal': every call
    // is a recovery candidate (reads the clock, checks the margin) and none
    // changes the level.
    const c = new DegradationController({ minDwellMs: 0 });
    c.update({ memory: 0.9 });
    const status = { memory: 0.84 };
    bench.op(
      'update() oscillating inside the band (recovery check)',
      (n) => {
        let x = 0;
        for (let i = 0; i < n; i++) {
          status.memory = i & 1 ? 0.86 : 0.81;
          if (c.update(status).changed) x++;
        }
        sink(x);
        if (c.level !== 'minimal') throw new Error('bench: the level moved');
      },
      { target: '≤ 100 ns', maxNs: 100 },
    );
  }
  {
    const c = new DegradationController({ minDwellMs: 0, margin: 0 });
    const status = { memory: 0.5 };
    bench.op(
      'update() changing level every call (no listener)',
      (n) => {
        let x = 0;
        for (let i = 0; i < n; i++) {
          status.memory = i & 1 ? 0.72 : 0.5;
          if (c.update(status).changed) x++;
        }
        sink(x);
      },
      { note: 'margin 0, dwell 0: the flapping path' },
    );
  }
  {
    const c = new DegradationController();
    let i = 0;
    const levels = ['normal', 'reduced', 'minimal', 'emergency'];
    bench.op('actionsFor(level).batchSizeFactor', (n) => {
      let x = 0;
      for (let k = 0; k < n; k++) x += c.actionsFor(levels[i++ & 3]).batchSizeFactor;
      sink(x);
    });
    bench.op('pressureLevel(used, limit)', (n) => {
      let x = 0;
      for (let k = 0; k < n; k++) if (pressureLevel(k & 1023, 1000) === 'critical') x++;
      sink(x);
    });
  }

  bench.section('health and metrics');
  {
    const controller = new DegradationController();
    const budgets = [Budget.create(1 << 20), Budget.create(1 << 20), Budget.create(1 << 20)];
    budgets[0].reserve(1000);
    const sample = createResourceSampler();
    const sources = { controller, budgets, figures: sample, metrics: new ResourceMetrics() };
    const injected = {
      controller,
      budgets,
      figures: () => ({
        memory: { usage: 5e8, limit: 2e9, source: 'custom' },
        disk: { path: '/data', total: 1e12, available: 4e11 },
        cpu: { load: 0.2, processLoad: 0.1, cpus: 2 },
        eventLoop: { lagMs: 1, meanMs: 0.5, maxMs: 3 },
        psi: 0,
      }),
    };
    bench.op('healthReport() with the real samplers and 3 budgets', (n) => {
      for (let i = 0; i < n; i++) sink(healthReport(sources).memory.usage_bytes);
    });
    bench.op('healthReport() with injected figures', (n) => {
      for (let i = 0; i < n; i++) sink(healthReport(injected).budgets.length);
    });
    bench.op('JSON.stringify(healthReport()) (what the handler sends)', (n) => {
      for (let i = 0; i < n; i++) sink(JSON.stringify(healthReport(sources)).length);
    });
    bench.op('metrics() Prometheus text, real samplers, 3 budgets', (n) => {
      for (let i = 0; i < n; i++) sink(metrics(sources).length);
    });
    let promClient = null;
    try {
      promClient = require('prom-client');
    } catch {
      console.log('  (prom-client not installed: its row is skipped)');
    }
    if (promClient) {
      const registry = new promClient.Registry();
      registerPromClient({ ...sources, registry, client: promClient });
      await bench.opAsync('prom-client registry.metrics() with our gauges', async (n) => {
        for (let i = 0; i < n; i++) {
          sink((await registry.metrics()).length);
          // Each scrape reads the sources afresh, as real scrapes (seconds apart) do.
          await new Promise((r) => setImmediate(r));
        }
      }, { note: 'includes one setImmediate per scrape' });
    }
    await bench.flush();
    sample.close();
    for (const b of budgets) b.close();
  }
}

module.exports = { run };
