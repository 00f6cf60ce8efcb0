// runWithLimits in real worker threads: every limit trips (timeout, fuel at
// exactly its budget, heap → MemoryLimitError rather than a worker crash,
// CPU, RSS growth, IO, byte budget), every outcome carries a complete usage
// report, errors cross the thread boundary typed, and monitoring reports
// usage and alerts while the task runs. Needs dist/ (npm run build:ts): the
// task worker runs as compiled JavaScript.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { BudgetExceededError, MemoryLimitError } from '../src/errors';
import { Budget } from '../src/budget';
import {
  CpuTimeError,
  FuelExhaustedError,
  IoLimitError,
  TaskAbortedError,
  TaskCrashedError,
  TimeoutError,
  activeRuns,
  reportOf,
  runWithLimits,
  taskWorkerPath,
  type Alert,
  type Usage,
  type UsageReport,
} from '../src/limits/index';

const MiB = 1024 * 1024;
const fixture = path.join(__dirname, 'fixtures', 'limits-tasks.cjs');
const task = (name: string) => ({ module: fixture, export: name });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-limits-'));
const linux = process.platform === 'linux';

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The rejection of `p` (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error & { report: UsageReport }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { report: UsageReport };
  }
  throw new Error('expected the run to fail');
}

const REPORT_NUMBERS = [
  'wallTime',
  'startupTime',
  'totalTime',
  'cpuTime',
  'peakRssDelta',
  'rssDelta',
  'peakHeap',
  'heapSizeLimit',
  'fuelUsed',
  'ioWritten',
  'ioRead',
  'budgetReserved',
  'budgetPeak',
  'checks',
] as const;

/** Every field present and sane, whatever the outcome. */
function expectCompleteReport(r: UsageReport | undefined, reason: UsageReport['exitReason']): UsageReport {
  expect(r).toBeDefined();
  const report = r!;
  expect(report.exitReason).toBe(reason);
  expect(report.ok).toBe(reason === 'completed');
  for (const k of REPORT_NUMBERS) {
    expect(Number.isFinite(report[k]), `${k} = ${report[k]}`).toBe(true);
  }
  for (const k of ['wallTime', 'startupTime', 'totalTime', 'cpuTime', 'peakRssDelta', 'peakHeap', 'fuelUsed'] as const) {
    expect(report[k], k).toBeGreaterThanOrEqual(0);
  }
  expect(report.totalTime).toBeGreaterThanOrEqual(report.startupTime + report.wallTime - 1);
  expect(report.peakRssDelta).toBeGreaterThanOrEqual(Math.max(0, report.rssDelta));
  expect(report.cpuSource).toBe(linux ? 'thread' : 'event-loop');
  expect(Array.isArray(report.alerts)).toBe(true);
  expect(report.limits).toBeTypeOf('object');
  if (report.ok) expect(report.error).toBeNull();
  else expect(report.error).toMatchObject({ name: expect.any(String), message: expect.any(String) });
  return report;
}

describe('the task worker script', () => {
  test('resolves to compiled JavaScript (dist/ when running from src/)', () => {
    const p = taskWorkerPath();
    expect(p.endsWith(path.join('limits', 'worker.js'))).toBe(true);
    expect(fs.existsSync(p)).toBe(true);
  });
});

describe('each limit trips in a real worker', () => {
  test('a synchronous infinite loop is stopped by the timeout', async () => {
    const err = await rejection(runWithLimits(task('spin'), { timeout: 150 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toMatchObject({ code: 'ERR_TIMEOUT', limit: 150, phase: 'task' });
    expect((err as TimeoutError).used).toBeGreaterThanOrEqual(150);
    const r = expectCompleteReport(err.report, 'timeout');
    expect(r.wallTime).toBeGreaterThanOrEqual(150);
    expect(r.cpuTime).toBeGreaterThan(0);
    expect(r.limits.timeout).toBe(150);
    expect(activeRuns()).toBe(0);
  });

  test('a loop spending fuel stops at exactly the budget: the last unit succeeds, the next throws', async () => {
    const limit = 123_457;
    const err = await rejection(runWithLimits(task('burnFuel'), { fuel: limit }));
    expect(err).toBeInstanceOf(FuelExhaustedError);
    expect(err).toMatchObject({ code: 'ERR_FUEL_EXHAUSTED', limit, used: limit, requested: 1 });
    const r = expectCompleteReport(err.report, 'fuel');
    expect(r.fuelUsed).toBe(limit);
    // The worker's stack says where in the task the fuel ran out.
    expect(err.stack).toContain('limits-tasks.cjs');
  });

  test('spending exactly the budget completes, with fuelUsed equal to the budget', async () => {
    const { value, report } = await runWithLimits(task('spendFuel'), { fuel: 5000 }, { input: { units: 5000 } });
    expect(value).toBe(5000);
    expectCompleteReport(report, 'completed');
    expect(report.fuelUsed).toBe(5000);
  });

  test('catching FuelExhaustedError does not escape the limit', async () => {
    const err = await rejection(runWithLimits(task('swallowFuel'), { fuel: 1000 }));
    expect(err).toBeInstanceOf(FuelExhaustedError);
    expect(expectCompleteReport(err.report, 'fuel').fuelUsed).toBe(1000);
  });

  test('a task growing its heap past the limit ends with MemoryLimitError, not a worker crash', async () => {
    const err = await rejection(runWithLimits(task('growHeap'), { heap: '16MiB', timeout: 30_000 }));
    expect(err).toBeInstanceOf(MemoryLimitError);
    expect(err).toMatchObject({ code: 'ERR_MEMORY_LIMIT', kind: 'heap', limit: 16 * MiB });
    expect((err as unknown as MemoryLimitError).current).toBeGreaterThanOrEqual(16 * MiB);
    // ERR_WORKER_HEAP_RUNAWAY: Node 24/26 left the worker stuck at its limit (see limits-heap.test.ts).
    expect(['ERR_WORKER_OUT_OF_MEMORY', 'ERR_WORKER_HEAP_RUNAWAY']).toContain((err.cause as { code?: string }).code);
    const r = expectCompleteReport(err.report, 'heap');
    expect(r.peakHeap).toBeGreaterThanOrEqual(16 * MiB);
    expect(r.heapSizeLimit).toBeGreaterThanOrEqual(16 * MiB);
    expect(r.cpuTime).toBeGreaterThan(0);
    expect(activeRuns()).toBe(0);
  });

  test('CPU time: a busy loop is stopped at its CPU limit', async () => {
    const err = await rejection(runWithLimits(task('spin'), { cpuTime: 80, timeout: 20_000 }));
    expect(err).toBeInstanceOf(CpuTimeError);
    expect(err).toMatchObject({ code: 'ERR_CPU_TIME', limit: 80, source: linux ? 'thread' : 'event-loop' });
    expect((err as CpuTimeError).used).toBeGreaterThan(80);
    const r = expectCompleteReport(err.report, 'cpu');
    expect(r.cpuTime).toBeGreaterThan(80);
  });

  test.runIf(linux)('CPU time is the thread’s own: a task blocked for 300 ms uses almost none', async () => {
    const { value, report } = await runWithLimits(task('sleep'), { cpuTime: 100 }, { input: { ms: 300 } });
    expect(value).toBe('slept');
    expect(report.wallTime).toBeGreaterThanOrEqual(290);
    expect(report.cpuTime).toBeLessThan(100);
  });

  test('RSS growth past the limit ends with MemoryLimitError (kind rss)', async () => {
    const limit = 48 * MiB;
    const err = await rejection(runWithLimits(task('growRss'), { rssGrowth: limit, timeout: 30_000 }));
    expect(err).toBeInstanceOf(MemoryLimitError);
    expect(err).toMatchObject({ code: 'ERR_MEMORY_LIMIT', kind: 'rss', limit });
    expect((err as unknown as MemoryLimitError).current).toBeGreaterThan(limit);
    const r = expectCompleteReport(err.report, 'rss');
    expect(r.peakRssDelta).toBeGreaterThan(limit);
  });

  test('IO: writes through the meter stop at the write budget, with nothing written past it', async () => {
    const file = path.join(tmp, 'io-write.bin');
    const err = await rejection(
      runWithLimits(task('write'), { ioWrite: 10_000 }, { input: { file, chunks: 20, size: 1000 } }),
    );
    expect(err).toBeInstanceOf(IoLimitError);
    expect(err).toMatchObject({ code: 'ERR_IO_LIMIT', direction: 'write', limit: 10_000, used: 10_000, requested: 1000 });
    expect(fs.statSync(file).size).toBe(10_000);
    expect(expectCompleteReport(err.report, 'io').ioWritten).toBe(10_000);
  });

  test('IO: a metered write stream fails with IoLimitError at the budget', async () => {
    const file = path.join(tmp, 'io-stream.bin');
    const err = await rejection(
      runWithLimits(task('stream'), { ioWrite: 64 * 1024 }, { input: { file, chunks: 100, size: 1024 } }),
    );
    expect(err).toBeInstanceOf(IoLimitError);
    expect(expectCompleteReport(err.report, 'io').ioWritten).toBe(64 * 1024);
    expect(fs.statSync(file).size).toBeLessThanOrEqual(64 * 1024);
  });

  test('IO: a read larger than the read budget is refused before reading', async () => {
    const file = path.join(tmp, 'io-read.bin');
    fs.writeFileSync(file, Buffer.alloc(5000));
    const err = await rejection(runWithLimits(task('read'), { ioRead: 4999 }, { input: { file } }));
    expect(err).toMatchObject({ code: 'ERR_IO_LIMIT', direction: 'read', limit: 4999, used: 0, requested: 5000 });
    const ok = await runWithLimits(task('read'), { ioRead: 5000 }, { input: { file } });
    expect(ok.value).toBe(5000);
    expect(ok.report.ioRead).toBe(5000);
  });

  test('byte budget: bytes reserved through ctx.budget are reported and returned when the worker is stopped', async () => {
    const name = `limits-budget-${process.pid}`;
    const budget = Budget.open(name, 10 * MiB);
    const err = await rejection(
      runWithLimits(task('holdBudget'), { timeout: 150 }, { input: { bytes: 3 * MiB, spin: true }, budget: name }),
    );
    expect(err).toBeInstanceOf(TimeoutError);
    const r = expectCompleteReport(err.report, 'timeout');
    expect(r.budgetReserved).toBe(3 * MiB);
    expect(r.budgetPeak).toBe(3 * MiB);
    expect(budget.used).toBe(0);
    const ok = await runWithLimits(task('holdBudget'), {}, { input: { bytes: MiB, release: true }, budget: { name, limit: 10 * MiB } });
    expect(ok.value).toEqual({ held: 0, reserved: MiB });
    expect(ok.report.budgetReserved).toBe(MiB);
    expect(budget.used).toBe(0);
    budget.close();
  });

  test('byte budget: a refused reservation ends the run with BudgetExceededError', async () => {
    const name = `limits-over-${process.pid}`;
    // Held open here so the budget outlives the worker that also opens it.
    const b = Budget.open(name, 1000);
    const err = await rejection(runWithLimits(task('overBudget'), {}, { input: { bytes: 600 }, budget: { name, limit: 1000 } }));
    expect(err).toBeInstanceOf(BudgetExceededError);
    expect(err).toMatchObject({ code: 'ERR_BUDGET_EXCEEDED', budget: name, requested: 600, limit: 1000, current: 600 });
    const r = expectCompleteReport(err.report, 'budget');
    expect(r.budgetReserved).toBe(600);
    expect(b.used).toBe(0);
    expect(b.stats().failures).toBe(1);
    b.close();
  });

  test('a task that never starts is bounded by the startup timeout', async () => {
    // A module whose top level never returns: the task never starts.
    const file = path.join(tmp, 'hangs-on-load.cjs');
    fs.writeFileSync(file, 'for (;;);\nmodule.exports = () => 1;\n');
    const err = await rejection(runWithLimits(file, { timeout: 50 }, { startupTimeout: 200 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toMatchObject({ phase: 'startup', limit: 200 });
    const r = expectCompleteReport(err.report, 'timeout');
    expect(r.wallTime).toBe(0);
    expect(r.startupTime).toBeGreaterThanOrEqual(200);
  });
});

describe('tasks and outcomes', () => {
  test('a module export, an ES module default and named export, a function, and source text', async () => {
    const a = await runWithLimits(task('double'), {}, { input: 21 });
    expect(a.value).toBe(42);
    expectCompleteReport(a.report, 'completed');
    const esm = path.join(__dirname, 'fixtures', 'limits-task.mjs');
    expect((await runWithLimits(esm, {}, { input: 1 })).value).toBe(2);
    const named = await runWithLimits({ module: pathToFileURL(esm), export: 'greet' }, {}, { input: 'you' });
    expect(named.value).toBe('hello you');
    expect(named.report.fuelUsed).toBe(3);
    const fn = await runWithLimits((x: number[]) => x.reduce((s, v) => s + v, 0), 'lightweight', { input: [1, 2, 3] });
    expect(fn.value).toBe(6);
    expect(fn.report.limits.profile).toBe('lightweight');
    const src = await runWithLimits({ source: '(input) => require("node:path").basename(input)' }, {}, { input: '/a/b.txt' });
    expect(src.value).toBe('b.txt');
  });

  test('the context holds fuel, io, budget and the limits', async () => {
    const { value } = await runWithLimits(task('context'), { profile: 'standard', fuel: 77 });
    expect(value).toMatchObject({
      keys: ['budget', 'fuel', 'io', 'limits'],
      fuelLimit: 77,
      ioWriteLimit: 100 * MiB,
      budget: null,
      limits: { profile: 'standard', fuel: 77, heap: 128 * MiB },
    });
  });

  test("the task's own error arrives with its class, message, code, fields and stack, and the report", async () => {
    const err = await rejection(runWithLimits(task('throwOwn'), {}));
    expect(err).toBeInstanceOf(RangeError);
    expect(err).toMatchObject({ message: 'task failed on purpose', code: 'ERR_TASK_OWN', detail: 42 });
    expect(err.stack).toContain('limits-tasks.cjs');
    expect(reportOf(err)).toBe(err.report);
    expect(expectCompleteReport(err.report, 'error').error).toEqual({
      name: 'RangeError',
      code: 'ERR_TASK_OWN',
      message: 'task failed on purpose',
    });
    expect(Object.keys(err)).not.toContain('report');
  });

  test('an asynchronous rejection and an error thrown in a callback of the task', async () => {
    const a = await rejection(runWithLimits(task('rejectLater'), {}));
    expect(a.message).toBe('later');
    expectCompleteReport(a.report, 'error');
    const b = await rejection(runWithLimits(task('throwInTimer'), {}));
    expect(b).toBeInstanceOf(TypeError);
    expect(b.message).toBe('thrown in a timer');
    expectCompleteReport(b.report, 'error');
    const c = await rejection(runWithLimits(task('throwStringInTimer'), {}));
    expect(c).toBeInstanceOf(Error);
    expect(c.message).toContain('just a string');
    expectCompleteReport(c.report, 'error');
  });

  test('process.exit() in the task and a promise that never settles are crashes with the exit code', async () => {
    const a = await rejection(runWithLimits(task('exit'), {}, { input: { code: 3 } }));
    expect(a).toBeInstanceOf(TaskCrashedError);
    expect(a).toMatchObject({ code: 'ERR_TASK_CRASHED', exitCode: 3 });
    expectCompleteReport(a.report, 'crashed');
    const b = await rejection(runWithLimits(task('neverSettles'), {}));
    expect(b).toMatchObject({ code: 'ERR_TASK_CRASHED', exitCode: 0 });
  });

  test('handles a task leaves behind do not outlive the run', async () => {
    const before = process.getActiveResourcesInfo().length;
    const { value } = await runWithLimits(task('leaveHandles'), {});
    expect(value).toBe('done');
    expect(activeRuns()).toBe(0);
    expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(before);
  });

  test('a result that cannot be cloned fails the run with DataCloneError', async () => {
    const err = await rejection(runWithLimits(task('uncloneable'), {}));
    expect(err.name).toBe('DataCloneError');
    expectCompleteReport(err.report, 'error');
  });

  test('an AbortSignal stops the run; an aborted signal stops it before a worker starts', async () => {
    const ac = new AbortController();
    const onUsage = (u: Usage) => {
      if (u.elapsed >= 50) ac.abort(new Error('enough'));
    };
    const err = await rejection(runWithLimits(task('spin'), {}, { signal: ac.signal, onUsage, usageInterval: 5 }));
    expect(err).toBeInstanceOf(TaskAbortedError);
    expect((err.cause as Error).message).toBe('enough');
    expect(expectCompleteReport(err.report, 'aborted').wallTime).toBeGreaterThanOrEqual(50);
    const pre = await rejection(runWithLimits(task('spin'), {}, { signal: AbortSignal.abort() }));
    expect(pre).toBeInstanceOf(TaskAbortedError);
    expect(pre.report).toMatchObject({ exitReason: 'aborted', wallTime: 0, checks: 0 });
  });

  test('a missing export or a module that does not load rejects with the reason', async () => {
    const a = await rejection(runWithLimits(task('notAFunction'), {}));
    expect(a).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(a.message).toContain('notAFunction');
    expectCompleteReport(a.report, 'error');
    const b = await rejection(runWithLimits(path.join(tmp, 'missing.cjs'), {}));
    expect(b).toMatchObject({ code: 'MODULE_NOT_FOUND' });
    expectCompleteReport(b.report, 'error');
  });

  test('bad arguments throw synchronously, before any worker starts', () => {
    const cases: [() => unknown, string][] = [
      [() => runWithLimits('relative/task.cjs'), 'ERR_INVALID_ARG_VALUE'],
      [() => runWithLimits(new URL('https://example.com/task.js')), 'ERR_INVALID_ARG_VALUE'],
      [() => runWithLimits(42 as never), 'ERR_INVALID_ARG_TYPE'],
      [() => runWithLimits({ module: 42 } as never), 'ERR_INVALID_ARG_TYPE'],
      [() => runWithLimits({ source: '' }), 'ERR_INVALID_ARG_VALUE'],
      [() => runWithLimits(Math.max as never), 'ERR_INVALID_ARG_VALUE'],
      // Methods written in shorthand have source that is not an expression.
      [() => runWithLimits({ double(n: number) { return n * 2; } }.double as never), 'ERR_INVALID_ARG_VALUE'],
      [() => runWithLimits(class { static run() { return 1; } }.run as never), 'ERR_INVALID_ARG_VALUE'],
      [() => runWithLimits({ source: 'return 1' }), 'ERR_INVALID_ARG_VALUE'],
      [() => runWithLimits(task('double'), { timeout: -1 }), 'ERR_OUT_OF_RANGE'],
      [() => runWithLimits(task('double'), { heap: '1kB' }), 'ERR_OUT_OF_RANGE'],
      [() => runWithLimits(task('double'), {}, { onUsage: 1 as never }), 'ERR_INVALID_ARG_TYPE'],
      [() => runWithLimits(task('double'), {}, { checkInterval: 0 }), 'ERR_OUT_OF_RANGE'],
      [() => runWithLimits(task('double'), {}, { startupTimeout: 0 }), 'ERR_OUT_OF_RANGE'],
      [() => runWithLimits(task('double'), {}, { signal: {} as never }), 'ERR_INVALID_ARG_TYPE'],
      [() => runWithLimits(task('double'), {}, { budget: '' }), 'ERR_INVALID_ARG_VALUE'],
      [() => runWithLimits(task('double'), {}, { alertThresholds: { warning: 2 } }), 'ERR_OUT_OF_RANGE'],
    ];
    for (const [call, code] of cases) {
      let err: unknown;
      try {
        call();
      } catch (e) {
        err = e;
      }
      expect(err, code).toMatchObject({ code });
    }
    expect(activeRuns()).toBe(0);
  });
});

describe('monitoring and alerts', () => {
  test('usage is reported while the task runs, and fuel alerts fire at 80 % and 95 %', async () => {
    const usages: Usage[] = [];
    const alerts: Alert[] = [];
    const { value, report } = await runWithLimits(
      task('slowFuel'),
      { fuel: 100 },
      {
        input: { units: 100, everyMs: 8 },
        onUsage: (u) => usages.push(u),
        usageInterval: 20,
        onAlert: (a) => alerts.push(a),
        checkInterval: 5,
      },
    );
    expect(value).toBe(100);
    expect(report.fuelUsed).toBe(100);
    expect(usages.length).toBeGreaterThanOrEqual(5);
    for (let i = 1; i < usages.length; i++) {
      expect(usages[i]!.elapsed).toBeGreaterThan(usages[i - 1]!.elapsed);
      expect(usages[i]!.fuelUsed).toBeGreaterThanOrEqual(usages[i - 1]!.fuelUsed);
    }
    const last = usages[usages.length - 1]!;
    expect(last.fuelUsed).toBeGreaterThan(0);
    expect(last.fractions.fuel).toBe(last.fuelUsed / 100);
    expect(last.fractions.time).toBeUndefined();
    const fuelAlerts = alerts.filter((a) => a.resource === 'fuel');
    expect(fuelAlerts.map((a) => a.level)).toEqual(['warning', 'critical']);
    expect(fuelAlerts[0]!.fraction).toBeGreaterThanOrEqual(0.8);
    expect(fuelAlerts[0]!.fraction).toBeLessThan(0.95);
    expect(fuelAlerts[1]!.fraction).toBeGreaterThanOrEqual(0.95);
    expect(report.alerts).toEqual(alerts);
  });

  test('time alerts precede a timeout', async () => {
    const alerts: Alert[] = [];
    // The warning band (800-950 ms) is many checks wide, so no check gap skips it.
    const err = await rejection(runWithLimits(task('spin'), { timeout: 1000 }, { onAlert: (a) => alerts.push(a) }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(alerts.filter((a) => a.resource === 'time').map((a) => a.level)).toEqual(['warning', 'critical']);
  });

  test('a throwing callback stops the run with its error', async () => {
    const err = await rejection(
      runWithLimits(task('spin'), { timeout: 10_000 }, {
        onUsage: () => {
          throw new Error('monitor broke');
        },
      }),
    );
    expect(err.message).toBe('monitor broke');
    expectCompleteReport(err.report, 'error');
    expect(activeRuns()).toBe(0);
  });
});
