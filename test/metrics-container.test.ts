// Metrics beside prom-client's defaults and OpenTelemetry's SDK: no series
// repeats a default metric, process CPU is a _seconds_total counter, and
// unregister() stops reporting (delta readers at once; cumulative ones
// through a dedicated MeterProvider, which unregister() shuts down).
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import promClient from 'prom-client';
import { describe, expect, it } from 'vitest';
import { metrics, METRIC_SPECS, registerOpenTelemetry, registerPromClient } from '../src/metrics';

class ManualReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

async function points(reader: MetricReader): Promise<number> {
  const r = await reader.collect();
  let n = 0;
  for (const sm of r.resourceMetrics.scopeMetrics) for (const m of sm.metrics) n += m.dataPoints.length;
  return n;
}

const FIGURES = () => ({
  memory: { usage: 300, limit: 1000, source: 'custom' as const },
  cpu: { load: 0.5, processLoad: 1, cpus: 2, host: 0.9, processSeconds: 12.5 },
  eventLoop: { lagMs: 2, meanMs: 1, maxMs: 3, utilization: 0.4 },
});

describe('beside prom-client default metrics', () => {
  it('registering next to collectDefaultMetrics() repeats no figure; the switch brings them back', async () => {
    const registry = new promClient.Registry();
    promClient.collectDefaultMetrics({ register: registry });
    const reg = registerPromClient({ registry, client: promClient, figures: FIGURES });
    const text = await registry.metrics();
    expect(text).toContain('process_resident_memory_bytes');
    expect(text).toContain('process_cpu_seconds_total');
    for (const s of METRIC_SPECS.filter((x) => x.promClientDefault !== undefined)) {
      expect(text).toContain(s.promClientDefault);
      expect(text).not.toContain(s.name);
    }
    expect(text).toContain('resource_guard_cpu_load_ratio 0.5');
    expect(text).toContain('resource_guard_host_cpu_load_ratio 0.9');
    await reg.unregister();
    expect(() => registerPromClient({ registry, client: promClient, figures: FIGURES, includeDuplicates: 'yes' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
  });

  it('process CPU is a _seconds_total counter, on the real sampler too', () => {
    expect(METRIC_SPECS.find((s) => s.name === 'resource_guard_process_cpu_seconds_total')).toMatchObject({ type: 'counter', unit: 's' });
    expect(metrics({ figures: FIGURES })).toContain('# TYPE resource_guard_process_cpu_seconds_total counter\nresource_guard_process_cpu_seconds_total 12.5\n');
    const real = metrics();
    const m = /^resource_guard_process_cpu_seconds_total (\S+)$/m.exec(real);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
  });
});

describe('OpenTelemetry unregister()', () => {
  it('a delta reader gets no points after unregister()', async () => {
    const reader = new ManualReader({ aggregationTemporalitySelector: () => AggregationTemporality.DELTA });
    const provider = new MeterProvider({ readers: [reader] });
    const reg = registerOpenTelemetry({ meter: provider.getMeter('t'), figures: FIGURES });
    expect(await points(reader)).toBeGreaterThan(0);
    await reg.unregister();
    expect(await points(reader)).toBe(0);
    await provider.shutdown();
  });

  it('a cumulative reader on a dedicated MeterProvider reports nothing after unregister()', async () => {
    const reader = new ManualReader({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
    const provider = new MeterProvider({ readers: [reader] });
    const reg = registerOpenTelemetry({ meterProvider: provider, figures: FIGURES });
    expect(await points(reader)).toBeGreaterThan(0);
    await reg.unregister();
    await expect(points(reader)).rejects.toThrow();
    await reg.unregister(); // idempotent
  });

  it('meter and meterProvider together are refused', () => {
    const provider = new MeterProvider();
    expect(() => registerOpenTelemetry({ meterProvider: provider, meter: provider.getMeter('x'), figures: FIGURES })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
  });
});
