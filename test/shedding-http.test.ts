// Load shedding through real HTTP servers on 127.0.0.1 (port 0): node:http,
// Express, Koa and Fastify. The level is pinned with controller.force(), the
// custom checks are run with runCheck(), and the fractional share is spread
// by the shedder's counter, so no assertion depends on timing.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { DegradationController } from '../src/degradation';
import { resourceGuardFastify } from '../src/fastify';
import { metrics } from '../src/metrics';
import { LoadShedder, sheddingOptionsFromUnderPressure, type LoadShedderOptions } from '../src/shedding';

interface Served {
  url: string;
  close(): Promise<void>;
}

type Factory = (shedder: LoadShedder) => Promise<Served>;

async function listen(server: http.Server): Promise<Served> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const ok = (path: string) => JSON.stringify({ ok: true, path });

const frameworks: Record<string, Factory> = {
  'node:http': (shedder) =>
    listen(
      http.createServer(
        shedder.wrap((req, res) => {
          res.setHeader('content-type', 'application/json');
          res.end(ok(req.url!));
        }),
      ),
    ),
  Express: (shedder) => {
    const app = express();
    app.use(shedder.middleware());
    app.use((req, res) => {
      res.type('application/json').send(ok(req.originalUrl));
    });
    return listen(http.createServer(app));
  },
  Koa: (shedder) => {
    const app = new Koa();
    app.use(shedder.koa());
    app.use((ctx) => {
      ctx.type = 'application/json';
      ctx.body = ok(ctx.url);
    });
    return listen(http.createServer(app.callback()));
  },
  Fastify: async (shedder) => {
    const app = Fastify();
    await app.register(resourceGuardFastify, { shedder });
    app.all('/*', async (req, reply) => reply.type('application/json').send(ok(req.url)));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
  },
};

const open: Array<{ served: Served; shedder: LoadShedder }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.served.close();
    o.shedder.close();
  }
});

async function start(factory: Factory, options: LoadShedderOptions) {
  const shedder = new LoadShedder(options);
  const served = await factory(shedder);
  open.push({ served, shedder });
  return { shedder, url: served.url };
}

async function get(url: string) {
  const res = await fetch(url);
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
}

for (const [name, factory] of Object.entries(frameworks)) {
  describe(`load shedding: ${name}`, () => {
    it('a body function that throws or returns no string: onError gets it, the 503 carries the default body', async () => {
      for (const body of [
        () => {
          throw new Error('template failed');
        },
        (d: { cause: string }) => ({ error: 'busy', cause: d.cause }) as never,
      ]) {
        const controller = new DegradationController();
        const errors: unknown[] = [];
        const { url } = await start(factory, { controller, body: body as never, onError: (e) => errors.push(e) });
        controller.force('emergency');
        const shed = await get(`${url}/api`);
        expect(shed.status).toBe(503);
        expect(JSON.parse(shed.body)).toMatchObject({ statusCode: 503, cause: 'level', level: 'emergency' });
        expect(errors).toHaveLength(1);
      }
    });

    it('200 when normal; 503 with Retry-After at the shedding level; exempt routes still 200', async () => {
      const controller = new DegradationController();
      const { shedder, url } = await start(factory, { controller, shedAt: 'minimal', retryAfter: 7, exempt: ['/internal/*', '/ping'] });
      expect(await get(`${url}/api/items?x=1`)).toMatchObject({ status: 200, retryAfter: null });
      controller.force('reduced');
      expect((await get(`${url}/api/items`)).status).toBe(200);
      controller.force('minimal');
      const shed = await get(`${url}/api/items?x=1`);
      expect(shed).toMatchObject({ status: 503, retryAfter: '7' });
      expect(JSON.parse(shed.body)).toMatchObject({ statusCode: 503, error: 'Service Unavailable', cause: 'level', level: 'minimal' });
      for (const path of ['/healthz', '/metrics', '/ready?full=1', '/internal/debug', '/ping']) {
        expect((await get(`${url}${path}`)).status, path).toBe(200);
      }
      expect(shedder.stats()).toMatchObject({ requests: 8, exempt: 5, shed: 1, shedByCause: { level: 1 }, shedByLevel: { minimal: 1 } });
      controller.reset();
      expect((await get(`${url}/api/items`)).status).toBe(200);
    });

    it('an async custom check that fails sheds, and recovers when it passes', async () => {
      const controller = new DegradationController();
      let healthy = true;
      const { shedder, url } = await start(factory, {
        controller,
        healthCheck: async () => healthy,
        healthCheckIntervalMs: 3_600_000,
      });
      await shedder.runCheck();
      expect((await get(`${url}/api/a`)).status).toBe(200);
      healthy = false;
      await shedder.runCheck();
      const r = await get(`${url}/api/a`);
      expect(r).toMatchObject({ status: 503, retryAfter: '10' });
      expect(JSON.parse(r.body)).toMatchObject({ cause: 'check', level: 'normal' });
      expect((await get(`${url}/healthz`)).status).toBe(200);
      healthy = true;
      await shedder.runCheck();
      expect((await get(`${url}/api/a`)).status).toBe(200);
      expect(shedder.stats().shedByCause).toMatchObject({ check: 1, 'check-timeout': 0, level: 0 });
    });

    it('a custom check that does not settle in time sheds (check-timeout); one that throws sheds (check-error)', async () => {
      const controller = new DegradationController();
      let mode: 'hang' | 'throw' = 'hang';
      const errors: unknown[] = [];
      const { shedder, url } = await start(factory, {
        controller,
        healthCheck: () => {
          if (mode === 'throw') throw new Error('db down');
          return new Promise(() => {});
        },
        healthCheckIntervalMs: 3_600_000,
        healthCheckTimeoutMs: 20,
        onError: (e) => errors.push(e),
      });
      await shedder.runCheck();
      const r = await get(`${url}/api/b`);
      expect(r.status).toBe(503);
      expect(JSON.parse(r.body)).toMatchObject({ cause: 'check-timeout' });
      mode = 'throw';
      await shedder.runCheck();
      expect(JSON.parse((await get(`${url}/api/b`)).body)).toMatchObject({ cause: 'check-error' });
      expect(errors).toHaveLength(1);
      expect(shedder.stats().shedByCause).toMatchObject({ 'check-timeout': 1, 'check-error': 1 });
    });

    it('onShed may serve the request after all or answer it itself; a custom body', async () => {
      const controller = new DegradationController();
      const { url } = await start(factory, {
        controller,
        body: 'busy\n',
        onShed: (_d, req, res) => {
          if (req.url!.startsWith('/vip')) return 'pass';
          if (req.url!.startsWith('/own')) {
            res.writeHead(429, { 'content-type': 'text/plain' }).end('slow down\n');
            return 'handled';
          }
          return undefined;
        },
      });
      controller.force('emergency');
      expect(await get(`${url}/vip`)).toMatchObject({ status: 200 });
      expect(await get(`${url}/own`)).toMatchObject({ status: 429, body: 'slow down\n' });
      expect(await get(`${url}/other`)).toMatchObject({ status: 503, body: 'busy\n', retryAfter: '10' });
    });

    it('the fractional mode sheds the configured share (±5 % over 2,000 requests)', async () => {
      const controller = new DegradationController();
      const { shedder, url } = await start(factory, { controller, fraction: { reduced: 0.1, minimal: 0.3, emergency: 1 } });
      controller.force('minimal');
      let shed = 0;
      let served = 0;
      const worker = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const res = await fetch(`${url}/api/frac`);
          await res.arrayBuffer();
          if (res.status === 503) shed++;
          else if (res.status === 200) served++;
        }
      };
      await Promise.all(Array.from({ length: 8 }, () => worker(250)));
      expect(shed + served).toBe(2000);
      expect(Math.abs(shed / 2000 - 0.3)).toBeLessThanOrEqual(0.05);
      expect(shedder.stats().shedByLevel.minimal).toBe(shed);
    }, 60_000);
  });
}

describe('Fastify plugin', () => {
  it('the status route is never shed, with a shedder given as with one it makes', async () => {
    for (const given of [true, false]) {
      const controller = new DegradationController();
      const shedder = given ? new LoadShedder({ controller, shedAt: 'minimal' }) : null;
      const app = Fastify();
      try {
        await app.register(
          resourceGuardFastify,
          shedder ? { shedder, exposeStatusRoute: '/internal/health' } : { controller, shedAt: 'minimal', exposeStatusRoute: '/internal/health' },
        );
        app.get('/api', async () => 'ok');
        await app.listen({ port: 0, host: '127.0.0.1' });
        const { port } = app.server.address() as AddressInfo;
        controller.force('minimal');
        const res = await fetch(`http://127.0.0.1:${port}/internal/health`);
        const body = (await res.json()) as { status?: string };
        expect([given, res.status, body.status]).toEqual([given, 200, 'degraded']);
        expect([given, (await fetch(`http://127.0.0.1:${port}/api`)).status]).toEqual([given, 503]);
      } finally {
        await app.close();
        shedder?.close();
      }
    }
  });

  it('shedder options next to a given shedder are refused (they would be ignored)', async () => {
    const controller = new DegradationController();
    const shedder = new LoadShedder({ controller });
    const app = Fastify();
    try {
      await expect(app.register(resourceGuardFastify, { shedder, shedAt: 'minimal', retryAfter: 3 } as never)).rejects.toMatchObject({
        code: 'ERR_INVALID_ARG_VALUE',
      });
    } finally {
      await app.close().catch(() => {});
      shedder.close();
    }
  });

  it('a route that opts out is never shed; it is counted as seen, and as exempt while shedding applies', async () => {
    const controller = new DegradationController();
    const shedder = new LoadShedder({ controller, shedAt: 'minimal' });
    const app = Fastify();
    try {
      await app.register(resourceGuardFastify, { shedder });
      app.get('/cheap', { config: { resourceGuard: { exempt: true } } }, async () => 'ok');
      app.get('/api', async () => 'ok');
      expect((await app.inject('/cheap')).statusCode).toBe(200);
      expect((await app.inject('/api')).statusCode).toBe(200);
      expect(shedder.stats()).toMatchObject({ requests: 2, exempt: 0, shed: 0 });
      controller.force('minimal');
      expect((await app.inject('/cheap')).statusCode).toBe(200);
      expect((await app.inject('/api')).statusCode).toBe(503);
      expect(shedder.stats()).toMatchObject({ requests: 4, exempt: 1, shed: 1 });
      expect(metrics({ controller, shedder, figures: () => ({}) })).toContain('resource_guard_http_requests_total 4');
    } finally {
      await app.close();
      shedder.close();
    }
  });

  it('while nothing can be shed, the hook reads nothing of the request', () => {
    const controller = new DegradationController();
    const shedder = new LoadShedder({ controller, shedAt: 'emergency' });
    let hook: ((req: never, reply: never, next: (err?: Error) => void) => void) | null = null;
    const instance = {
      addHook: (name: string, fn: never) => {
        if (name === 'onRequest') hook = fn;
      },
      decorate: () => {},
      route: () => {},
    };
    resourceGuardFastify(instance as never, { shedder }, (err) => {
      if (err) throw err;
    });
    const reads: string[] = [];
    const req = new Proxy(
      { url: '/api', method: 'GET', routeOptions: { config: {} }, raw: {} },
      {
        get(target, key, receiver) {
          reads.push(String(key));
          return Reflect.get(target, key, receiver);
        },
      },
    );
    let passed = 0;
    for (const level of ['normal', 'reduced', 'minimal'] as const) {
      controller.force(level);
      hook!(req as never, {} as never, () => void passed++);
    }
    expect(passed).toBe(3);
    expect(reads).toEqual([]);
    expect(shedder.stats().requests).toBe(3);
    controller.force('emergency');
    let sent: unknown = null;
    const reply = {
      raw: {},
      code: () => reply,
      header: () => reply,
      send: (body: unknown) => void (sent = body),
    };
    hook!(req as never, reply as never, () => void passed++);
    expect(passed).toBe(3);
    expect(JSON.parse(sent as string)).toMatchObject({ cause: 'level', level: 'emergency' });
    expect(reads).toContain('url');
    expect(shedder.stats()).toMatchObject({ requests: 4, shed: 1 });
    shedder.close();
  });
});

describe('LoadShedder', () => {
  it('the adapters refuse a url that is not a string before they count the request', async () => {
    const controller = new DegradationController();
    const shedder = new LoadShedder({ controller });
    controller.force('emergency');
    const res = { setHeader() {}, end() {} } as never;
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return (e as { code?: string }).code;
      }
      return undefined;
    };
    expect(code(() => shedder.middleware()({ url: 42, method: 'GET' } as never, res, () => {}))).toBe('ERR_INVALID_ARG_TYPE');
    expect(code(() => shedder.wrap(() => {})({ url: 42, method: 'GET' } as never, res))).toBe('ERR_INVALID_ARG_TYPE');
    await expect(shedder.koa()({ url: 42, req: {}, res: {}, set() {} } as never, async () => {})).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE',
    });
    expect(shedder.stats().requests).toBe(0);
    shedder.close();
  });

  it('fraction: true sheds none at reduced, half at minimal, all at emergency; a random source can replace the counter', () => {
    const controller = new DegradationController();
    const s = new LoadShedder({ controller, fraction: true });
    expect(['normal', 'reduced', 'minimal', 'emergency'].map((l) => s.shareAt(l as 'normal'))).toEqual([0, 0, 0.5, 1]);
    const count = (sh: LoadShedder, n: number) => {
      let k = 0;
      for (let i = 0; i < n; i++) if (sh.decide('/x') !== null) k++;
      return k;
    };
    controller.force('reduced');
    expect(count(s, 100)).toBe(0);
    controller.force('minimal');
    expect(count(s, 100)).toBe(50);
    controller.force('emergency');
    expect(count(s, 100)).toBe(100);
    let i = 0;
    const seq = [0.1, 0.6, 0.49, 0.5];
    const r = new LoadShedder({ controller, fraction: { minimal: 0.5 }, random: () => seq[i++ % 4]! });
    controller.force('minimal');
    expect(count(r, 4)).toBe(2);
  });

  it('counter spreading sheds exactly the share over any run (floor), for awkward fractions too', () => {
    for (const share of [0.1, 0.25, 0.3, 1 / 3, 0.7, 0.999]) {
      const controller = new DegradationController();
      const s = new LoadShedder({ controller, fraction: { minimal: share } });
      controller.force('minimal');
      let k = 0;
      for (let i = 0; i < 1000; i++) if (s.decide('/x') !== null) k++;
      expect(k, String(share)).toBe(Math.floor(1000 * share + 1e-9));
      s.close();
    }
  });

  it('a share above 0 at normal sheds from the start; a share from reduced on sheds nothing at normal', () => {
    const controller = new DegradationController();
    const count = (sh: LoadShedder, n: number) => {
      let k = 0;
      for (let i = 0; i < n; i++) if (sh.decide('/x') !== null) k++;
      return k;
    };
    const always = new LoadShedder({ controller, fraction: { normal: 0.25 } });
    const later = new LoadShedder({ controller, fraction: { reduced: 0.5, emergency: 1 } });
    expect(count(always, 100)).toBe(25);
    expect(count(later, 100)).toBe(0);
    controller.force('reduced');
    expect(count(later, 100)).toBe(50);
    controller.reset();
    expect(count(later, 100)).toBe(0);
    expect(later.stats()).toMatchObject({ requests: 300, shed: 50, shedByLevel: { reduced: 50 } });
    always.close();
    later.close();
  });

  it('while shedding applies, the adapters refuse a url that is not a string, as decide() does', () => {
    const controller = new DegradationController();
    const s = new LoadShedder({ controller, shedAt: 'minimal' });
    controller.force('minimal');
    const mw = s.middleware();
    expect(() => mw({ url: 42 } as never, {} as never, () => {})).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => s.decide(42 as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    s.close();
  });

  it('refuses bad options before taking anything', () => {
    expect(() => new LoadShedder({ shedAt: 'bad' as 'normal' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => new LoadShedder({ fraction: { minimal: 0.5, emergency: 0.2 } })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new LoadShedder({ fraction: { severe: 1 } as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => new LoadShedder({ retryAfter: 1.5 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new LoadShedder({ exempt: '/x' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new LoadShedder({ controller: {} as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('without a controller it feeds its own from the figures and sheds at emergency by default', () => {
    let mem = 0.5;
    const s = new LoadShedder({ figures: () => ({ memory: { usage: mem, limit: 1, source: 'custom' } }), sampleIntervalMs: 3_600_000 });
    expect(s.decide('/a')).toBeNull();
    expect(s.controller.level).toBe('normal');
    mem = 0.96;
    s.controller.update({ memory: mem });
    expect(s.decide('/a')).toMatchObject({ cause: 'level', level: 'emergency', retryAfter: 10 });
    s.close();
    s.close();
  });

  it('shed requests and their cause are counted in the metrics', () => {
    const controller = new DegradationController();
    const s = new LoadShedder({ controller, shedAt: 'minimal' });
    controller.force('minimal');
    s.decide('/a');
    s.decide('/b');
    s.decide('/healthz');
    const text = metrics({ controller, shedder: s, figures: () => ({}) });
    expect(text).toContain('resource_guard_http_requests_shed_total{cause="level",level="minimal"} 2');
    expect(text).toContain('resource_guard_http_requests_total 3');
    expect(text).toContain('# TYPE resource_guard_http_requests_shed_total counter');
  });

  it('underPressure answers "too busy?" without counting', async () => {
    const controller = new DegradationController();
    let healthy = true;
    const s = new LoadShedder({ controller, shedAt: 'minimal', healthCheck: () => healthy, healthCheckIntervalMs: 3_600_000 });
    await s.runCheck();
    expect(s.underPressure).toBe(false);
    controller.force('minimal');
    expect(s.underPressure).toBe(true);
    controller.reset();
    healthy = false;
    await s.runCheck();
    expect(s.underPressure).toBe(true);
    expect(s.stats().requests).toBe(0);
    s.close();
  });

  it('under-pressure limits map to thresholds at emergency, everything else off', () => {
    const o = sheddingOptionsFromUnderPressure(
      { maxEventLoopDelay: 200, maxEventLoopUtilization: 0.98, maxHeapUsedBytes: 1e9, maxRssBytes: 2e9, retryAfter: 5, healthCheckInterval: 500 },
      4e9,
    );
    const s = new LoadShedder({ ...o, figures: () => ({}), sampleIntervalMs: 3_600_000 });
    const c = s.controller;
    expect(c.thresholds.eventLoopLagMs).toEqual({ reduced: null, minimal: null, emergency: 200 });
    expect(c.thresholds.eventLoopUtilization.emergency).toBe(0.98);
    expect(c.thresholds.heap.emergency).toBe(0.25);
    expect(c.thresholds.memory.emergency).toBe(1);
    expect(c.thresholds.cpu).toEqual({ reduced: null, minimal: null, emergency: null });
    expect(o).toMatchObject({ retryAfter: 5, healthCheckIntervalMs: 500, sampler: { memoryLimit: 2e9 } });
    expect(c.update({ eventLoopLagMs: 199.9, heap: 0.2, memory: 0.99 }).level).toBe('normal');
    expect(s.decide('/a')).toBeNull();
    expect(c.update({ eventLoopLagMs: 200 }).level).toBe('emergency');
    expect(s.decide('/a')).toMatchObject({ cause: 'level', retryAfter: 5 });
    s.close();
  });
});
