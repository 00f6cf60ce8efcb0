// The parts of task limits that need no worker: fuel at its exact budget and
// under hostile arguments, the IO meter, profiles and limit validation, and
// alerts at their exact thresholds.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { AlertTracker, fractionOf, resolveThresholds } from '../src/limits/alerts';
import { FuelExhaustedError, IoLimitError } from '../src/limits/errors';
import { Fuel } from '../src/limits/fuel';
import { IoMeter } from '../src/limits/io';
import { defineProfile, profiles, resolveLimits } from '../src/limits/profiles';

const MiB = 1024 * 1024;

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('Fuel', () => {
  test('the last unit of the budget is granted, the next is refused, and used equals the budget', () => {
    for (const limit of [0, 1, 99, 100, 101, 4096, 4097, 250_000]) {
      const fuel = new Fuel(limit);
      for (let i = 0; i < limit; i++) fuel.consume();
      expect(fuel.used).toBe(limit);
      expect(fuel.remaining).toBe(0);
      const err = thrown(() => fuel.consume());
      expect(err).toBeInstanceOf(FuelExhaustedError);
      expect(err).toMatchObject({ code: 'ERR_FUEL_EXHAUSTED', limit, used: limit, requested: 1 });
      expect(fuel.used).toBe(limit);
      expect(fuel.exhausted).toBe(true);
    }
  });

  test('requests are all-or-nothing', () => {
    const fuel = new Fuel(10);
    fuel.consume(7);
    expect(thrown(() => fuel.consume(5))).toMatchObject({ used: 7, requested: 5, limit: 10 });
    expect(fuel.used).toBe(7);
    expect(fuel.has(3)).toBe(true);
    expect(fuel.has(4)).toBe(false);
    fuel.consume(3);
    expect(fuel.used).toBe(10);
    fuel.consume(0);
    expect(() => fuel.consume(1)).toThrow(FuelExhaustedError);
  });

  test('bad requests throw Node-style errors and move no counter', () => {
    const fuel = new Fuel(1000);
    fuel.consume(10);
    const bad: unknown[] = [-1, 1.5, NaN, Infinity, -Infinity, '1', 1n, null, {}, [], true, 2 ** 53];
    for (const n of bad) {
      const err = thrown(() => fuel.consume(n as number));
      expect(err).toBeInstanceOf(Error);
      expect((err as { code: string }).code).toMatch(/^ERR_(INVALID_ARG_TYPE|OUT_OF_RANGE)$/);
      expect(fuel.used).toBe(10);
    }
    // Still exact afterwards.
    fuel.consume(990);
    expect(() => fuel.consume()).toThrow(FuelExhaustedError);
    expect(fuel.used).toBe(1000);
  });

  test('requests above 2^32 take the checked path and are exact', () => {
    const fuel = new Fuel(2 ** 40);
    fuel.consume(2 ** 33);
    fuel.consume(1);
    expect(fuel.used).toBe(2 ** 33 + 1);
    expect(() => fuel.consume(2 ** 40)).toThrow(FuelExhaustedError);
  });

  test('without a budget fuel is only counted', () => {
    const fuel = new Fuel();
    for (let i = 0; i < 100_000; i++) fuel.consume();
    fuel.consume(2 ** 50);
    expect(fuel.used).toBe(100_000 + 2 ** 50);
    expect(fuel.limit).toBe(Infinity);
    expect(fuel.remaining).toBe(Infinity);
  });

  test('checkpoints report progress at each grant and at exhaustion; onExhausted fires once', () => {
    const seen: number[] = [];
    const exhausted: FuelExhaustedError[] = [];
    const fuel = new Fuel(10, { grant: 4, onCheckpoint: (u) => seen.push(u), onExhausted: (e) => exhausted.push(e) });
    for (let i = 0; i < 10; i++) fuel.consume();
    expect(() => fuel.consume()).toThrow(FuelExhaustedError);
    expect(() => fuel.consume()).toThrow(FuelExhaustedError);
    // The first request opens a grant of 4 more (used 1), the sixth the next
    // (used 6, capped at the budget), the refused eleventh reports 10 once.
    expect(seen).toEqual([1, 6, 10]);
    expect(exhausted).toHaveLength(1);
    expect(exhausted[0]!.used).toBe(10);
  });

  test('constructor arguments are validated', () => {
    for (const bad of [-1, 1.5, NaN, 2 ** 53]) expect(() => new Fuel(bad)).toThrow(RangeError);
    expect(() => new Fuel('10' as unknown as number)).toThrow(TypeError);
    expect(() => new Fuel(10, { grant: 0 })).toThrow(RangeError);
    expect(() => new Fuel(10, { onCheckpoint: 1 as unknown as () => void })).toThrow(TypeError);
  });
});

describe('IoMeter', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-io-'));

  test('writes up to exactly the budget; the next byte is refused and nothing is written', () => {
    const file = path.join(dir, 'w.txt');
    const io = new IoMeter({ writeLimit: 10 });
    io.writeFileSync(file, 'abcde');
    io.appendFileSync(file, Buffer.from('fghij'));
    expect(io.written).toBe(10);
    const err = thrown(() => io.appendFileSync(file, 'k'));
    expect(err).toBeInstanceOf(IoLimitError);
    expect(err).toMatchObject({ code: 'ERR_IO_LIMIT', direction: 'write', limit: 10, used: 10, requested: 1 });
    expect(fs.readFileSync(file, 'utf8')).toBe('abcdefghij');
  });

  test('multi-byte strings are charged by their encoded length', () => {
    const io = new IoMeter({ writeLimit: 100 });
    io.chargeWrite(0);
    io.writeFileSync(path.join(dir, 'u.txt'), 'é€');
    expect(io.written).toBe(5);
  });

  test('reads are checked against the file size before reading', async () => {
    const file = path.join(dir, 'r.bin');
    fs.writeFileSync(file, Buffer.alloc(64));
    const io = new IoMeter({ readLimit: 100 });
    expect(io.readFileSync(file).byteLength).toBe(64);
    await expect(io.readFile(file)).rejects.toMatchObject({ code: 'ERR_IO_LIMIT', direction: 'read', used: 64, requested: 64 });
    expect(io.read).toBe(64);
  });

  test('bad byte counts are refused without moving the counters', () => {
    const io = new IoMeter({ writeLimit: 10 });
    for (const bad of [-1, 1.5, NaN, '1', null]) expect(() => io.chargeWrite(bad as number)).toThrow();
    expect(io.written).toBe(0);
  });
});

describe('profiles and limits', () => {
  test('presets follow the sandbox guide', () => {
    expect(profiles.lightweight).toMatchObject({ heap: 32 * MiB, timeout: 10_000, fuel: 1_000_000 });
    expect(profiles.standard).toMatchObject({ heap: 128 * MiB, timeout: 30_000, fuel: 10_000_000 });
    expect(profiles.heavy).toMatchObject({ heap: 512 * MiB, timeout: 300_000, fuel: 100_000_000 });
    expect(Object.isFrozen(profiles.standard)).toBe(true);
  });

  test('a profile name, a profile with overrides, and null to remove a limit', () => {
    expect(resolveLimits('standard')).toMatchObject({ profile: 'standard', heap: 128 * MiB, timeout: 30_000 });
    const r = resolveLimits({ profile: 'lightweight', timeout: 500, fuel: null, heap: '64MiB' });
    expect(r).toMatchObject({ profile: 'lightweight', timeout: 500, fuel: null, heap: 64 * MiB, cpuTime: 10_000 });
    expect(resolveLimits(undefined)).toEqual({
      profile: null,
      heap: null,
      rssGrowth: null,
      timeout: null,
      cpuTime: null,
      fuel: null,
      ioWrite: null,
      ioRead: null,
    });
  });

  test('the heap limit is rounded up to whole MiB, as the Worker takes it', () => {
    expect(resolveLimits({ heap: 10 * MiB + 1 }).heap).toBe(11 * MiB);
    expect(resolveLimits({ heap: '20MB' }).heap).toBe(20 * MiB);
  });

  test('custom profiles: built on a preset or on other limits, frozen, validated', () => {
    const custom = defineProfile('standard', { heap: '256MiB', timeout: 120_000, fuel: 50_000_000 });
    expect(Object.isFrozen(custom)).toBe(true);
    expect(resolveLimits(custom)).toMatchObject({ heap: 256 * MiB, timeout: 120_000, fuel: 50_000_000, cpuTime: 30_000 });
    const derived = defineProfile(custom, { cpuTime: null });
    expect(resolveLimits(derived).cpuTime).toBeNull();
    expect(resolveLimits(derived).heap).toBe(256 * MiB);
    expect(() => defineProfile('standard', { profile: 'heavy' })).toThrow(TypeError);
    expect(() => defineProfile('huge' as 'heavy')).toThrow(TypeError);
  });

  test('bad limits are refused with Node-style errors', () => {
    const cases: [unknown, string][] = [
      [{ timeout: 0 }, 'ERR_OUT_OF_RANGE'],
      [{ timeout: -5 }, 'ERR_OUT_OF_RANGE'],
      [{ timeout: '5' }, 'ERR_INVALID_ARG_TYPE'],
      [{ cpuTime: NaN }, 'ERR_OUT_OF_RANGE'],
      [{ fuel: 1.5 }, 'ERR_OUT_OF_RANGE'],
      [{ fuel: -1 }, 'ERR_OUT_OF_RANGE'],
      [{ heap: 1000 }, 'ERR_OUT_OF_RANGE'],
      [{ heap: '12 parsecs' }, 'ERR_INVALID_ARG_VALUE'],
      [{ rssGrowth: -1 }, 'ERR_OUT_OF_RANGE'],
      [{ timout: 5 }, 'ERR_INVALID_ARG_VALUE'],
      [{ profile: 'huge' }, 'ERR_INVALID_ARG_VALUE'],
      ['huge', 'ERR_INVALID_ARG_VALUE'],
      [42, 'ERR_INVALID_ARG_TYPE'],
      [null, 'ERR_INVALID_ARG_TYPE'],
    ];
    for (const [limits, code] of cases) {
      expect(thrown(() => resolveLimits(limits as never))).toMatchObject({ code });
    }
  });
});

describe('alerts', () => {
  test('warning at exactly 80 %, critical at exactly 95 %, each once', () => {
    const t = new AlertTracker(resolveThresholds(undefined));
    expect(t.observe('fuel', 79, 100, 1)).toBeNull();
    expect(t.observe('fuel', 79.99, 100, 1)).toBeNull();
    expect(t.observe('fuel', 80, 100, 2)).toEqual({ level: 'warning', resource: 'fuel', used: 80, limit: 100, fraction: 0.8, elapsed: 2 });
    expect(t.observe('fuel', 90, 100, 3)).toBeNull();
    expect(t.observe('fuel', 94.99, 100, 3)).toBeNull();
    expect(t.observe('fuel', 95, 100, 4)).toMatchObject({ level: 'critical', fraction: 0.95 });
    expect(t.observe('fuel', 100, 100, 5)).toBeNull();
    // Resources are independent; a jump past both levels raises the critical one only.
    expect(t.observe('heap', 99, 100, 6)).toMatchObject({ level: 'critical', resource: 'heap' });
    expect(t.observe('heap', 99, 100, 6)).toBeNull();
  });

  test('custom thresholds and their validation', () => {
    const t = new AlertTracker(resolveThresholds({ warning: 0.5, critical: 0.75 }));
    expect(t.observe('time', 49, 100, 0)).toBeNull();
    expect(t.observe('time', 50, 100, 0)?.level).toBe('warning');
    expect(t.observe('time', 75, 100, 0)?.level).toBe('critical');
    expect(() => resolveThresholds({ warning: 0.9, critical: 0.8 })).toThrow(RangeError);
    expect(() => resolveThresholds({ warning: 0 })).toThrow(RangeError);
    expect(() => resolveThresholds({ critical: 1.5 })).toThrow(RangeError);
    expect(() => resolveThresholds({ warning: '0.5' as unknown as number })).toThrow(TypeError);
  });

  test('a zero limit: 0 used is nothing, anything used is critical', () => {
    expect(fractionOf(0, 0)).toBe(0);
    expect(fractionOf(1, 0)).toBe(Infinity);
    const t = new AlertTracker(resolveThresholds(undefined));
    expect(t.observe('fuel', 0, 0, 0)).toBeNull();
    expect(t.observe('fuel', 1, 0, 0)?.level).toBe('critical');
  });
});
