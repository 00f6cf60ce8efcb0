import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CpuOverloadError } from '../src/errors';
import { CpuMonitor, type CpuSample } from '../src/guards';

function fake(system = 0) {
  const state = { system, cores: 0.5, quota: null as number | null, lag: 1, utilization: 0.25 };
  return {
    state,
    source: {
      system: () => state.system,
      process: () => state.cores,
      quota: () => state.quota,
      cpuCount: () => 4,
      eventLoop: () => ({ lagMs: state.lag, utilization: state.utilization }),
    },
  };
}

function record(monitor: CpuMonitor) {
  const events: Array<[string, number]> = [];
  for (const name of ['high', 'critical', 'throttle', 'unthrottle'] as const) {
    monitor.on(name, (s: CpuSample) => events.push([name, s.load]));
  }
  return events;
}

describe('CpuMonitor: thresholds at the boundary', () => {
  it('defaults to 0.85 / 0.95; critical at exactly 0.95, not just below', () => {
    const f = fake();
    const monitor = new CpuMonitor({ basis: 'system', source: f.source });
    expect(monitor.thresholds).toMatchObject({ high: 0.85, critical: 0.95, autoThrottle: true, throttleDelayMs: 50 });
    f.state.system = 0.95 - 1e-9;
    expect(monitor.sample()).toMatchObject({ high: true, critical: false, throttling: false });
    expect(() => monitor.assert()).not.toThrow();
    f.state.system = 0.95;
    expect(monitor.sample()).toMatchObject({ critical: true, throttling: true });
    let err: unknown;
    try {
      monitor.assert();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CpuOverloadError);
    expect(err).toMatchObject({ code: 'ERR_CPU_OVERLOAD', load: 0.95, threshold: 0.95 });
  });

  it('high at exactly 0.85, not just below', () => {
    const f = fake(0.85 - 1e-9);
    const monitor = new CpuMonitor({ basis: 'system', source: f.source });
    expect(monitor.sample().high).toBe(false);
    f.state.system = 0.85;
    expect(monitor.sample().high).toBe(true);
  });

  it('throttling switches on at critical and off only below high (hysteresis)', () => {
    const f = fake();
    const monitor = new CpuMonitor({ basis: 'system', highThreshold: 0.8, criticalThreshold: 0.9, source: f.source });
    const events = record(monitor);
    const seen: boolean[] = [];
    for (const load of [0.5, 0.89, 0.9, 0.85, 0.8, 0.95, 0.7999, 0.85, 0.8999, 0.9]) {
      f.state.system = load;
      seen.push(monitor.sample().throttling);
    }
    expect(seen).toEqual([false, false, true, true, true, true, false, false, false, true]);
    expect(events).toEqual([
      ['high', 0.89],
      ['critical', 0.9],
      ['throttle', 0.9],
      ['critical', 0.95],
      ['unthrottle', 0.7999],
      ['high', 0.85],
      ['critical', 0.9],
      ['throttle', 0.9],
    ]);
    expect(monitor.stats()).toMatchObject({ samples: 10, highWarnings: 2, criticalWarnings: 3, throttleEpisodes: 2, peakLoad: 0.95 });
  });

  it('high may equal critical', () => {
    const f = fake(0.9);
    const monitor = new CpuMonitor({ basis: 'system', highThreshold: 0.9, criticalThreshold: 0.9, source: f.source });
    expect(monitor.sample().throttling).toBe(true);
    f.state.system = 0.8999;
    expect(monitor.sample().throttling).toBe(false);
  });

  it('an unknown load changes no state', () => {
    const f = fake(0.99);
    const monitor = new CpuMonitor({ basis: 'system', source: f.source });
    expect(monitor.sample().throttling).toBe(true);
    f.state.system = NaN;
    const s = monitor.sample();
    expect(Number.isNaN(s.load)).toBe(true);
    expect(s.throttling).toBe(true);
    expect(() => monitor.assert()).not.toThrow();
  });
});

describe('CpuMonitor: quota and figures', () => {
  it('with a cgroup quota, load is this process against the quota', () => {
    const f = fake(0.1);
    f.state.quota = 2;
    f.state.cores = 1.5;
    const monitor = new CpuMonitor({ basis: 'quota', source: f.source });
    expect(monitor.sample()).toMatchObject({ basis: 'quota', load: 0.75, quotaLoad: 0.75, system: 0.1, process: 0.75, cpus: 2, processCores: 1.5 });
    f.state.cores = 2.5;
    expect(monitor.sample()).toMatchObject({ load: 1, critical: true });
    const sys = new CpuMonitor({ basis: 'system', source: f.source });
    expect(sys.sample()).toMatchObject({ basis: 'system', load: 0.1 });
  });

  it('by default (the CPU rule) a busy host does not count: this process against the CPUs it may use', () => {
    const f = fake(1);
    f.state.cores = 0.4;
    const monitor = new CpuMonitor({ source: f.source });
    expect(monitor.sample()).toMatchObject({ basis: 'process', load: 0.1, cpus: 4, system: 1, high: false, throttling: false });
    f.state.quota = 0.5;
    expect(monitor.sample()).toMatchObject({ basis: 'process', load: 0.8, cpus: 0.5, quota: 0.5 });
    f.state.cores = 0.5;
    expect(monitor.sample()).toMatchObject({ load: 1, critical: true, throttling: true });
  });

  it('by default a container figure wins over the process figure; the quota is capped by the CPU count', () => {
    const f = fake(0);
    const state = { container: 1.5 as number | null };
    const monitor = new CpuMonitor({ source: { ...f.source, container: () => state.container } });
    f.state.quota = 8;
    expect(monitor.sample()).toMatchObject({ basis: 'container', cpus: 4, load: 0.375, processCores: 0.5 });
    state.container = null;
    expect(monitor.sample()).toMatchObject({ basis: 'process', load: 0.125 });
  });

  it('reports event-loop figures from the source', () => {
    const f = fake(0.2);
    const monitor = new CpuMonitor({ basis: 'system', source: f.source });
    expect(monitor.sample()).toMatchObject({ eventLoopLagMs: 1, eventLoopLagMaxMs: 1, eventLoopUtilization: 0.25 });
  });
});

describe('CpuMonitor: throttle', () => {
  it('throttle() waits on a timer without blocking the event loop', async () => {
    const f = fake(0.99);
    const monitor = new CpuMonitor({ basis: 'system', throttleDelayMs: 20, source: f.source });
    let turned = false;
    setImmediate(() => {
      turned = true;
    });
    const waited = await monitor.throttle();
    expect(waited).toBe(true);
    expect(turned).toBe(true); // the event loop ran while throttle() waited
    expect(monitor.stats().throttleWaits).toBe(1);
    expect(monitor.stats().throttledMs).toBeGreaterThan(0);
  });

  it('throttle() does not wait when not throttling, or with autoThrottle off', async () => {
    const f = fake(0.5);
    const monitor = new CpuMonitor({ basis: 'system', source: f.source });
    expect(await monitor.throttle()).toBe(false);
    f.state.system = 1;
    const manual = new CpuMonitor({ basis: 'system', autoThrottle: false, source: f.source });
    expect(await manual.throttle()).toBe(false);
    expect(manual.throttling).toBe(true);
  });

  it('throttleSync() sleeps the thread while throttling', () => {
    const f = fake(1);
    const monitor = new CpuMonitor({ basis: 'system', throttleDelayMs: 5, source: f.source });
    expect(monitor.throttleSync()).toBe(true);
    f.state.system = 0;
    expect(monitor.throttleSync()).toBe(false);
    expect(monitor.stats().throttleWaits).toBe(1);
  });

  it('reset() clears the counters and the throttle state', () => {
    const f = fake(1);
    const monitor = new CpuMonitor({ basis: 'system', source: f.source });
    monitor.sample();
    monitor.reset();
    expect(monitor.throttling).toBe(false);
    expect(monitor.stats()).toMatchObject({ samples: 0, throttleEpisodes: 0, peakLoad: 0 });
  });
});

describe('CpuMonitor: default sources', () => {
  it('the first system reading is a real load (a number from 0 to 1), not unknown', () => {
    // Over a window of one sampler interval the host may have had no busy
    // tick at all (/proc/stat counts in 10 ms ticks), so 0 is a real reading;
    // what must never come back is no reading.
    const monitor = new CpuMonitor();
    const s = monitor.sample();
    expect(Number.isFinite(s.system)).toBe(true);
    expect(s.system).toBeGreaterThanOrEqual(0);
    expect(s.system).toBeLessThanOrEqual(1);
    expect(s.cpuCount).toBeGreaterThan(0);
    expect(s.processCores).toBeGreaterThanOrEqual(0);
    monitor.close();
  });

  it('measures event-loop lag after the loop was blocked', async () => {
    const monitor = new CpuMonitor({ sampleIntervalMs: 1 });
    await new Promise((r) => setTimeout(r, 30));
    const t = Date.now();
    while (Date.now() - t < 120) {
      // block the event loop
    }
    await new Promise((r) => setTimeout(r, 30));
    const s = monitor.sample();
    expect(s.eventLoopLagMaxMs).toBeGreaterThanOrEqual(60);
    expect(s.eventLoopLagMs).toBeGreaterThan(0);
    expect(s.eventLoopUtilization).toBeGreaterThan(0);
    monitor.close();
  });

  it('emits events as an EventEmitter', async () => {
    const f = fake(1);
    const monitor = new CpuMonitor({ basis: 'system', source: f.source });
    const p = once(monitor, 'throttle');
    monitor.sample();
    const [s] = await p;
    expect(s.throttling).toBe(true);
  });
});

describe('CpuMonitor: pacing, the average over the last samples, and the peak', () => {
  it('minSampleIntervalMs: a call within the interval returns the cached sample and is not counted; at the interval it samples', () => {
    const f = fake(0.2);
    const clock = { now: 1000 };
    const monitor = new CpuMonitor({ basis: 'system', source: f.source, clock: () => clock.now, minSampleIntervalMs: 100 });
    const first = monitor.sample();
    f.state.system = 0.9;
    clock.now = 1099;
    expect(monitor.sample()).toBe(first);
    expect(monitor.stats()).toMatchObject({ samples: 1, pacedCalls: 1 });
    clock.now = 1100;
    const second = monitor.sample();
    expect(second.load).toBe(0.9);
    expect(monitor.stats()).toMatchObject({ samples: 2, pacedCalls: 1 });
  });

  it('without minSampleIntervalMs every call samples (the default)', () => {
    const f = fake(0.2);
    const monitor = new CpuMonitor({ basis: 'system', source: f.source, clock: () => 5 });
    monitor.sample();
    f.state.system = 0.4;
    expect(monitor.sample().load).toBe(0.4);
    expect(monitor.stats()).toMatchObject({ samples: 2, pacedCalls: 0 });
  });

  it('averageLoad is the mean of the last averageWindow known loads (default 10); unknown loads are left out', () => {
    const f = fake(0);
    const monitor = new CpuMonitor({ basis: 'system', source: f.source, averageWindow: 3 });
    const loads = [0.1, 0.2, 0.3, 0.6];
    const averages: number[] = [];
    for (const x of loads) {
      f.state.system = x;
      averages.push(monitor.sample().averageLoad);
    }
    expect(averages[0]).toBeCloseTo(0.1, 12);
    expect(averages[1]).toBeCloseTo(0.15, 12);
    expect(averages[2]).toBeCloseTo(0.2, 12);
    expect(averages[3]).toBeCloseTo((0.2 + 0.3 + 0.6) / 3, 12); // 0.1 has left the window
    f.state.system = NaN;
    const unknown = monitor.sample();
    expect(unknown.load).toBeNaN();
    expect(unknown.averageLoad).toBeCloseTo((0.2 + 0.3 + 0.6) / 3, 12);
    expect(monitor.stats().averageLoad).toBeCloseTo((0.2 + 0.3 + 0.6) / 3, 12);
    expect(monitor.stats().peakLoad).toBe(0.6);
    const d = new CpuMonitor({ basis: 'system', source: f.source });
    expect(d.averageWindow).toBe(10);
    expect(monitor.averageWindow).toBe(3);
  });

  it('before any known load the average is unknown (NaN), never 0; reset() clears it', () => {
    const f = fake(NaN);
    const monitor = new CpuMonitor({ basis: 'system', source: f.source });
    expect(monitor.sample().averageLoad).toBeNaN();
    expect(monitor.stats().averageLoad).toBeNaN();
    f.state.system = 0.5;
    expect(monitor.sample().averageLoad).toBe(0.5);
    monitor.reset();
    expect(monitor.stats()).toMatchObject({ samples: 0, pacedCalls: 0, peakLoad: 0 });
    expect(monitor.stats().averageLoad).toBeNaN();
  });

  it('bad pacing and window options are refused with typed errors before anything starts', () => {
    for (const [options, code] of [
      [{ minSampleIntervalMs: -1 }, 'ERR_OUT_OF_RANGE'],
      [{ minSampleIntervalMs: Number.NaN }, 'ERR_OUT_OF_RANGE'],
      [{ minSampleIntervalMs: '5' }, 'ERR_INVALID_ARG_TYPE'],
      [{ averageWindow: 0 }, 'ERR_OUT_OF_RANGE'],
      [{ averageWindow: 2.5 }, 'ERR_OUT_OF_RANGE'],
      [{ averageWindow: 10_001 }, 'ERR_OUT_OF_RANGE'],
      [{ averageWindow: '3' }, 'ERR_INVALID_ARG_TYPE'],
    ] as const) {
      expect(() => new CpuMonitor({ basis: 'system', source: fake().source, ...(options as object) })).toThrow(
        expect.objectContaining({ code }),
      );
    }
  });
});
