// A real node:http server on loopback serving /health and /metrics: 200 with
// the documented JSON, 503 once the controller is forced to emergency, the
// /metrics text read by an independent parser (parse-prometheus-text-format,
// from npm) plus strict line checks, and a prom-client registry whose
// output carries the same gauges with the same values.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import * as promClient from 'prom-client';
import { Budget } from '../src/budget';
import { DegradationController } from '../src/degradation';
import { createHealthHandler, type ResourceFigures } from '../src/health';
import { createMetricsHandler, METRIC_SPECS, registerPromClient, ResourceMetrics } from '../src/metrics';

type Family = { name: string; help: string; type: string; metrics: Array<{ value: string; labels?: Record<string, string> }> };
const parse = (text: string) => parsePrometheusTextFormat(text) as Family[];

const figures: ResourceFigures = {
  memory: { usage: 512e6, limit: 2048e6, source: 'custom' },
  disk: { path: '/srv/"data"\\x', total: 100e9, available: 40e9 },
  cpu: { load: 0.25, processLoad: 0.125, cpus: 4 },
  eventLoop: { lagMs: 1.5, meanMs: 0.5, maxMs: 12 },
  psi: 2.5,
};

const controller = new DegradationController();
const counters = new ResourceMetrics({ controller });
const budget = Budget.open(`http-${process.pid}`, 1000);
const sources = { controller, figures: () => figures, budgets: [budget], metrics: counters };
let server: http.Server;
let base: string;

beforeAll(async () => {
  budget.reserve(850);
  budget.tryReserve(500); // refused
  counters.recordCheck(7);
  counters.recordBreach('memory');
  const health = createHealthHandler(sources);
  const metricsHandler = createMetricsHandler(sources);
  server = http.createServer((req, res) => {
    if (req.url === '/health') return health(req, res);
    if (req.url === '/metrics') return metricsHandler(req, res);
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  budget.close();
});

describe('GET /health', () => {
  test('200 with the documented JSON while healthy', async () => {
    controller.reset();
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await res.json();
    expect(body).toMatchObject({
      status: 'healthy',
      level: 'normal',
      forced: false,
      memory: { usage_mb: 512, limit_mb: 2048, percent: 25, pressure: 'low' },
      disk: { available_mb: 40000, total_mb: 100000, used_percent: 60 },
      cpu: { load: 0.25, percent: 25, cpus: 4 },
      event_loop: { lag_ms: 1.5 },
      psi: { memory_some_avg10: 2.5 },
      budgets: [{ name: `http-${process.pid}`, used_bytes: 850, limit_bytes: 1000, percent: 85, pressure: 'high' }],
    });
    expect(typeof body.timestamp).toBe('string');
  });

  test('200 while degraded, 503 once forced to emergency, 200 again after reset', async () => {
    controller.force('minimal');
    let res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('retry-after')).toBeNull();
    expect((await res.json()).status).toBe('degraded');

    controller.force('emergency');
    res = await fetch(`${base}/health`);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('10');
    expect(await res.json()).toMatchObject({ status: 'unhealthy', level: 'emergency', forced: true });

    const head = await fetch(`${base}/health`, { method: 'HEAD' });
    expect(head.status).toBe(503);
    expect(await head.text()).toBe('');

    controller.reset();
    res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect((await res.json()).status).toBe('healthy');
  });
});

describe('GET /metrics', () => {
  test('Prometheus text that an independent parser reads without error', async () => {
    controller.force('emergency');
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    const families = parse(text);
    const byName = new Map(families.map((f) => [f.name, f]));
    const value = (name: string, labels?: Record<string, string>) => {
      const fam = byName.get(name);
      expect(fam, name).toBeDefined();
      const m = fam!.metrics.find((x) => JSON.stringify(x.labels ?? {}) === JSON.stringify(labels ?? {}));
      expect(m, `${name} ${JSON.stringify(labels)}`).toBeDefined();
      return Number(m!.value);
    };
    expect(value('resource_guard_degradation_level')).toBe(3);
    expect(value('resource_guard_degradation_state', { level: 'emergency' })).toBe(1);
    expect(value('resource_guard_degradation_state', { level: 'normal' })).toBe(0);
    expect(value('resource_guard_degradation_forced')).toBe(1);
    expect(value('resource_guard_memory_usage_bytes')).toBe(512e6);
    expect(value('resource_guard_memory_limit_bytes')).toBe(2048e6);
    expect(value('resource_guard_memory_usage_ratio')).toBe(0.25);
    // The label value with a quote and a backslash survives escaping.
    expect(value('resource_guard_disk_available_bytes', { path: '/srv/"data"\\x' })).toBe(40e9);
    expect(value('resource_guard_cpu_load_ratio')).toBe(0.25);
    expect(value('resource_guard_event_loop_lag_seconds')).toBe(0.0015);
    expect(value('resource_guard_memory_stall_ratio')).toBe(0.025);
    const b = { budget: `http-${process.pid}` };
    expect(value('resource_guard_budget_used_bytes', b)).toBe(850);
    expect(value('resource_guard_budget_usage_ratio', b)).toBe(0.85);
    expect(value('resource_guard_budget_pressure_level', b)).toBe(2);
    expect(value('resource_guard_budget_reservations_total', b)).toBe(1);
    expect(value('resource_guard_budget_reservation_failures_total', b)).toBe(1);
    expect(value('resource_guard_checks_total')).toBe(7);
    expect(value('resource_guard_breaches_total', { resource: 'memory' })).toBe(1);

    // Strict checks the lenient parser does not make.
    for (const f of families) {
      expect(f.name).toMatch(/^resource_guard_[a-z0-9_]+$/);
      expect(f.name).toMatch(/_(bytes|ratio|seconds|total|level|state|forced)$/);
      expect(f.help.length).toBeGreaterThan(10);
      expect(['GAUGE', 'COUNTER']).toContain(f.type);
      if (f.type === 'COUNTER') expect(f.name.endsWith('_total')).toBe(true);
      for (const m of f.metrics) expect(Number.isNaN(Number(m.value))).toBe(false);
      const series = f.metrics.map((m) => JSON.stringify(m.labels ?? {}));
      expect(new Set(series).size).toBe(series.length);
    }
    const lines = text.trimEnd().split('\n');
    const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? (NaN|[+-]Inf|-?\d+(\.\d+)?(e[+-]?\d+)?)$/;
    const declared = new Set<string>();
    for (const line of lines) {
      if (line.startsWith('# HELP ')) continue;
      if (line.startsWith('# TYPE ')) {
        const name = line.split(' ')[2]!;
        expect(declared.has(name), `TYPE ${name} twice`).toBe(false);
        declared.add(name);
        continue;
      }
      expect(line).toMatch(sample);
      expect(declared.has(line.split(/[{ ]/)[0]!), `sample before TYPE: ${line}`).toBe(true);
    }
    expect(text.endsWith('\n')).toBe(true);
    controller.reset();
  });

  test('a prom-client registry includes our gauges, with the values of /metrics', async () => {
    const registry = new promClient.Registry();
    const reg = registerPromClient({ ...sources, registry, client: promClient });
    try {
      const text = await registry.metrics();
      const ours = parse(await (await fetch(`${base}/metrics`)).text());
      const theirs = new Map(parse(text).map((f) => [f.name, f]));
      // Metrics that repeat a prom-client default metric are left out by default.
      expect(reg.names).toEqual(METRIC_SPECS.filter((s) => s.promClientDefault === undefined).map((s) => s.name));
      const duplicates = new Set(METRIC_SPECS.filter((s) => s.promClientDefault !== undefined).map((s) => s.name));
      for (const f of ours) {
        if (duplicates.has(f.name)) {
          expect(theirs.has(f.name), f.name).toBe(false);
          continue;
        }
        const t = theirs.get(f.name);
        expect(t, f.name).toBeDefined();
        expect(t!.type).toBe(f.type);
        const norm = (ms: Family['metrics']) =>
          ms.map((m) => [JSON.stringify(Object.entries(m.labels ?? {}).sort()), Number(m.value)]).sort();
        expect(norm(t!.metrics), f.name).toEqual(norm(f.metrics));
      }
      // Unknown figures give no sample in prom-client either, not a zero.
      const partial = new promClient.Registry();
      registerPromClient({ registry: partial, client: promClient, figures: () => ({ memory: figures.memory }), includeDuplicates: true });
      const p = new Map(parse(await partial.metrics()).map((f) => [f.name, f]));
      expect(p.get('resource_guard_memory_usage_bytes')!.metrics).toHaveLength(1);
      expect(p.get('resource_guard_cpu_load_ratio')?.metrics ?? []).toHaveLength(0);
      expect(p.get('resource_guard_event_loop_lag_seconds')?.metrics ?? []).toHaveLength(0);
    } finally {
      reg.unregister();
    }
    expect(await registry.metrics()).not.toContain('resource_guard_');
  });
});
