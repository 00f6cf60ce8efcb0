// Budget pressure levels at their exact boundaries (60 / 80 / 95 %), a limit
// of 0, and bad arguments.
import { describe, expect, test } from 'vitest';
import {
  PRESSURE_LEVELS,
  pressure,
  pressureIndex,
  pressureLevel,
  pressureLevelForPercent,
  usagePercent,
} from '../src/pressure';

describe('pressureLevel', () => {
  test.each<[number, number, string]>([
    [0, 100, 'low'],
    [59, 100, 'low'],
    [59.999, 100, 'low'],
    [60, 100, 'medium'],
    [79.999, 100, 'medium'],
    [80, 100, 'high'],
    [94.999, 100, 'high'],
    [95, 100, 'critical'],
    [100, 100, 'critical'],
    [150, 100, 'critical'],
    // Large budgets: boundaries hold in bytes, not only in round numbers.
    [599_999_999, 1e9, 'low'],
    [600_000_000, 1e9, 'medium'],
    [799_999_999, 1e9, 'medium'],
    [800_000_000, 1e9, 'high'],
    [949_999_999, 1e9, 'high'],
    [950_000_000, 1e9, 'critical'],
    [3, 5, 'medium'], // 60 %
    [57, 60, 'critical'], // 95 %
    [4, 5, 'high'], // 80 %
  ])('%d of %d → %s', (used, limit, level) => {
    expect(pressureLevel(used, limit)).toBe(level);
    expect(pressure(used, limit).level).toBe(level);
  });

  test('boundary percentages are exact', () => {
    expect(usagePercent(60, 100)).toBe(60);
    expect(usagePercent(3, 5)).toBe(60);
    expect(usagePercent(57, 60)).toBe(95);
    expect(usagePercent(7, 10)).toBe(70);
    expect(pressureLevelForPercent(60)).toBe('medium');
    expect(pressureLevelForPercent(59.9999)).toBe('low');
  });

  test('a limit of 0 is 0 % and low, never NaN', () => {
    expect(usagePercent(0, 0)).toBe(0);
    expect(usagePercent(10, 0)).toBe(0);
    expect(pressureLevel(0, 0)).toBe('low');
    expect(pressureLevel(10, 0)).toBe('low');
    expect(pressure(10, 0)).toEqual({ percent: 0, level: 'low' });
  });

  test('usage above the limit reads above 100 %', () => {
    expect(usagePercent(150, 100)).toBe(150);
  });

  test.each<[unknown, unknown, string]>([
    [NaN, 100, 'ERR_OUT_OF_RANGE'],
    [-1, 100, 'ERR_OUT_OF_RANGE'],
    [1, -100, 'ERR_OUT_OF_RANGE'],
    [Infinity, 100, 'ERR_OUT_OF_RANGE'],
    [1, Infinity, 'ERR_OUT_OF_RANGE'],
    ['1', 100, 'ERR_INVALID_ARG_TYPE'],
    [1, null, 'ERR_INVALID_ARG_TYPE'],
    [1n, 100, 'ERR_INVALID_ARG_TYPE'],
  ])('(%s, %s) → %s', (used, limit, code) => {
    for (const fn of [pressureLevel, usagePercent, pressure]) {
      expect(() => (fn as (a: unknown, b: unknown) => unknown)(used, limit)).toThrow(expect.objectContaining({ code }));
    }
  });

  test('levels in order, and their indexes', () => {
    expect(PRESSURE_LEVELS).toEqual(['low', 'medium', 'high', 'critical']);
    expect(PRESSURE_LEVELS.map(pressureIndex)).toEqual([0, 1, 2, 3]);
    expect(() => pressureIndex('extreme' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => pressureLevelForPercent(-1)).toThrow(RangeError);
  });
});
