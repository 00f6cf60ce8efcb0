// Fuel add/reset at their boundaries (refused with a typed error when fuel is
// not metered) and fuel shared by several worker threads staying exact under
// concurrent consumption.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, test } from 'vitest';
import { Fuel, FuelExhaustedError, FuelMeteringError, SharedFuel } from '../src/index';
import { codeOf } from './helpers';

describe('Fuel add and reset', () => {
  test('add() raises the budget exactly; the request that did not fit fits afterwards', () => {
    const f = new Fuel(10, { grant: 3 });
    f.consume(8);
    expect(() => f.consume(3)).toThrow(FuelExhaustedError);
    expect(f.used).toBe(8);
    f.add(1);
    expect(f.limit).toBe(11);
    f.consume(3);
    expect(f.used).toBe(11);
    expect(f.remaining).toBe(0);
    expect(() => f.consume(1)).toThrow(FuelExhaustedError);
    f.add(0);
    expect(f.limit).toBe(11);
  });

  test('reset() starts again with nothing used, at the old or a new budget', () => {
    const seen: number[] = [];
    const f = new Fuel(5, { onCheckpoint: (u) => seen.push(u) });
    f.consume(5);
    f.reset();
    expect(f).toMatchObject({ used: 0, limit: 5, remaining: 5, exhausted: false });
    f.consume(5);
    f.reset(2);
    expect(f.limit).toBe(2);
    expect(() => f.consume(3)).toThrow(FuelExhaustedError);
    f.consume(2);
    expect(seen).toContain(0);
  });

  test('without metering, add and reset are refused with ERR_FUEL_METERING_OFF and nothing changes', () => {
    const f = new Fuel();
    f.consume(7);
    expect(f.metered).toBe(false);
    expect(() => f.add(1)).toThrow(FuelMeteringError);
    expect(codeOf(() => f.reset(5))).toBe('ERR_FUEL_METERING_OFF');
    expect(f.used).toBe(7);
    expect(f.limit).toBe(Infinity);
  });

  test('bad amounts are refused and change nothing', () => {
    const f = new Fuel(10);
    expect(codeOf(() => f.add(-1))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => f.add(1.5))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => f.add(Number.MAX_SAFE_INTEGER))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => f.reset(-1))).toBe('ERR_OUT_OF_RANGE');
    expect(f.limit).toBe(10);
  });
});

describe('SharedFuel', () => {
  test('all-or-nothing requests, add and reset, on one thread', () => {
    const f = new SharedFuel(10);
    f.consume(4);
    expect(f.tryConsume(7)).toBe(false);
    expect(f).toMatchObject({ used: 4, remaining: 6, refused: 1 });
    f.consume(6);
    expect(f.remaining).toBe(0);
    expect(codeOf(() => f.consume(1))).toBe('ERR_FUEL_EXHAUSTED');
    f.add(3);
    expect(f).toMatchObject({ limit: 13, remaining: 3 });
    f.reset(2);
    expect(f).toMatchObject({ limit: 2, used: 0, remaining: 2, refused: 0 });
    expect(codeOf(() => f.consume(-1))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => SharedFuel.from(new SharedArrayBuffer(8)))).toBe('ERR_OUT_OF_RANGE');
    const other = SharedFuel.from(f.buffer);
    other.consume(2);
    expect(f.remaining).toBe(0);
  });

  test('four threads consuming at once spend exactly the budget, never below zero', async () => {
    const dist = path.resolve(__dirname, '..', 'dist', 'limits', 'shared-fuel.js');
    const fuel = new SharedFuel(100_003);
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { SharedFuel } = require(${JSON.stringify(dist)});
      const f = SharedFuel.from(workerData.buffer);
      let got = 0, minSeen = Infinity;
      for (;;) {
        const n = 1 + (got % 3);
        if (f.tryConsume(n)) { got += n; } else if (!f.tryConsume(1)) break; else got += 1;
        const left = f.remaining;
        if (left < minSeen) minSeen = left;
      }
      parentPort.postMessage({ got, minSeen });
    `;
    const results = await Promise.all(
      Array.from(
        { length: 4 },
        () =>
          new Promise<{ got: number; minSeen: number }>((resolve, reject) => {
            const w = new Worker(code, { eval: true, workerData: { buffer: fuel.buffer } });
            w.once('message', resolve);
            w.once('error', reject);
          }),
      ),
    );
    const total = results.reduce((s, r) => s + r.got, 0);
    expect(total).toBe(100_003);
    expect(fuel.used).toBe(100_003);
    expect(fuel.remaining).toBe(0);
    for (const r of results) expect(r.minSeen).toBeGreaterThanOrEqual(0);
  });
});
