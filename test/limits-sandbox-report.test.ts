// The sandbox limits of runWithLimits across the worker boundary: the errors
// their meters throw inside the task come back as instances of their classes
// (with their fields and the worker's stack), and the usage report carries
// the figures of each meter, also when the run ended by a breach.
// Needs dist/ (npm run build:ts): tasks load the compiled sandbox module.
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import {
  CountLimitError,
  FuelMeteringError,
  OverReleaseError,
  RateLimitError,
  ResourceError,
  TaskAbortedError,
  reportOf,
  runWithLimits,
} from '../src/index';

const LIB = path.resolve(__dirname, '..', 'dist', 'limits', 'sandbox.js');
type Lib = typeof import('../src/limits/sandbox');

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the run to fail');
}

describe('sandbox errors are rebuilt as their classes', () => {
  test('memory growth rate: RateLimitError with its fields and the task stack', async () => {
    const err = await failure(
      runWithLimits(
        (lib: string) => {
          const m = (require(lib) as Lib).taskSandbox().memory!;
          m.grow(3);
          m.grow(2);
        },
        {},
        { input: LIB, sandbox: { memoryGrowthRate: { pages: 4, windowMs: 600_000 } } },
      ),
    );
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err).toBeInstanceOf(ResourceError);
    expect(err).toMatchObject({ code: 'ERR_MEMORY_GROWTH_RATE', resource: 'memory growth', limit: 4, windowMs: 600_000, used: 3, requested: 2, unit: 'pages' });
    expect(err.message).toMatch(/memory growth rate limit exceeded: 2 more pages refused/);
    expect(err.stack).toContain('grow');
  });

  test('IO write rate: RateLimitError', async () => {
    const err = await failure(
      runWithLimits(
        (_i: unknown, ctx) => {
          ctx.io.chargeWrite(10);
          ctx.io.chargeWrite(1);
        },
        {},
        { sandbox: { ioWriteRate: { bytes: 10, windowMs: 600_000 } } },
      ),
    );
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err).toMatchObject({ code: 'ERR_IO_RATE', limit: 10, used: 10, requested: 1 });
  });

  test('threads: CountLimitError', async () => {
    const err = await failure(
      runWithLimits(
        async (lib: string) => {
          const t = (require(lib) as Lib).taskSandbox().threads;
          const w = t.startWorker('setTimeout(() => {}, 50)', { eval: true } as never);
          try {
            t.startWorker('0', { eval: true } as never);
          } finally {
            await new Promise((r) => w.once('exit', r));
          }
        },
        {},
        { input: LIB, sandbox: { threads: 1 } },
      ),
    );
    expect(err).toBeInstanceOf(CountLimitError);
    expect(err).toMatchObject({ code: 'ERR_THREADS_LIMIT', resource: 'threads', limit: 1, used: 1, requested: 1 });
  });

  test('open files over-released: OverReleaseError', async () => {
    const err = await failure(runWithLimits((_i: unknown, ctx) => ctx.io.releaseFiles(1), {}, { sandbox: { openFiles: 2 } }));
    expect(err).toBeInstanceOf(OverReleaseError);
    expect(err).toMatchObject({ code: 'ERR_OVER_RELEASE', resource: 'open files', held: 0, requested: 1 });
    expect(reportOf(err)!.exitReason).toBe('error');
  });

  test('fuel added without metering: FuelMeteringError', async () => {
    const err = await failure(runWithLimits((_i: unknown, ctx) => ctx.fuel.add(5), {}));
    expect(err).toBeInstanceOf(FuelMeteringError);
    expect(err).toMatchObject({ code: 'ERR_FUEL_METERING_OFF', operation: 'add' });
  });

  test('a sandbox error thrown from a callback (uncaught in the worker) is rebuilt too', async () => {
    const err = await failure(
      runWithLimits(
        (lib: string) =>
          new Promise<void>(() => {
            setImmediate(() => (require(lib) as Lib).taskSandbox().memory!.grow(2000));
          }),
        { timeout: 60_000 },
        { input: LIB, sandbox: { memoryGrowthRate: { bytes: 1000, windowMs: 600_000 } } },
      ),
    );
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err).toMatchObject({ code: 'ERR_MEMORY_GROWTH_RATE', limit: 1000, used: 0, requested: 2000, unit: 'bytes' });
    expect(reportOf(err)!.exitReason).toBe('memory-growth');
  });
});

describe('the usage report carries the sandbox figures', () => {
  test('a run with no sandbox use reports zeros and no sandbox limits', async () => {
    const { report } = await runWithLimits(() => 1, {});
    expect(report.sandbox).toEqual({
      limits: null,
      memoryGrowth: 0,
      memoryGrowthUnit: null,
      threadsStarted: 0,
      threadsPeak: 0,
      openFilesPeak: 0,
      networkRequests: 0,
      networkBytesSent: 0,
      networkBytesReceived: 0,
      networkConnectionsPeak: 0,
      lastActivity: null,
    });
  });

  test('every meter that was used reports what it granted', async () => {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('z'.repeat(40)));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-sandbox-report-'));
    try {
      const { report } = await runWithLimits(
        async (input: { lib: string; url: string; dir: string }, ctx) => {
          const p = require('node:path') as typeof path;
          const s = (require(input.lib) as Lib).taskSandbox();
          s.memory!.grow(2);
          s.memory!.grow(1);
          const workers = [0, 1].map(() => s.threads.startWorker('0', { eval: true } as never));
          await Promise.all(workers.map((w) => new Promise((r) => w.once('exit', r))));
          const third = s.threads.startWorker('0', { eval: true } as never);
          await new Promise((r) => third.once('exit', r));
          await Promise.all([s.network.fetch(input.url, { method: 'POST', body: 'abc' }), s.network.fetch(input.url)].map(async (r) => (await r).text()));
          const a = ctx.io.openSync(p.join(input.dir, 'a'), 'w');
          const b = ctx.io.openSync(p.join(input.dir, 'b'), 'w');
          ctx.io.closeSync(a);
          ctx.io.closeSync(b);
        },
        {},
        {
          input: { lib: LIB, url, dir },
          sandbox: { memoryGrowthRate: { pages: 10, windowMs: 1000 }, threads: 4, openFiles: 3, network: { connections: 5, bytesReceived: 1000 } },
        },
      );
      expect(report.sandbox).toMatchObject({
        memoryGrowth: 3,
        memoryGrowthUnit: 'pages',
        threadsStarted: 3,
        threadsPeak: 2,
        openFilesPeak: 2,
        networkRequests: 2,
        networkBytesSent: 3,
        networkBytesReceived: 80,
      });
      expect(report.sandbox.networkConnectionsPeak).toBeGreaterThanOrEqual(1);
      expect(report.sandbox.networkConnectionsPeak).toBeLessThanOrEqual(2);
      expect(report.sandbox.limits).toMatchObject({ threads: 4, openFiles: 3, memoryGrowthRate: { limit: 10, unit: 'pages', windowMs: 1000 } });
      expect(report.sandbox.lastActivity).toBeGreaterThanOrEqual(0);
      expect(report.sandbox.lastActivity).toBeLessThanOrEqual(report.wallTime);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('meter use after the task has ended is not counted', async () => {
    // The task returns at once and leaves a loop behind that keeps growing;
    // the figures are taken when the task ends, before any of it runs
    // (setImmediate callbacks come after the promise jobs that end the task).
    const { value, report } = await runWithLimits(
      (lib: string) => {
        const m = (require(lib) as Lib).taskSandbox().memory!;
        m.grow(5);
        const again = (): void => {
          m.grow(1);
          setImmediate(again);
        };
        setImmediate(again);
        return 1;
      },
      {},
      { input: LIB, sandbox: { memoryGrowthRate: { bytes: 1e9, windowMs: 1000 } } },
    );
    expect(value).toBe(1);
    expect(report.sandbox.memoryGrowth).toBe(5);
    expect(report.sandbox.lastActivity).toBeLessThanOrEqual(report.wallTime);
  });

  test('an open that failed counts neither in the open files nor in their peak', async () => {
    const { value, report } = await runWithLimits(
      (_i: unknown, ctx) => {
        let code = '';
        try {
          ctx.io.openSync('/nonexistent-dir-of-rg/x', 'r');
        } catch (err) {
          code = (err as { code: string }).code;
        }
        return { code, open: ctx.io.openFiles, peak: ctx.io.peakOpenFiles };
      },
      {},
      { sandbox: { openFiles: 3 } },
    );
    expect(value).toEqual({ code: 'ENOENT', open: 0, peak: 0 });
    expect(report.sandbox.openFilesPeak).toBe(0);
  });

  test('figures published before the run ends the worker from outside are in the report', async () => {
    // The task grows, leaves a marker file, then waits; the test aborts the
    // run once the marker is there, so the order does not depend on timing.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-sandbox-abort-'));
    const marker = path.join(dir, 'grown');
    const controller = new AbortController();
    const run = failure(
      runWithLimits(
        (input: { lib: string; marker: string }) => {
          const m = (require(input.lib) as Lib).taskSandbox().memory!;
          m.grow(700);
          (require('node:fs') as typeof fs).writeFileSync(input.marker, '');
          return new Promise(() => setInterval(() => {}, 1000));
        },
        {},
        { input: { lib: LIB, marker }, signal: controller.signal, sandbox: { idleTimeout: 600_000, memoryGrowthRate: { bytes: 1000, windowMs: 600_000 } } },
      ),
    );
    let settled = false;
    void run.then(() => (settled = true));
    try {
      // Stops waiting if the run ends first (the task failed): the assertions
      // below then show its error.
      while (!settled && !fs.existsSync(marker)) await new Promise((r) => setTimeout(r, 10));
      controller.abort();
      const err = await run;
      expect(err).toBeInstanceOf(TaskAbortedError);
      const report = reportOf(err)!;
      expect(report.exitReason).toBe('aborted');
      expect(report.sandbox).toMatchObject({ memoryGrowth: 700, memoryGrowthUnit: 'bytes' });
      expect(report.sandbox.limits).toMatchObject({ idleTimeout: 600_000 });
      expect(report.sandbox.lastActivity).toBeGreaterThanOrEqual(0);
    } finally {
      controller.abort();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
