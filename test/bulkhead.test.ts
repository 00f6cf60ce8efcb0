// The bulkhead at its boundaries: FIFO permits, release exactly once, wait
// timeouts, queue overflow (reject and drop-oldest, each with its typed
// error and its counter), close and abort, the health bands at their exact
// edges, and the adaptive limit following a degradation level source.
import { EventEmitter } from 'node:events';
import { describe, expect, test, vi } from 'vitest';
import {
  Bulkhead,
  BulkheadRejectedError,
  BulkheadTimeoutError,
  DEFAULT_LEVEL_FACTORS,
  bulkheadHealthScore,
  bulkheadHealthStatus,
  type BulkheadLevel,
  type Release,
} from '../src/bulkhead';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const tick = () => new Promise<void>((r) => setImmediate(r));

/** A promise and its resolver, to hold work open. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('permits', () => {
  test('at most maxConcurrent at once, granted in FIFO order', async () => {
    const b = new Bulkhead({ maxConcurrent: 2 });
    const gates = Array.from({ length: 5 }, gate);
    const order: number[] = [];
    const runs = gates.map((g, i) =>
      b.run(async () => {
        order.push(i);
        await g.promise;
        return i;
      }),
    );
    await tick();
    expect(order).toEqual([0, 1]);
    expect(b.inUse).toBe(2);
    expect(b.queued).toBe(3);
    gates[1]!.open();
    await tick();
    expect(order).toEqual([0, 1, 2]);
    for (const g of gates) g.open();
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3, 4]);
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect(b.inUse).toBe(0);
    expect(b.metrics()).toMatchObject({ acquisitions: 5, successes: 5, errors: 0, queued: 0 });
  });

  test('a release function works once; later calls change nothing', async () => {
    const b = new Bulkhead({ maxConcurrent: 1 });
    const release = await b.acquire();
    expect(b.inUse).toBe(1);
    release();
    release();
    release(true);
    expect(b.inUse).toBe(0);
    expect(b.metrics()).toMatchObject({ successes: 1, errors: 0 });
    const r2 = await b.acquire();
    r2(true);
    expect(b.metrics()).toMatchObject({ successes: 1, errors: 1, acquisitions: 2 });
  });

  test('work that throws or rejects is counted as an error and its error is passed on', async () => {
    const b = new Bulkhead({ maxConcurrent: 1 });
    await expect(
      b.run(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    await expect(b.run(() => Promise.reject(new Error('async')))).rejects.toThrow('async');
    expect(await b.run(() => 7)).toBe(7);
    expect(b.metrics()).toMatchObject({ acquisitions: 3, successes: 1, errors: 2, inUse: 0 });
    expect(() => b.run(42 as never)).toThrow(TypeError);
  });

  test('a wait that outlasts the timeout fails with BulkheadTimeoutError and the work never runs', async () => {
    const b = new Bulkhead({ maxConcurrent: 1, waitTimeout: 30, name: 'db' });
    const hold = await b.acquire();
    const fn = vi.fn();
    const err = await rejection(b.run(fn));
    expect(err).toBeInstanceOf(BulkheadTimeoutError);
    expect(err).toMatchObject({ code: 'ERR_BULKHEAD_TIMEOUT', bulkhead: 'db', timeout: 30, limit: 1, inUse: 1 });
    expect((err as BulkheadTimeoutError).waited).toBeGreaterThanOrEqual(29);
    expect(fn).not.toHaveBeenCalled();
    // A per-request timeout overrides the bulkhead's.
    const quick = await rejection(b.acquire({ timeout: 1 }));
    expect(quick).toMatchObject({ timeout: 1 });
    expect(b.metrics()).toMatchObject({ timeouts: 2, queued: 0, inUse: 1 });
    hold();
    expect(b.inUse).toBe(0);
  });
});

describe('wait timeouts in bulk', () => {
  const timers = () => process.getActiveResourcesInfo().filter((t) => t === 'Timeout').length;

  test('waiters time out in order, each after its own wait, mixed with per-request timeouts', async () => {
    const b = new Bulkhead({ maxConcurrent: 1, waitTimeout: 40 });
    const hold = await b.acquire();
    const settled: string[] = [];
    const watch = (name: string, p: Promise<unknown>) =>
      p.then(
        () => settled.push(`${name}:granted`),
        (e: BulkheadTimeoutError) => {
          expect(e.waited).toBeGreaterThanOrEqual(e.timeout - 1);
          settled.push(`${name}:${e.timeout}`);
        },
      );
    const all = [watch('a', b.acquire()), watch('short', b.acquire({ timeout: 10 }))];
    await sleep(15);
    all.push(watch('b', b.acquire()), watch('long', b.acquire({ timeout: 200 })));
    await Promise.all(all.slice(0, 3));
    expect(settled).toEqual(['short:10', 'a:40', 'b:40']);
    expect(b.queued).toBe(1);
    hold();
    await all[3];
    expect(settled[3]).toBe('long:granted');
    expect(b.metrics()).toMatchObject({ timeouts: 3, acquisitions: 2, queued: 0 });
  });

  test('no timer is left armed once the queue is empty, however waiters left it', async () => {
    const before = timers();
    const b = new Bulkhead({ maxConcurrent: 1, waitTimeout: 60_000 });
    const hold = await b.acquire();
    const granted = [b.acquire(), b.acquire()];
    expect(timers()).toBe(before + 1);
    hold();
    for (const p of granted) (await p)();
    expect(timers()).toBe(before);

    const hold2 = await b.acquire();
    const ac = new AbortController();
    const aborted = b.acquire({ signal: ac.signal });
    expect(timers()).toBe(before + 1);
    ac.abort();
    await rejection(aborted);
    expect(timers()).toBe(before);
    const closing = b.acquire();
    b.close();
    await rejection(closing);
    expect(timers()).toBe(before);
    hold2();
  });

  test('thousands of waiters on the shared timer all time out, and the list is compacted', async () => {
    const b = new Bulkhead({ maxConcurrent: 1, waitTimeout: 20 });
    const hold = await b.acquire();
    const waits = Array.from({ length: 5000 }, () => b.acquire());
    const results = await Promise.allSettled(waits);
    expect(results.every((r) => r.status === 'rejected' && r.reason instanceof BulkheadTimeoutError)).toBe(true);
    expect(b.metrics()).toMatchObject({ timeouts: 5000, queued: 0 });
    hold();
    // And it still works afterwards.
    expect(await b.run(() => 'ok')).toBe('ok');
  });
});

describe('overflow', () => {
  test('reject: a request beyond the queue is refused with BulkheadRejectedError (queue-full)', async () => {
    const b = new Bulkhead({ maxConcurrent: 1, maxQueue: 2 });
    const hold = await b.acquire();
    const waiting = [b.acquire(), b.acquire()];
    const err = await rejection(b.acquire());
    expect(err).toBeInstanceOf(BulkheadRejectedError);
    expect(err).toMatchObject({ code: 'ERR_BULKHEAD_REJECTED', reason: 'queue-full', queued: 2, maxQueue: 2, inUse: 1, limit: 1 });
    expect(b.metrics()).toMatchObject({ rejections: 1, dropped: 0, queued: 2 });
    hold();
    (await waiting[0]!)();
    (await waiting[1]!)();
    expect(b.inUse).toBe(0);
  });

  test('drop-oldest: the longest waiter is shed with its typed error and the newcomer queues', async () => {
    const b = new Bulkhead({ maxConcurrent: 1, maxQueue: 2, overflow: 'drop-oldest' });
    const hold = await b.acquire();
    const granted: string[] = [];
    const track = (name: string) =>
      b.acquire().then((release: Release) => {
        granted.push(name);
        release();
      });
    const oldest = track('B');
    const c = track('C');
    const d = track('D');
    const err = await rejection(oldest);
    expect(err).toBeInstanceOf(BulkheadRejectedError);
    expect(err).toMatchObject({ reason: 'dropped', maxQueue: 2 });
    expect(b.queued).toBe(2);
    hold();
    await Promise.all([c, d]);
    expect(granted).toEqual(['C', 'D']);
    expect(b.metrics()).toMatchObject({ rejections: 1, dropped: 1, acquisitions: 3, successes: 3, inUse: 0, queued: 0 });
  });

  test('drop-oldest with no queue at all refuses the newcomer', async () => {
    const b = new Bulkhead({ maxConcurrent: 1, maxQueue: 0, overflow: 'drop-oldest' });
    const hold = await b.acquire();
    expect(await rejection(b.acquire())).toMatchObject({ reason: 'queue-full' });
    hold();
  });
});

describe('close and abort', () => {
  test('close rejects every waiter and later requests; held permits still release', async () => {
    const b = new Bulkhead({ maxConcurrent: 1 });
    const hold = await b.acquire();
    const waiters = [b.acquire(), b.run(() => 1)];
    b.close();
    b.close();
    for (const w of waiters) expect(await rejection(w)).toMatchObject({ reason: 'closed' });
    expect(await rejection(b.acquire())).toMatchObject({ code: 'ERR_BULKHEAD_REJECTED', reason: 'closed' });
    hold();
    expect(b.inUse).toBe(0);
    expect(b.closed).toBe(true);
    expect(b.metrics().rejections).toBe(3);
  });

  test('an aborted request leaves the queue with the signal’s reason and is counted as cancelled', async () => {
    const b = new Bulkhead({ maxConcurrent: 1 });
    const hold = await b.acquire();
    const ac = new AbortController();
    const p = b.acquire({ signal: ac.signal });
    expect(b.queued).toBe(1);
    ac.abort(new Error('no longer needed'));
    expect(await rejection(p)).toMatchObject({ message: 'no longer needed' });
    expect(b.queued).toBe(0);
    expect(await rejection(b.run(() => 1, { signal: AbortSignal.abort() }))).toBeInstanceOf(Error);
    expect(b.metrics()).toMatchObject({ cancelled: 2, rejections: 0, timeouts: 0 });
    hold();
  });
});

describe('health', () => {
  test('bands at their exact edges: healthy >= 95, degraded >= 80, else unhealthy', () => {
    const score = (timeouts: number, errors: number, requests = 100) =>
      bulkheadHealthScore({ acquisitions: requests - timeouts, timeouts, rejections: 0, errors });
    expect(score(0, 0)).toBe(100);
    expect(score(5, 0)).toBe(95);
    expect(bulkheadHealthStatus(score(5, 0))).toBe('healthy');
    expect(bulkheadHealthStatus(score(3, 2))).toBe('healthy');
    expect(bulkheadHealthStatus(score(6, 0))).toBe('degraded');
    expect(score(20, 0)).toBe(80);
    expect(bulkheadHealthStatus(score(20, 0))).toBe('degraded');
    expect(bulkheadHealthStatus(score(10, 10))).toBe('degraded');
    expect(bulkheadHealthStatus(score(21, 0))).toBe('unhealthy');
    expect(bulkheadHealthStatus(score(0, 21))).toBe('unhealthy');
    // Exactness for denominators that are not a divisor of 100.
    expect(score(19, 0, 380)).toBe(95);
    expect(score(38, 38, 380)).toBe(80);
    expect(bulkheadHealthStatus(94.99999999)).toBe('degraded');
    expect(bulkheadHealthStatus(79.99999999)).toBe('unhealthy');
    expect(bulkheadHealthScore({ acquisitions: 0, timeouts: 0, rejections: 0, errors: 0 })).toBe(100);
    // Rejections count as requests but not against health.
    expect(bulkheadHealthScore({ acquisitions: 90, timeouts: 0, rejections: 10, errors: 0 })).toBe(100);
  });

  test('a real bulkhead: 95 of 100 is healthy, one more timeout is degraded', async () => {
    const b = new Bulkhead({ maxConcurrent: 1 });
    const hold = await b.acquire();
    for (let i = 0; i < 5; i++) await rejection(b.acquire({ timeout: 1 }));
    hold();
    for (let i = 0; i < 94; i++) await b.run(() => undefined);
    expect(b.metrics()).toMatchObject({ acquisitions: 95, timeouts: 5, healthScore: 95, health: 'healthy' });
    const hold2 = await b.acquire();
    await rejection(b.acquire({ timeout: 1 }));
    hold2();
    expect(b.health().status).toBe('degraded');
  });

  test('a real bulkhead: 20 errors in 100 is degraded, 21 in 101 unhealthy', async () => {
    const b = new Bulkhead({ maxConcurrent: 4 });
    for (let i = 0; i < 80; i++) await b.run(() => undefined);
    for (let i = 0; i < 20; i++) await rejection(b.run(() => Promise.reject(new Error('x'))));
    expect(b.health()).toEqual({ score: 80, status: 'degraded' });
    await rejection(b.run(() => Promise.reject(new Error('x'))));
    expect(b.health().status).toBe('unhealthy');
    b.resetMetrics();
    expect(b.health()).toEqual({ score: 100, status: 'healthy' });
  });
});

describe('metrics', () => {
  test('utilisation, queue length and wait percentiles', async () => {
    const b = new Bulkhead({ maxConcurrent: 3 });
    const g = gate();
    const runs = Array.from({ length: 6 }, () => b.run(() => g.promise));
    await tick();
    let m = b.metrics();
    expect(m).toMatchObject({ inUse: 3, queued: 3, utilisation: 1, limit: 3, maxConcurrent: 3 });
    await sleep(20);
    g.open();
    await Promise.all(runs);
    m = b.metrics();
    // Three waited 0 ms, three about 20 ms: nearest-rank p50 is the third smallest.
    expect(m.waitSamples).toBe(6);
    expect(m.waitP50).toBe(0);
    expect(m.waitP99).toBeGreaterThanOrEqual(19);
    expect(m.waitMax).toBe(m.waitP99);
    expect(m.utilisation).toBe(0);
  });

  test('a long queue of synchronous tasks drains without recursion', async () => {
    const b = new Bulkhead({ maxConcurrent: 1 });
    const runs = Array.from({ length: 50_000 }, (_, i) => b.run(() => i));
    const values = await Promise.all(runs);
    expect(values[49_999]).toBe(49_999);
    expect(b.metrics()).toMatchObject({ acquisitions: 50_000, successes: 50_000, inUse: 0, queued: 0 });
  });

  test('the wait window is bounded', async () => {
    const b = new Bulkhead({ maxConcurrent: 1, waitSamples: 16 });
    for (let i = 0; i < 100; i++) await b.run(() => undefined);
    expect(b.metrics()).toMatchObject({ waitSamples: 16, acquisitions: 100 });
  });
});

describe('adaptive limit', () => {
  class Controller extends EventEmitter {
    level: BulkheadLevel = 'normal';
    set(to: BulkheadLevel): void {
      const from = this.level;
      this.level = to;
      this.emit('change', { from, to });
    }
  }

  test('follows the degradation level down and back up, admitting waiters as it rises', async () => {
    const source = new Controller();
    const b = new Bulkhead({ maxConcurrent: 8, adaptive: { source } });
    expect(b.limit).toBe(8);
    source.set('reduced');
    expect(b.limit).toBe(4);
    source.set('minimal');
    expect(b.limit).toBe(2);
    source.set('emergency');
    expect(b.limit).toBe(1);
    expect(b.level).toBe('emergency');

    const g = gate();
    const runs = Array.from({ length: 8 }, () => b.run(() => g.promise));
    await tick();
    expect(b.inUse).toBe(1);
    expect(b.queued).toBe(7);
    source.set('reduced');
    expect(b.inUse).toBe(4);
    source.set('normal');
    expect(b.inUse).toBe(8);
    expect(b.queued).toBe(0);

    // Lowered below what is held: the held permits drain, none is admitted until under the limit.
    source.set('minimal');
    expect(b.metrics().utilisation).toBe(4);
    const late = b.run(() => 'late');
    await tick();
    expect(b.queued).toBe(1);
    g.open();
    await Promise.all(runs);
    expect(await late).toBe('late');
    expect(b.inUse).toBe(0);

    b.close();
    expect(source.listenerCount('change')).toBe(0);
    source.set('normal');
    expect(b.limit).toBe(2);
  });

  test('starts at the source’s current level; custom factors and a floor of 0', async () => {
    const source = new Controller();
    source.level = 'minimal';
    const b = new Bulkhead({
      maxConcurrent: 10,
      adaptive: { source, factors: { reduced: 0.8, minimal: 0.3, emergency: 0 }, minConcurrent: 0 },
    });
    expect(b.limit).toBe(3);
    source.set('reduced');
    expect(b.limit).toBe(8);
    source.set('emergency');
    expect(b.limit).toBe(0);
    // At 0, requests wait (and time out) rather than run.
    expect(await rejection(b.acquire({ timeout: 5 }))).toBeInstanceOf(BulkheadTimeoutError);
    b.close();
  });

  test('setLevel drives it without a source; unknown levels are refused or ignored', () => {
    const b = new Bulkhead({ maxConcurrent: 4 });
    expect(DEFAULT_LEVEL_FACTORS).toEqual({ normal: 1, reduced: 0.5, minimal: 0.25, emergency: 0 });
    b.setLevel('reduced');
    expect(b.limit).toBe(2);
    b.setLevel('emergency');
    expect(b.limit).toBe(1);
    expect(() => b.setLevel('panic' as BulkheadLevel)).toThrow(TypeError);
    expect(b.level).toBe('emergency');

    const source = new Controller();
    const c = new Bulkhead({ maxConcurrent: 4, adaptive: { source } });
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    source.emit('change', { from: 'normal', to: 'panic' });
    expect(warn).toHaveBeenCalledTimes(1);
    warn.mockRestore();
    expect(c.limit).toBe(4);
    c.close();
  });
});

describe('options', () => {
  test('bad options are refused with Node-style errors', () => {
    const cases: [unknown, string][] = [
      [undefined, 'ERR_INVALID_ARG_TYPE'],
      [{}, 'ERR_INVALID_ARG_TYPE'],
      [{ maxConcurrent: 0 }, 'ERR_OUT_OF_RANGE'],
      [{ maxConcurrent: 1.5 }, 'ERR_OUT_OF_RANGE'],
      [{ maxConcurrent: '2' }, 'ERR_INVALID_ARG_TYPE'],
      [{ maxConcurrent: 1, maxQueue: -1 }, 'ERR_OUT_OF_RANGE'],
      [{ maxConcurrent: 1, waitTimeout: -1 }, 'ERR_OUT_OF_RANGE'],
      [{ maxConcurrent: 1, overflow: 'drop-newest' }, 'ERR_INVALID_ARG_VALUE'],
      [{ maxConcurrent: 1, adaptive: { factors: { normal: 2 } } }, 'ERR_OUT_OF_RANGE'],
      [{ maxConcurrent: 1, adaptive: { factors: { severe: 0.5 } } }, 'ERR_INVALID_ARG_VALUE'],
      [{ maxConcurrent: 1, adaptive: { minConcurrent: 2 } }, 'ERR_OUT_OF_RANGE'],
      [{ maxConcurrent: 1, adaptive: { source: { level: 'normal' } } }, 'ERR_INVALID_ARG_TYPE'],
      [{ maxConcurrent: 1, adaptive: { source: { level: 'x', on() {} } } }, 'ERR_INVALID_ARG_VALUE'],
      [{ maxConcurrent: 1, waitSamples: 0 }, 'ERR_OUT_OF_RANGE'],
    ];
    for (const [options, code] of cases) {
      let err: unknown;
      try {
        new Bulkhead(options as never);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(options)).toMatchObject({ code });
    }
    const b = new Bulkhead({ maxConcurrent: 1 });
    expect(() => b.acquire({ timeout: -1 })).toThrow(RangeError);
    expect(() => b.acquire({ signal: {} as AbortSignal })).toThrow(TypeError);
    expect(b.inUse).toBe(0);
  });
});
