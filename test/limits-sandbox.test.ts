// Sandbox settings of runWithLimits: the idle timeout (its boundary on
// explicit clock values, and real runs that idle), IO rates and open files
// through the task's ctx.io, and validation before any worker starts.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ACTIVITY_SLOT, TimeoutError, activeRuns, idleBreach, reportOf, resolveSandbox, runWithLimits, taskSandbox } from '../src/index';

/** The compiled sandbox module, which tasks load inside their worker. */
const LIB = path.resolve(__dirname, '..', 'dist', 'limits', 'sandbox.js');
type Lib = typeof import('../src/limits/sandbox');
import { codeOf } from './helpers';

describe('idleBreach', () => {
  test('idle exactly idleTimeout is alive; one ms more is an idle timeout', () => {
    const s = resolveSandbox({ idleTimeout: 100 });
    const view = new Float64Array(16);
    // before the first stamp, the task's start counts
    expect(idleBreach(s, view, 1000, 1100)).toBeNull();
    expect(idleBreach(s, view, 1000, 1101)).toMatchObject({ code: 'ERR_TIMEOUT', operation: 'idle', limit: 100, used: 101 });
    view[ACTIVITY_SLOT] = 1500;
    expect(idleBreach(s, view, 1000, 1600)).toBeNull();
    const e = idleBreach(s, view, 1000, 1601)!;
    expect(e).toBeInstanceOf(TimeoutError);
    expect(e.message).toMatch(/^Idle timeout/);
    expect(idleBreach(resolveSandbox({}), view, 0, 1e12)).toBeNull();
    expect(idleBreach(null, view, 0, 1e12)).toBeNull();
  });

  test('bad sandbox options are refused before any worker starts', () => {
    const before = activeRuns();
    expect(codeOf(() => runWithLimits(() => 1, {}, { sandbox: { idleTimeout: 0 } }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => runWithLimits(() => 1, {}, { sandbox: { idle: 5 } as never }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => runWithLimits(() => 1, {}, { sandbox: { ioWriteRate: { bytes: -1, windowMs: 10 } } }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => runWithLimits(() => 1, {}, { sandbox: { openFiles: 1.5 } }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => runWithLimits(() => 1, {}, { sandbox: 5 as never }))).toBe('ERR_INVALID_ARG_TYPE');
    expect(activeRuns()).toBe(before);
  });
});

describe('runWithLimits with a sandbox', () => {
  test('a task that waits with no activity ends with an idle timeout naming the limit', async () => {
    const err = await runWithLimits(
      async (_input: unknown, ctx) => {
        ctx.io.chargeWrite(1);
        await new Promise((r) => setTimeout(r, 60_000));
      },
      { timeout: 120_000 },
      { sandbox: { idleTimeout: 150 } },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toMatchObject({ code: 'ERR_TIMEOUT', operation: 'idle', limit: 150 });
    expect((err as TimeoutError).used).toBeGreaterThan(150);
    expect(reportOf(err)!.exitReason).toBe('timeout');
  });

  test('a synchronous loop with no activity is ended from outside', async () => {
    const err = await runWithLimits(
      () => {
        for (;;);
      },
      { timeout: 120_000 },
      { sandbox: { idleTimeout: 150 } },
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_TIMEOUT', operation: 'idle' });
  });

  test('a task that finishes within its idle limit completes', async () => {
    const r = await runWithLimits((n: number) => n * 2, {}, { input: 21, sandbox: { idleTimeout: 60_000 } });
    expect(r.value).toBe(42);
  });

  test('the write rate through ctx.io is enforced; the refused write is not counted', async () => {
    const err = await runWithLimits(
      (_input: unknown, ctx) => {
        ctx.io.chargeWrite(100);
        ctx.io.chargeWrite(1);
      },
      {},
      { sandbox: { ioWriteRate: { bytes: 100, windowMs: 600_000 } } },
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_IO_RATE', limit: 100, used: 100, requested: 1 });
    const report = reportOf(err)!;
    expect(report.exitReason).toBe('io');
    expect(report.ioWritten).toBe(100);
  });

  test('open files through ctx.io are limited', async () => {
    const dir = os.tmpdir();
    const err = await runWithLimits(
      (d: string, ctx) => {
        const p = require('node:path') as typeof path;
        const a = ctx.io.openSync(p.join(d, `rg-open-a-${process.pid}`), 'w');
        try {
          ctx.io.openSync(p.join(d, `rg-open-b-${process.pid}`), 'w');
        } finally {
          ctx.io.closeSync(a);
        }
      },
      {},
      { input: dir, sandbox: { openFiles: 1 } },
    ).catch((e: unknown) => e);
    for (const n of ['a', 'b']) fs.rmSync(path.join(dir, `rg-open-${n}-${process.pid}`), { force: true });
    expect(err).toMatchObject({ code: 'ERR_OPEN_FILES_LIMIT', limit: 1, used: 1 });
    expect(reportOf(err)!.exitReason).toBe('io');
  });
});

describe('taskSandbox() meters inside a task', () => {
  test('outside a task it is refused', () => {
    expect(codeOf(() => taskSandbox())).toBe('ERR_NOT_IN_TASK');
    expect(codeOf(() => resolveSandbox({ memoryGrowthRate: { bytes: 1, pages: 1, windowMs: 10 } }))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => resolveSandbox({ network: { sockets: 1 } as never }))).toBe('ERR_OUT_OF_RANGE');
  });

  test('memory growth per window ends the run with ERR_MEMORY_GROWTH_RATE', async () => {
    const err = await runWithLimits(
      (lib: string) => {
        const m = (require(lib) as Lib).taskSandbox().memory!;
        m.grow(600);
        m.grow(500);
      },
      {},
      { input: LIB, sandbox: { memoryGrowthRate: { bytes: 1000, windowMs: 600_000 } } },
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_MEMORY_GROWTH_RATE', limit: 1000, used: 600, requested: 500, unit: 'bytes' });
    expect(reportOf(err)!.exitReason).toBe('memory-growth');
  });

  test('a second worker above the threads limit is refused', async () => {
    const err = await runWithLimits(
      async (lib: string) => {
        const t = (require(lib) as Lib).taskSandbox().threads;
        const w = t.startWorker('setTimeout(() => {}, 100)', { eval: true } as never);
        try {
          t.startWorker('0', { eval: true } as never);
        } finally {
          await new Promise((r) => w.once('exit', r));
        }
      },
      {},
      { input: LIB, sandbox: { threads: 1 } },
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_THREADS_LIMIT', limit: 1, used: 1, requested: 1 });
    expect(reportOf(err)!.exitReason).toBe('threads');
  });

  test('bytes received through the network meter are limited (loopback)', async () => {
    const server = http.createServer((_req, res) => res.end('y'.repeat(100)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const err = await runWithLimits(
        async (input: { lib: string; url: string }) => {
          const net = (require(input.lib) as Lib).taskSandbox().network;
          await (await net.fetch(input.url)).text();
          await net.fetch(input.url);
        },
        {},
        { input: { lib: LIB, url }, sandbox: { network: { bytesReceived: 150 } } },
      ).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_NETWORK_BYTES_LIMIT', limit: 150, used: 100, requested: 100 });
      expect(reportOf(err)!.exitReason).toBe('network');
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
