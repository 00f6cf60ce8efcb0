// Budget semantics at their exact boundaries, bad input to every entry point
// (public and native), and a fuzz run that checks that no rejected call moves
// a counter and nothing crashes.
import { describe, expect, test } from 'vitest';
import { binding } from '../src/binding';
import { nativeLayout } from '../src/sampler';
import {
  Budget,
  BudgetError,
  parseSize,
  readDisk,
  readPsi,
  ResourceError,
  setSamplerInterval,
} from '../src/index';

import { codeOf } from './helpers';

let counter = 0;
const unique = (p: string) => `${p}-${process.pid}-${++counter}`;

const BAD_SIZES: unknown[] = [-1, NaN, 1.5, Infinity, -Infinity, '10', 2 ** 53, 10n, null, undefined, {}, [], true];

describe('budget limits', () => {
  test('reaching exactly the limit succeeds; one byte more fails with the numbers', () => {
    const b = Budget.open(unique('exact'), 1000);
    expect(b.tryReserve(999)).toBe(true);
    expect(b.tryReserve(1)).toBe(true);
    expect(b.used).toBe(1000);
    expect(b.tryReserve(1)).toBe(false);
    let err: unknown;
    try {
      b.reserve(1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BudgetError);
    expect(err).toMatchObject({ code: 'ERR_BUDGET_EXCEEDED', requested: 1, limit: 1000, current: 1000 });
    expect(b.used).toBe(1000);
    b.release(1000);
    expect(b.used).toBe(0);
    expect(b.peak).toBe(1000);
    const s = b.stats();
    expect(s.successes).toBe(2);
    expect(s.failures).toBe(2);
    b.close();
  });

  test('0-byte requests and a limit of 0', () => {
    const b = Budget.create(0);
    expect(b.tryReserve(0)).toBe(true);
    expect(b.tryReserve(1)).toBe(false);
    b.release(0);
    expect(b.used).toBe(0);
    b.close();
  });

  test('wide budgets stay exact up to 2^53 - 1', () => {
    const max = Number.MAX_SAFE_INTEGER;
    const b = Budget.create(max);
    expect(b.tryReserve(max - 1)).toBe(true);
    expect(b.tryReserve(2)).toBe(false);
    expect(b.tryReserve(1)).toBe(true);
    expect(b.used).toBe(max);
    expect(b.tryReserve(1)).toBe(false);
    b.release(max);
    expect(b.used).toBe(0);
    expect(b.peak).toBe(max);
    b.close();
  });

  test('narrow budgets at the 32-bit edge', () => {
    const b = Budget.create(2 ** 32 - 1);
    expect(b.tryReserve(2 ** 32)).toBe(false);
    expect(b.tryReserve(2 ** 32 - 2)).toBe(true);
    expect(b.tryReserve(1)).toBe(true);
    expect(b.tryReserve(1)).toBe(false);
    expect(b.used).toBe(2 ** 32 - 1);
    b.release(2 ** 32 - 1);
    expect(() => b.setLimit(2 ** 32)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    b.close();
  });

  test('release more than held is rejected and the counter never goes negative', () => {
    const b = Budget.open(unique('release'), 100);
    b.reserve(40);
    expect(() => b.release(41)).toThrow(expect.objectContaining({ code: 'ERR_BUDGET_RELEASE_EXCEEDS_HELD' }));
    expect(b.used).toBe(40);
    b.release(40);
    expect(() => b.release(1)).toThrow(expect.objectContaining({ code: 'ERR_BUDGET_RELEASE_EXCEEDS_HELD' }));
    expect(b.used).toBe(0);
    b.close();
  });

  test('setLimit moves the limit the JS fast path checks, both ways; a refused change moves nothing', () => {
    const b = Budget.create(500);
    expect(b.tryReserve(500)).toBe(true);
    expect(b.tryReserve(1)).toBe(false);
    b.setLimit(800);
    expect(b.tryReserve(300)).toBe(true);
    expect(b.tryReserve(1)).toBe(false);
    expect(codeOf(() => b.setLimit(799))).toBe('ERR_BUDGET_LIMIT_BELOW_USAGE');
    expect(b.tryReserve(1)).toBe(false);
    b.release(800);
    expect(codeOf(() => b.setLimit(2 ** 32))).toBe('ERR_OUT_OF_RANGE');
    b.setLimit(100);
    expect(b.tryReserve(101)).toBe(false);
    expect(b.tryReserve(100)).toBe(true);
    b.release(100);
    b.setLimit(2 ** 32 - 1);
    expect(b.tryReserve(2 ** 32 - 1)).toBe(true);
    expect(b.tryReserve(1)).toBe(false);
    b.release(2 ** 32 - 1);
    expect(b.stats()).toMatchObject({ used: 0, limit: 2 ** 32 - 1, successes: 4, failures: 5 });
    b.close();
  });

  test("a handle's remembered counter value is only a guess: it never decides an outcome", () => {
    const name = unique('guess');
    const a = Budget.open(name, 100);
    const b = Budget.open(name);
    // a last saw 90; b (same thread, so it may release those bytes) brings
    // the counter back to 0 behind a's back. a must still get its 20.
    expect(a.tryReserve(90)).toBe(true);
    b.release(90);
    expect(a.tryReserve(20)).toBe(true);
    expect(a.used).toBe(20);
    // a last saw 20 and b takes 30 more: a's guessed exchange (20 -> 30)
    // fails, and the retry from the real value gets a its 10.
    expect(b.tryReserve(30)).toBe(true);
    expect(a.tryReserve(10)).toBe(true);
    expect(a.used).toBe(60);
    b.release(40);
    // Now a last saw 60 while b takes the counter from 20 to 95: a's guess
    // (60 -> 70) fits under the limit, but the counter says 10 more would
    // not, so a's 10 must fail, and be counted as one failure.
    expect(b.tryReserve(75)).toBe(true);
    expect(a.tryReserve(10)).toBe(false);
    expect(a.tryReserve(5)).toBe(true);
    expect(b.used).toBe(100);
    b.release(100);
    expect(a.stats()).toMatchObject({ used: 0, peak: 100, successes: 6, failures: 1 });
    a.close();
    b.close();
  });

  test('one name is one counter; limit mismatch, unknown names and setLimit', () => {
    const name = unique('named');
    const a = Budget.open(name, 500);
    const b = Budget.open(name);
    const c = Budget.open(name, 500);
    expect(b.slot).toBe(a.slot);
    a.reserve(100);
    expect(b.used).toBe(100);
    expect(() => Budget.open(name, 501)).toThrow(expect.objectContaining({ code: 'ERR_BUDGET_LIMIT_MISMATCH', limit: 500 }));
    expect(() => Budget.open(unique('missing'))).toThrow(expect.objectContaining({ code: 'ERR_BUDGET_NOT_FOUND' }));
    expect(() => a.setLimit(99)).toThrow(expect.objectContaining({ code: 'ERR_BUDGET_LIMIT_BELOW_USAGE' }));
    a.setLimit(1000);
    expect(c.limit).toBe(1000);
    expect(a.stats().openHandles).toBe(3);
    b.close();
    c.close();
    // The environment still has a handle: what it holds stays reserved.
    expect(a.used).toBe(100);
    a.close();
    expect(a.closed).toBe(true);
    expect(() => a.tryReserve(1)).toThrow(expect.objectContaining({ code: 'ERR_BUDGET_CLOSED' }));
    a.close();
    // Closing the environment's last handle returned its 100 bytes and freed the slot.
    const again = Budget.open(name, 7);
    expect(again.used).toBe(0);
    expect(again.limit).toBe(7);
    again.close();
  });

  test('using disposes the handle', () => {
    const name = unique('dispose');
    {
      using b = Budget.open(name, 10);
      b.reserve(10);
    }
    expect(() => Budget.open(name)).toThrow(expect.objectContaining({ code: 'ERR_BUDGET_NOT_FOUND' }));
  });

  test('every bad size is rejected with a Node-style code and changes nothing', () => {
    const b = Budget.open(unique('bad'), 1000);
    b.reserve(10);
    for (const bad of BAD_SIZES) {
      for (const call of [() => b.tryReserve(bad as number), () => b.reserve(bad as number), () => b.release(bad as number), () => b.setLimit(bad as number)]) {
        let err: { code?: string } | undefined;
        try {
          call();
        } catch (e) {
          err = e as { code?: string };
        }
        expect(err, `value ${String(bad)}`).toBeDefined();
        expect(['ERR_INVALID_ARG_TYPE', 'ERR_OUT_OF_RANGE']).toContain(err!.code);
      }
      expect(() => Budget.create(bad as number)).toThrow(expect.objectContaining({ code: expect.stringMatching(/^ERR_(INVALID_ARG_TYPE|OUT_OF_RANGE)$/) }));
    }
    expect(() => Budget.open(42 as unknown as string, 1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => Budget.open('', 1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(b.used).toBe(10);
    expect(b.limit).toBe(1000);
    const s = b.stats();
    expect(s.successes).toBe(1);
    expect(s.failures).toBe(0);
    b.release(10);
    b.close();
  });
});

describe('bad input to native entry points', () => {
  const values: unknown[] = [
    undefined, null, true, 0, -1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 64, -0, 1e308, 7, 1023, 1024, 5000,
    '', 'x', '/', '/definitely/missing', 'memory', 'a\0b', 'x'.repeat(5000), 10n, Symbol('s'), {}, [], [1, 2],
    () => 1, new Float64Array(0), new Float64Array(1), new Float64Array(3), new Float32Array(3), new Int32Array(8),
    new ArrayBuffer(8), Buffer.alloc(4), new Date(0), /re/,
  ];
  const names = Object.getOwnPropertyNames(binding).filter((k) => typeof (binding as unknown as Record<string, unknown>)[k] === 'function');
  // Calls that legitimately change process-wide state are fed only through
  // the fuzz loop below, where their effect is checked.
  const skip = new Set(['stopSampler', 'startSampler', 'setSamplerInterval']);

  function pick<T>(arr: readonly T[], r: () => number): T {
    return arr[Math.floor(r() * arr.length)]!;
  }

  test('rejections are typed errors with a code; 100,000 random calls leave counters untouched', () => {
    const budget = Budget.open(unique('fuzz'), 4096);
    budget.reserve(1000);
    const before = budget.stats();
    const slotsBefore = Budget.count();
    let seed = 12345;
    const r = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    let thrown = 0;
    for (let i = 0; i < 100_000; i++) {
      const fn = pick(names, r);
      if (skip.has(fn)) continue;
      const args = Array.from({ length: Math.floor(r() * 4) }, () => pick(values, r));
      // Valid operations on our own open slot are not bad input.
      if (fn.startsWith('budget') && args[0] === budget.slot) continue;
      const f = (binding as unknown as Record<string, (...a: unknown[]) => unknown>)[fn]!;
      let result: unknown;
      try {
        result = f.apply(binding, args);
      } catch (e) {
        thrown++;
        const err = e as { code?: unknown };
        expect(e instanceof TypeError || e instanceof RangeError, `${fn}(${args.map(String).join(', ')})`).toBe(true);
        expect(typeof err.code, `${fn}: ${String((e as Error).message)}`).toBe("string");
        continue;
      }
      // budgetOpen with a fresh name creates budgets: close them again
      // (with a truthy third argument the result also encodes a cell).
      if (fn === 'budgetOpen' && typeof result === 'number' && result >= 0) {
        const slot = result % nativeLayout.maxBudgets;
        expect(binding.budgetClose(slot, (result - slot) / nativeLayout.maxBudgets - 1)).toBe(0);
      }
    }
    expect(thrown).toBeGreaterThan(1000);
    const after = budget.stats();
    expect(after.used).toBe(before.used);
    expect(after.limit).toBe(before.limit);
    expect(after.successes).toBe(before.successes);
    expect(after.failures).toBe(before.failures);
    expect(Budget.count()).toBe(slotsBefore);
    budget.release(1000);
    budget.close();
  });

  test('public entry points reject bad arguments with Node-style codes', () => {
    for (const bad of [undefined, null, 42, {}, []]) {
      expect(() => readDisk(bad as string)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    }
    expect(() => readPsi('disk' as 'io')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => setSamplerInterval(Infinity)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => parseSize('12 parsecs', 'size')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => parseSize('5K', 'size')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => parseSize(-5, 'size')).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(parseSize('512MB', 'size')).toBe(512e6);
    expect(parseSize('2GiB', 'size')).toBe(2 * 1024 ** 3);
    expect(parseSize('1.5 kib', 'size')).toBe(1536);
    const e = new BudgetError('ERR_BUDGET_CLOSED', 'm', 'n', 0, 0, 0);
    expect(e).toBeInstanceOf(ResourceError);
  });
});
