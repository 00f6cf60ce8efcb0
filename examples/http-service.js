'use strict';
// An HTTP service (node:http) that reports its health and metrics and sheds
// optional work as resources run short.
//
//   node examples/http-service.js            # starts, checks itself, stops (a few seconds)
//   node examples/http-service.js --serve    # keeps serving on PORT (default 3000)
//
// - GET /health  : the health report (200 while healthy or degraded, 503 at emergency)
// - GET /metrics : Prometheus text
// - GET /work    : a request whose work follows the degradation level, behind
//                  a bulkhead of 8 permits (503 when the queue is full)
const http = require('node:http');
const os = require('node:os');
const {
  Bulkhead,
  BulkheadRejectedError,
  BulkheadTimeoutError,
  DegradationController,
  createHealthHandler,
  createMetricsHandler,
  createResourceSampler,
  statusFromFigures,
} = require('resource-guard');

const serve = process.argv.includes('--serve');

const controller = new DegradationController();
controller.on('change', (e) => console.warn(`degradation ${e.from} → ${e.to} (${e.input} = ${e.value})`));

// The real figures: RSS against the cgroup limit (or RAM), disk space where
// the service writes, CPU load, event-loop lag, memory pressure stall.
const sample = createResourceSampler({ diskPath: os.tmpdir() });
const feed = () => controller.update(statusFromFigures(sample()));
feed();
const feeder = setInterval(feed, 1000);
feeder.unref();

// Concurrency follows the level: 8 at normal, 4 at reduced, 2 at minimal, 1 at emergency.
const gate = new Bulkhead({ name: 'work', maxConcurrent: 8, maxQueue: 100, waitTimeout: 2000, adaptive: { source: controller } });

const health = createHealthHandler({ controller, figures: sample });
const metrics = createMetricsHandler({ controller, figures: sample });

async function work(res) {
  try {
    const result = await gate.run(async () => {
      const items = controller.batchSize(1000); // fewer items per request as the level rises
      const optional = !controller.actions.flags.skipOptional;
      let sum = 0;
      for (let i = 0; i < items; i++) sum += i % 7;
      return { level: controller.level, items, optional, sum };
    });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(result));
  } catch (err) {
    if (err instanceof BulkheadRejectedError || err instanceof BulkheadTimeoutError) {
      res.writeHead(503, { 'retry-after': '1' });
      res.end(err.code);
      return;
    }
    res.writeHead(500);
    res.end(String(err));
  }
}

const server = http.createServer((req, res) => {
  if (req.url === '/metrics') return metrics(req, res);
  if (req.url === '/health') return health(req, res);
  if (req.url === '/work') return void work(res);
  res.writeHead(404);
  res.end();
});

function shutdown() {
  clearInterval(feeder);
  gate.close();
  sample.close();
  server.close();
}

async function selfCheck(port) {
  const base = `http://127.0.0.1:${port}`;
  const h = await fetch(`${base}/health`);
  const report = await h.json();
  console.log(`GET /health -> ${h.status}: status ${report.status}, level ${report.level}, memory ${report.memory?.percent ?? '?'} %`);
  const m = await (await fetch(`${base}/metrics`)).text();
  const samples = m.split('\n').filter((l) => l && !l.startsWith('#'));
  console.log(`GET /metrics -> ${samples.length} samples, e.g. ${samples[0]}`);
  const replies = await Promise.all(Array.from({ length: 20 }, () => fetch(`${base}/work`).then((r) => r.json())));
  console.log(`GET /work x20 -> ${replies.length} replies, ${replies[0].items} items each at level ${replies[0].level}`);
  console.log(`bulkhead: ${JSON.stringify({ acquisitions: gate.metrics().acquisitions, health: gate.health() })}`);
  if (h.status !== 200 && h.status !== 503) throw new Error(`unexpected /health status ${h.status}`);
}

const port = serve ? Number(process.env.PORT ?? 3000) : 0;
server.listen(port, '127.0.0.1', () => {
  const { port: bound } = server.address();
  if (serve) {
    console.log(`listening on http://127.0.0.1:${bound} (/health, /metrics, /work); Ctrl-C to stop`);
    process.once('SIGINT', shutdown);
    return;
  }
  selfCheck(bound).then(
    () => shutdown(),
    (err) => {
      console.error(err);
      process.exitCode = 1;
      shutdown();
    },
  );
});
