// The health report: its documented JSON shape from injected figures, the
// status for every level, classification without a controller, budgets,
// the default samplers on this machine, and the HTTP handler through
// node:http-, Express- and Fastify-shaped responses.
import { describe, expect, test } from 'vitest';
import { Budget } from '../src/budget';
import { DegradationController } from '../src/degradation';
import {
  createHealthHandler,
  createResourceSampler,
  healthReport,
  healthStatusFor,
  statusFromFigures,
  type ResourceFigures,
} from '../src/health';

const FIGURES: ResourceFigures = {
  memory: { usage: 512e6, limit: 2048e6, source: 'custom' },
  disk: { path: '/data', total: 100e9, available: 40e9 },
  cpu: { load: 0.25, processLoad: 0.125, cpus: 4 },
  eventLoop: { lagMs: 1.5, meanMs: 0.5, maxMs: 12.25 },
  psi: 0.5,
};

const fixed = (f: Partial<ResourceFigures>) => () => f;

describe('healthReport', () => {
  test('the documented JSON, from injected figures', () => {
    const r = healthReport({ figures: fixed(FIGURES) });
    expect(Object.keys(r)).toEqual([
      'status',
      'level',
      'forced',
      'timestamp',
      'uptime_s',
      'memory',
      'disk',
      'cpu',
      'event_loop',
      'psi',
      'heap',
      'container_memory',
      'budgets',
    ]);
    expect(r).toMatchObject({
      status: 'healthy',
      level: 'normal',
      forced: false,
      // The reference design's figures: 512 MB of 2048 MB is 25 %.
      memory: { usage_mb: 512, limit_mb: 2048, percent: 25, pressure: 'low', usage_bytes: 512e6, limit_bytes: 2048e6, source: 'custom' },
      disk: { path: '/data', available_mb: 40000, total_mb: 100000, used_percent: 60, available_bytes: 40e9, total_bytes: 100e9 },
      cpu: { load: 0.25, percent: 25, process_load: 0.125, cpus: 4 },
      event_loop: { lag_ms: 1.5, mean_ms: 0.5, max_ms: 12.25 },
      psi: { memory_some_avg10: 0.5 },
      budgets: [],
    });
    expect(new Date(r.timestamp).toISOString()).toBe(r.timestamp);
    expect(r.uptime_s).toBeGreaterThan(0);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  test('status follows the controller: healthy, degraded, degraded, unhealthy', () => {
    const controller = new DegradationController();
    const seen = (['normal', 'reduced', 'minimal', 'emergency'] as const).map((l) => {
      controller.force(l);
      const r = healthReport({ controller, figures: fixed(FIGURES) });
      return [r.level, r.status, r.forced];
    });
    expect(seen).toEqual([
      ['normal', 'healthy', true],
      ['reduced', 'degraded', true],
      ['minimal', 'degraded', true],
      ['emergency', 'unhealthy', true],
    ]);
    expect(['normal', 'reduced', 'minimal', 'emergency'].map((l) => healthStatusFor(l as never))).toEqual([
      'healthy',
      'degraded',
      'degraded',
      'unhealthy',
    ]);
  });

  test('the controller is reported as is, unless updateController feeds it the figures', () => {
    const controller = new DegradationController();
    const hot = fixed({ ...FIGURES, memory: { usage: 97, limit: 100, source: 'custom' } });
    expect(healthReport({ controller, figures: hot }).level).toBe('normal');
    expect(controller.inputs.memory).toBeNull();
    const r = healthReport({ controller, figures: hot, updateController: true });
    expect(r).toMatchObject({ level: 'emergency', status: 'unhealthy' });
    expect(controller.inputs).toMatchObject({ memory: 0.97, diskAvailable: 40e9, cpu: 0.25, eventLoopLagMs: 1.5, psi: 0.5 });
  });

  test('without a controller the level is classified from the figures', () => {
    const at = (usage: number, available = 40e9) =>
      healthReport({ figures: fixed({ memory: { usage, limit: 100, source: 'custom' }, disk: { path: '/', total: 1e12, available } }) });
    expect(at(69).status).toBe('healthy');
    expect(at(70)).toMatchObject({ level: 'reduced', status: 'degraded' });
    expect(at(85).level).toBe('minimal');
    expect(at(95)).toMatchObject({ level: 'emergency', status: 'unhealthy' });
    expect(at(10, 100e6)).toMatchObject({ level: 'emergency', status: 'unhealthy' });
    // Custom thresholds apply to the classification.
    const lenient = healthReport({
      figures: fixed({ memory: { usage: 95, limit: 100, source: 'custom' } }),
      degradation: { thresholds: { memory: { emergency: 0.99 } } },
    });
    expect(lenient.level).toBe('minimal');
  });

  test('unknown sections are null, never zeros; a limit-less memory has no percent', () => {
    const r = healthReport({ figures: fixed({ memory: { usage: 1000, limit: null, source: 'system' } }) });
    expect(r.memory).toEqual({
      usage_mb: 0,
      limit_mb: null,
      percent: null,
      pressure: null,
      usage_bytes: 1000,
      limit_bytes: null,
      source: 'system',
    });
    expect([r.disk, r.cpu, r.event_loop, r.psi]).toEqual([null, null, null, null]);
    expect(r.level).toBe('normal');
  });

  test('budgets: real process-wide budgets with percent and pressure; closed ones left out', () => {
    const a = Budget.create(1000);
    const b = Budget.open(`health-${process.pid}`, 1000);
    const closed = Budget.create(10);
    closed.close();
    a.reserve(600);
    b.reserve(950);
    try {
      const r = healthReport({ figures: fixed({}), budgets: [a, b, closed] });
      expect(r.budgets).toEqual([
        { name: `(private ${a.slot})`, used_bytes: 600, limit_bytes: 1000, peak_bytes: 600, percent: 60, pressure: 'medium', scope: 'process', holders: null },
        { name: `health-${process.pid}`, used_bytes: 950, limit_bytes: 1000, peak_bytes: 950, percent: 95, pressure: 'critical', scope: 'process', holders: null },
      ]);
      // A function is called at each report.
      let calls = 0;
      healthReport({ figures: fixed({}), budgets: () => (calls++, [a]) });
      healthReport({ figures: fixed({}), budgets: () => (calls++, [a]) });
      expect(calls).toBe(2);
    } finally {
      a.close();
      b.close();
    }
  });

  test('statusFromFigures leaves unknown inputs out (a controller keeps its last reading)', () => {
    expect(statusFromFigures(FIGURES)).toEqual({ memory: 0.25, diskAvailable: 40e9, cpu: 0.25, eventLoopLagMs: 1.5, psi: 0.5 });
    expect(statusFromFigures({ memory: { usage: 5, limit: null, source: 'system' } })).toEqual({});
    expect(statusFromFigures({})).toEqual({});
  });

  test.each<[unknown, string]>([
    [{ controller: {} }, 'ERR_INVALID_ARG_TYPE'],
    [{ figures: 'x' }, 'ERR_INVALID_ARG_TYPE'],
    [{ budgets: 5 }, 'ERR_INVALID_ARG_TYPE'],
    [{ diskPath: 5 }, 'ERR_INVALID_ARG_TYPE'],
    [{ updateController: 'yes' }, 'ERR_INVALID_ARG_TYPE'],
    [null, 'ERR_INVALID_ARG_TYPE'],
  ])('bad sources %j → %s', (options, code) => {
    expect(() => healthReport(options as never)).toThrow(expect.objectContaining({ code }));
  });
});

describe('the default samplers (this machine)', () => {
  test('RSS against the cgroup limit or RAM, the working directory disk, CPU load', () => {
    const r = healthReport();
    expect(r.memory).not.toBeNull();
    expect(r.memory!.usage_bytes).toBeGreaterThan(1e6);
    expect(r.memory!.limit_bytes).toBeGreaterThan(r.memory!.usage_bytes);
    expect(['cgroup', 'system']).toContain(r.memory!.source);
    expect(r.memory!.percent).toBeGreaterThan(0);
    expect(r.disk!.path).toBe(process.cwd());
    expect(r.disk!.total_bytes).toBeGreaterThanOrEqual(r.disk!.available_bytes);
    expect(r.cpu!.load).toBeGreaterThanOrEqual(0);
    expect(r.cpu!.load).toBeLessThanOrEqual(1);
    expect(r.cpu!.cpus).toBeGreaterThan(0);
    expect(r.psi === null || r.psi.memory_some_avg10 >= 0).toBe(true);
    expect(r.errors).toBeUndefined();
  });

  test('event-loop lag is measured: a blocked loop shows up', async () => {
    const sample = createResourceSampler({ eventLoopResolutionMs: 10, eventLoopWindowMs: 0, cpu: false, psi: false });
    try {
      await new Promise((r) => setTimeout(r, 50));
      sample(); // start a fresh window
      await new Promise((r) => setTimeout(r, 30));
      const t = Date.now();
      while (Date.now() - t < 120);
      await new Promise((r) => setTimeout(r, 30));
      const f = sample();
      expect(f.eventLoop).not.toBeNull();
      expect(f.eventLoop!.maxMs).toBeGreaterThan(80);
      expect(f.cpu).toBeNull();
      expect(f.psi).toBeNull();
    } finally {
      sample.close();
    }
  });

  test('a missing disk path: disk is null and the reason is given', () => {
    const r = healthReport({ diskPath: '/nonexistent/resource-guard' });
    expect(r.disk).toBeNull();
    expect(r.errors?.disk).toMatch(/no such file or directory/);
    expect(r.memory).not.toBeNull();
  });

  test('a configured memory limit is used as is', () => {
    const sample = createResourceSampler({ memoryLimit: '64TB', eventLoop: false });
    const f = sample();
    expect(f.memory).toMatchObject({ limit: 64e12, source: 'configured' });
    expect(() => createResourceSampler({ memoryLimit: 'lots' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
});

describe('createHealthHandler response shapes', () => {
  function fakeNodeResponse() {
    const headers: Record<string, string | number> = {};
    const res = {
      statusCode: 0,
      body: undefined as string | undefined,
      setHeader(name: string, value: string | number) {
        headers[name.toLowerCase()] = value;
      },
      end(body?: string) {
        res.body = body;
      },
      headers,
    };
    return res;
  }

  test('node:http / Express response: status, JSON, no-store', () => {
    const controller = new DegradationController();
    const handler = createHealthHandler({ controller, figures: fixed(FIGURES) });
    const res = fakeNodeResponse();
    let nextCalled = false;
    handler({ method: 'GET' }, res as never, () => (nextCalled = true));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['content-length']).toBe(Buffer.byteLength(res.body!));
    expect(JSON.parse(res.body!).status).toBe('healthy');
    expect(nextCalled).toBe(false);
    controller.force('emergency');
    const res2 = fakeNodeResponse();
    handler({ method: 'HEAD' }, res2 as never);
    expect(res2.statusCode).toBe(503);
    expect(res2.body).toBeUndefined();
  });

  test('Fastify reply: code(), header(), send()', () => {
    const controller = new DegradationController();
    const handler = createHealthHandler({ controller, figures: fixed(FIGURES) });
    const calls: unknown[][] = [];
    const reply = {
      code(s: number) {
        calls.push(['code', s]);
        return reply;
      },
      header(n: string, v: string) {
        calls.push(['header', n, v]);
        return reply;
      },
      send(body: string) {
        calls.push(['send', JSON.parse(body).status]);
        return reply;
      },
    };
    controller.force('minimal');
    handler({ method: 'GET' }, reply);
    expect(calls).toEqual([
      ['code', 200],
      ['header', 'content-type', 'application/json; charset=utf-8'],
      ['header', 'cache-control', 'no-store'],
      ['send', 'degraded'],
    ]);
  });

  test('custom status codes; a failing source answers 500 with the error', () => {
    const controller = new DegradationController();
    controller.force('reduced');
    const strict = createHealthHandler({ controller, figures: fixed(FIGURES), statusCodes: { degraded: 503 } });
    const res = fakeNodeResponse();
    strict({ method: 'GET' }, res as never);
    expect(res.statusCode).toBe(503);
    const broken = createHealthHandler({
      figures: () => {
        throw new Error('sensor offline');
      },
    });
    const res2 = fakeNodeResponse();
    broken({ method: 'GET' }, res2 as never);
    expect(res2.statusCode).toBe(500);
    expect(JSON.parse(res2.body!)).toEqual({ status: 'unhealthy', error: 'sensor offline' });
    expect(() => createHealthHandler({ statusCodes: { unhealthy: 42 } })).toThrow(RangeError);
  });

  test('a statusCodes key that is not a health status is refused (a typo would change nothing)', () => {
    expect(() => createHealthHandler({ statusCodes: { unheathy: 200 } as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('options.statusCodes.unheathy') }),
    );
  });

  test('a memory limit or disk total of 0 gives an unknown share (null), never 0 %', () => {
    const figures = () => ({ memory: { usage: 500e6, limit: 0, source: 'cgroup' }, disk: { path: '/x', available: 0, total: 0 } });
    const r = healthReport({ figures: figures as never });
    expect(r.memory).toMatchObject({ limit_mb: 0, percent: null, pressure: null });
    expect(r.disk!.used_percent).toBeNull();
  });
});
