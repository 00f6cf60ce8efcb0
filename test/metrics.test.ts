// Metrics: the text exposition (names, HELP/TYPE, escaping, unknown figures),
// prom-client and OpenTelemetry integrations (a real MeterProvider with a
// MetricReader observing our instruments), the missing-peer error, counters
// with rates and reset, and the periodic reporter.
import { createRequire } from 'node:module';
import { afterEach, describe, expect, test, vi } from 'vitest';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import * as otelApi from '@opentelemetry/api';
import { DataPointType, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import * as promClient from 'prom-client';
import { Budget } from '../src/budget';
import { DegradationController } from '../src/degradation';
import type { ResourceFigures } from '../src/health';
import {
  collectMetrics,
  formatPrometheus,
  METRIC_SPECS,
  metrics,
  MissingPeerDependencyError,
  registerOpenTelemetry,
  registerPromClient,
  ResourceMetrics,
  startMetricsReporter,
  type MetricsReport,
} from '../src/metrics';

type Family = { name: string; help: string; type: string; metrics: Array<{ value: string; labels?: Record<string, string> }> };
const parse = (text: string) => parsePrometheusTextFormat(text) as Family[];

const FIGURES: ResourceFigures = {
  memory: { usage: 300, limit: 1000, source: 'custom' },
  disk: { path: '/data', total: 5e9, available: 2e9 },
  cpu: { load: 0.5, processLoad: 1.25, cpus: 8 },
  eventLoop: { lagMs: 250, meanMs: 20, maxMs: 400 },
  psi: 12.5,
};
const fixed = (f: Partial<ResourceFigures>) => () => f;

describe('metrics() text exposition', () => {
  test('every family has HELP and TYPE, a resource_guard_ name with its unit, and parses', () => {
    const text = metrics({ figures: fixed(FIGURES), controller: new DegradationController(), metrics: new ResourceMetrics() });
    const families = parse(text);
    expect(families.length).toBeGreaterThanOrEqual(14);
    for (const f of families) {
      expect(text).toContain(`# HELP ${f.name} `);
      expect(text).toContain(`# TYPE ${f.name} ${f.type.toLowerCase()}\n`);
      expect(f.name.startsWith('resource_guard_')).toBe(true);
    }
    for (const s of METRIC_SPECS) {
      expect(s.name).toMatch(/^resource_guard_[a-z_]+_(bytes|ratio|seconds|total|level|state|forced|processes)$/);
      expect(s.type === 'counter').toBe(s.name.endsWith('_total'));
    }
  });

  test('values: level from thresholds when there is no controller; lag in seconds; PSI as a ratio', () => {
    const fams = new Map(collectMetrics({ figures: fixed(FIGURES) }).map((f) => [f.name, f.samples]));
    // Event-loop lag 250 ms is 'reduced' by the default thresholds.
    expect(fams.get('resource_guard_degradation_level')).toEqual([{ labels: {}, value: 1 }]);
    expect(fams.get('resource_guard_degradation_forced')).toEqual([]); // no controller, no claim
    expect(fams.get('resource_guard_event_loop_lag_seconds')).toEqual([{ labels: {}, value: 0.25 }]);
    expect(fams.get('resource_guard_memory_stall_ratio')).toEqual([{ labels: {}, value: 0.125 }]);
    expect(fams.get('resource_guard_process_cpu_load_ratio')).toEqual([{ labels: {}, value: 1.25 }]);
    expect(fams.get('resource_guard_memory_usage_ratio')).toEqual([{ labels: {}, value: 0.3 }]);
  });

  test('unknown figures are left out, not reported as 0', () => {
    const text = metrics({ figures: fixed({}) });
    expect(text).not.toContain('resource_guard_memory_usage_bytes');
    expect(text).not.toContain('resource_guard_disk_available_bytes');
    expect(text).not.toContain('resource_guard_cpu_load_ratio');
    expect(text).toContain('resource_guard_degradation_level 0\n');
    const limitless = metrics({ figures: fixed({ memory: { usage: 5, limit: null, source: 'system' } }) });
    expect(limitless).toContain('resource_guard_memory_usage_bytes 5\n');
    expect(limitless).not.toContain('resource_guard_memory_limit_bytes');
    expect(limitless).not.toContain('resource_guard_memory_usage_ratio');
  });

  test('label values and HELP text are escaped; special values are spelled as Prometheus does', () => {
    const text = formatPrometheus([
      {
        ...METRIC_SPECS.find((s) => s.name === 'resource_guard_budget_used_bytes')!,
        help: 'line one\nback\\slash',
        samples: [
          { labels: { budget: 'a "quoted"\nname\\' }, value: 1 },
          { labels: { budget: 'nan' }, value: NaN },
          { labels: { budget: 'inf' }, value: Infinity },
          { labels: { budget: 'ninf' }, value: -Infinity },
          { labels: { budget: 'big' }, value: 2 ** 60 },
        ],
      },
    ]);
    expect(text).toContain('# HELP resource_guard_budget_used_bytes line one\\nback\\\\slash\n');
    expect(text).toContain('resource_guard_budget_used_bytes{budget="a \\"quoted\\"\\nname\\\\"} 1\n');
    const [fam] = parse(text);
    expect(fam!.help).toBe('line one\nback\\slash');
    expect(fam!.metrics.map((m) => [m.labels!.budget, m.value])).toEqual([
      ['a "quoted"\nname\\', '1'],
      ['nan', 'NaN'],
      ['inf', '+Inf'],
      ['ninf', '-Inf'],
      ['big', String(2 ** 60)],
    ]);
    // JavaScript's shortest spelling of 2^60 reads back as exactly 2^60.
    expect(Number(fam!.metrics[4]!.value)).toBe(2 ** 60);
  });

  test('budgets: one series per budget, private budgets named by slot', () => {
    const a = Budget.create(100);
    const b = Budget.create(100);
    try {
      a.reserve(60);
      expect(a.tryReserve(50)).toBe(false);
      const fams = new Map(collectMetrics({ figures: fixed({}), budgets: [a, b] }).map((f) => [f.name, f.samples]));
      expect(fams.get('resource_guard_budget_used_bytes')).toEqual([
        { labels: { budget: `(private ${a.slot})` }, value: 60 },
        { labels: { budget: `(private ${b.slot})` }, value: 0 },
      ]);
      expect(fams.get('resource_guard_budget_pressure_level')!.map((s) => s.value)).toEqual([1, 0]);
      expect(fams.get('resource_guard_budget_reservation_failures_total')!.map((s) => s.value)).toEqual([1, 0]);
    } finally {
      a.close();
      b.close();
    }
  });
});

describe('prom-client', () => {
  test('registers every metric into a registry; a second registration fails cleanly', async () => {
    const registry = new promClient.Registry();
    const reg = registerPromClient({ registry, client: promClient, figures: fixed(FIGURES) });
    const text = await registry.metrics();
    const own = METRIC_SPECS.filter((s) => s.promClientDefault === undefined);
    for (const s of own) expect(text).toContain(`# TYPE ${s.name} ${s.type}`);
    // No series that repeats a prom-client default metric, unless asked for.
    expect(text).not.toContain('resource_guard_memory_usage_bytes');
    const all = new promClient.Registry();
    const withDuplicates = registerPromClient({ registry: all, client: promClient, figures: fixed(FIGURES), includeDuplicates: true });
    expect(await all.metrics()).toContain('resource_guard_memory_usage_bytes 300');
    withDuplicates.unregister();
    // Same names again: prom-client refuses, and nothing half-registered is left behind.
    expect(() => registerPromClient({ registry, client: promClient, figures: fixed(FIGURES) })).toThrow(/already been registered/);
    expect(registry.getMetricsAsArray()).toHaveLength(own.length);
    reg.unregister();
    expect(registry.getMetricsAsArray()).toHaveLength(0);
  });

  test('the default client is loaded with require and the default registry used', async () => {
    const reg = registerPromClient({ figures: fixed(FIGURES) });
    try {
      expect(await promClient.register.metrics()).toContain('resource_guard_cpu_load_ratio 0.5');
    } finally {
      reg.unregister();
    }
  });

  test('each scrape reads the sources once, not once per metric', async () => {
    const registry = new promClient.Registry();
    let reads = 0;
    registerPromClient({ registry, client: promClient, figures: () => (reads++, FIGURES) });
    await registry.metrics();
    expect(reads).toBe(1);
    await new Promise((r) => setImmediate(r));
    await registry.metrics();
    expect(reads).toBe(2);
  });
});

describe('OpenTelemetry', () => {
  class TestReader extends MetricReader {
    protected async onForceFlush(): Promise<void> {}
    protected async onShutdown(): Promise<void> {}
  }

  test('a real MeterProvider observes our gauges and counters, with units', async () => {
    const reader = new TestReader();
    const provider = new MeterProvider({ readers: [reader] });
    const controller = new DegradationController();
    controller.update({ memory: 0.9 });
    const counters = new ResourceMetrics();
    counters.recordCheck(3);
    let reads = 0;
    const figures = () => (reads++, FIGURES);
    const reg = registerOpenTelemetry({ meter: provider.getMeter('test'), figures, controller, metrics: counters });
    try {
      const { resourceMetrics, errors } = await reader.collect();
      expect(errors).toEqual([]);
      const all = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
      const get = (name: string) => {
        const m = all.find((x) => x.descriptor.name === name);
        expect(m, name).toBeDefined();
        return m!;
      };
      const usage = get('resource_guard.memory.usage');
      expect(usage.descriptor.unit).toBe('By');
      expect(usage.dataPointType).toBe(DataPointType.GAUGE);
      expect(usage.dataPoints[0]!.value).toBe(300);
      expect(get('resource_guard.degradation.level').dataPoints[0]!.value).toBe(2);
      const state = get('resource_guard.degradation.state').dataPoints.map((p) => [p.attributes.level, p.value]);
      expect(state).toEqual([
        ['normal', 0],
        ['reduced', 0],
        ['minimal', 1],
        ['emergency', 0],
      ]);
      expect(get('resource_guard.disk.available').dataPoints[0]!.attributes).toEqual({ path: '/data' });
      expect(get('resource_guard.event_loop.lag').descriptor.unit).toBe('s');
      const checks = get('resource_guard.checks');
      expect(checks.dataPointType).toBe(DataPointType.SUM);
      expect(checks.dataPoints[0]!.value).toBe(3);
      expect(get('resource_guard.degradation.changes').dataPoints[0]!.value).toBe(1);
      expect(reg.names).toEqual(METRIC_SPECS.map((s) => s.otelName));
      // One read of the sources per collection, and none once unregistered.
      expect(reads).toBe(1);
      await reader.collect();
      expect(reads).toBe(2);
      reg.unregister();
      await reader.collect();
      expect(reads).toBe(2);
    } finally {
      await provider.shutdown();
    }
  });

  test('the global API is used when no meter is given', () => {
    const reg = registerOpenTelemetry({ figures: fixed(FIGURES), api: otelApi });
    reg.unregister();
    const reg2 = registerOpenTelemetry({ figures: fixed(FIGURES) });
    reg2.unregister();
  });
});

describe('missing optional peers', () => {
  const Module = createRequire(__filename)('node:module') as { _resolveFilename: (...a: unknown[]) => string };
  const original = Module._resolveFilename;
  afterEach(() => {
    Module._resolveFilename = original;
  });

  test.each([
    ['prom-client', () => registerPromClient({ figures: fixed({}) }), 'registerPromClient()'],
    ['@opentelemetry/api', () => registerOpenTelemetry({ figures: fixed({}) }), 'registerOpenTelemetry()'],
  ])('%s: a clear error naming the package and the fix', (dep, call, feature) => {
    Module._resolveFilename = function (request: unknown, ...rest: unknown[]) {
      if (request === dep) {
        const err = new Error(`Cannot find module '${dep}'`) as Error & { code: string };
        err.code = 'MODULE_NOT_FOUND';
        throw err;
      }
      return original.call(this, request, ...rest);
    };
    let err: unknown;
    try {
      call();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MissingPeerDependencyError);
    expect(err).toMatchObject({ code: 'ERR_MISSING_PEER_DEPENDENCY', dependency: dep, feature });
    expect((err as Error).message).toContain(`npm install ${dep}`);
  });
});

describe('ResourceMetrics', () => {
  test('counts, rates per second and reset, on an injected clock', () => {
    let now = 0;
    const controller = new DegradationController({ clock: () => now });
    const budget = Budget.create(1000);
    const m = new ResourceMetrics({ controller, budgets: [budget], clock: () => now });
    try {
      for (let i = 0; i < 50; i++) m.recordCheck();
      m.recordBreach('memory');
      m.recordBreach('memory');
      m.recordBreach('disk');
      controller.update({ memory: 0.9 });
      controller.update({ memory: 0.99 });
      for (let i = 0; i < 9; i++) budget.reserve(100);
      expect(budget.tryReserve(200)).toBe(false);
      now = 2000;
      const s = m.snapshot();
      expect(s).toMatchObject({
        checks: 50,
        breaches: 3,
        breachesByResource: { memory: 2, disk: 1 },
        levelChanges: 2,
        reservations: 9,
        reservationFailures: 1,
        successRate: 90,
        level: 'emergency',
        elapsedMs: 2000,
        since: 0,
        timestamp: 2000,
        rates: { checksPerSec: 25, breachesPerSec: 1.5, levelChangesPerSec: 1, reservationsPerSec: 4.5, reservationFailuresPerSec: 0.5 },
      });
      m.reset();
      m.recordCheck(4);
      budget.release(100);
      budget.reserve(50);
      now = 3000;
      expect(m.snapshot()).toMatchObject({
        checks: 4,
        breaches: 0,
        breachesByResource: {},
        levelChanges: 0,
        reservations: 1,
        reservationFailures: 0,
        successRate: 100,
        elapsedMs: 1000,
        rates: { checksPerSec: 4, reservationsPerSec: 1 },
      });
      // Lifetime totals ignore resets (they back the Prometheus counters).
      expect(m.totals()).toMatchObject({ checks: 54, breaches: 3, levelChanges: 2, reservations: 10, reservationFailures: 1 });
    } finally {
      budget.close();
    }
  });

  test('no time elapsed: rates are 0, never NaN or Infinity; no reservations: success 100 %', () => {
    const m = new ResourceMetrics({ clock: () => 5 });
    m.recordCheck();
    const s = m.snapshot();
    expect(s.rates).toEqual({ checksPerSec: 0, breachesPerSec: 0, levelChangesPerSec: 0, reservationsPerSec: 0, reservationFailuresPerSec: 0 });
    expect(s.successRate).toBe(100);
    expect(s.level).toBeNull();
  });

  test('bad arguments', () => {
    const m = new ResourceMetrics();
    expect(() => m.recordBreach(5 as never)).toThrow(TypeError);
    expect(() => m.recordCheck(-1)).toThrow(RangeError);
    expect(() => m.recordCheck(NaN)).toThrow(RangeError);
    expect(() => new ResourceMetrics({ controller: {} as never })).toThrow(TypeError);
    expect(() => new ResourceMetrics({ budgets: 3 as never })).toThrow(TypeError);
    expect(m.snapshot().checks).toBe(0);
  });
});

describe('startMetricsReporter', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  test('reports each interval with interval counts and rates; unref\'d; stop() ends it', () => {
    vi.useFakeTimers();
    let now = 0;
    const m = new ResourceMetrics({ clock: () => now });
    const reports: MetricsReport[] = [];
    const reporter = startMetricsReporter(m, { intervalMs: 1000, onReport: (r) => reports.push(r) });
    expect(reporter.running).toBe(true);
    m.recordCheck(10);
    now = 1000;
    vi.advanceTimersByTime(1000);
    m.recordCheck(30);
    m.recordBreach('cpu');
    now = 2000;
    vi.advanceTimersByTime(1000);
    expect(reports).toHaveLength(2);
    expect(reports[0]!.interval).toMatchObject({ checks: 10, elapsedMs: 1000, rates: { checksPerSec: 10 } });
    expect(reports[1]!.interval).toMatchObject({ checks: 30, breaches: 1, breachesByResource: { cpu: 1 }, rates: { checksPerSec: 30 } });
    expect(reports[1]!).toMatchObject({ checks: 40, elapsedMs: 2000, rates: { checksPerSec: 20 } });
    reporter.stop();
    expect(reporter.running).toBe(false);
    vi.advanceTimersByTime(5000);
    expect(reports).toHaveLength(2);
    reporter.stop();
  });

  test('the timer does not keep the process alive', () => {
    const spy = vi.spyOn(globalThis, 'setInterval');
    const reporter = startMetricsReporter(new ResourceMetrics(), { onReport: () => {} });
    try {
      const timer = spy.mock.results[0]!.value as NodeJS.Timeout;
      expect(timer.hasRef()).toBe(false);
    } finally {
      reporter.stop();
      spy.mockRestore();
    }
  });

  test('a logger gets one line per report; a throwing callback goes to onError', () => {
    let now = 0;
    const m = new ResourceMetrics({ clock: () => now });
    const lines: string[] = [];
    const errors: unknown[] = [];
    const reporter = startMetricsReporter(m, {
      intervalMs: 60_000,
      logger: { info: (line: string) => lines.push(line) },
      onReport: () => {
        throw new Error('sink down');
      },
      onError: (e) => errors.push(e),
    });
    m.recordCheck(120);
    now = 60_000;
    const r = reporter.report();
    reporter.stop();
    expect(r.interval.checks).toBe(120);
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe('sink down');
    // The logger is skipped once the callback threw; a fresh reporter with only a logger logs.
    const r2 = startMetricsReporter(m, { logger: { info: (line: string) => lines.push(line) } });
    now = 120_000;
    r2.report();
    r2.stop();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^resource-guard: 0 checks \(0\.00\/s\), 0 breaches, 0 level changes, 0 reservations \(0\.00\/s\), 0 refused, success 100\.0% over 60\.0 s$/);
  });

  test('a reset between reports starts the interval over', () => {
    let now = 0;
    const m = new ResourceMetrics({ clock: () => now });
    const reporter = startMetricsReporter(m, { onReport: () => {} });
    m.recordCheck(100);
    now = 1000;
    reporter.report();
    m.reset();
    m.recordCheck(5);
    now = 1500;
    const r = reporter.report();
    reporter.stop();
    expect(r.interval).toMatchObject({ checks: 5, elapsedMs: 500 });
  });

  test('bad options', () => {
    const m = new ResourceMetrics();
    expect(() => startMetricsReporter({} as never)).toThrow(TypeError);
    expect(() => startMetricsReporter(m, { intervalMs: 0 })).toThrow(RangeError);
    expect(() => startMetricsReporter(m, { logger: {} as never })).toThrow(TypeError);
    expect(() => startMetricsReporter(m, { onReport: 5 as never })).toThrow(TypeError);
  });
});
