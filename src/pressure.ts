/**
 * Pressure levels of a byte budget (or any used/limit pair), as operators of
 * allocators know them: low below 60 %, medium from 60 %, high from 80 %,
 * critical from 95 %. A boundary value belongs to the higher level.
 *
 * A limit of 0 reports 0 % and `low`: a budget that allows nothing is not
 * under pressure, and a division by zero must never reach a dashboard as NaN.
 *
 * @module
 */
import { validateNumber, validateOneOf } from './validate';

/** Pressure of a budget, from least to most severe. */
export type PressureLevel = 'low' | 'medium' | 'high' | 'critical';

/** The pressure levels in order of severity (index = severity). */
export const PRESSURE_LEVELS: readonly PressureLevel[] = Object.freeze(['low', 'medium', 'high', 'critical'] as const);

/** Usage percentages at which each level starts (inclusive). */
export const PRESSURE_THRESHOLDS: Readonly<{ medium: number; high: number; critical: number }> = Object.freeze({
  medium: 60,
  high: 80,
  critical: 95,
});

/**
 * `used` as a percentage of `limit` (0 when `limit` is 0). Both must be finite
 * numbers >= 0; the result may exceed 100 when `used` is above `limit`.
 */
export function usagePercent(used: number, limit: number): number {
  validateNumber(used, 'used', 0, Number.MAX_SAFE_INTEGER);
  validateNumber(limit, 'limit', 0, Number.MAX_SAFE_INTEGER);
  return percentOf(used, limit);
}

/** The {@link PressureLevel} of `used` against `limit` (`low` when `limit` is 0). */
export function pressureLevel(used: number, limit: number): PressureLevel {
  validateNumber(used, 'used', 0, Number.MAX_SAFE_INTEGER);
  validateNumber(limit, 'limit', 0, Number.MAX_SAFE_INTEGER);
  return pressureForPercent(percentOf(used, limit));
}

/** Percentage and level together, e.g. `{ percent: 82.5, level: 'high' }`. */
export function pressure(used: number, limit: number): { percent: number; level: PressureLevel } {
  validateNumber(used, 'used', 0, Number.MAX_SAFE_INTEGER);
  validateNumber(limit, 'limit', 0, Number.MAX_SAFE_INTEGER);
  const percent = percentOf(used, limit);
  return { percent, level: pressureForPercent(percent) };
}

/** The {@link PressureLevel} of a usage percentage (finite, >= 0). */
export function pressureLevelForPercent(percent: number): PressureLevel {
  validateNumber(percent, 'percent', 0);
  return pressureForPercent(percent);
}

/** Severity index of a pressure level: low 0, medium 1, high 2, critical 3. */
export function pressureIndex(level: PressureLevel): number {
  return PRESSURE_LEVELS.indexOf(validateOneOf(level, 'level', PRESSURE_LEVELS));
}

// Multiplying before dividing keeps whole percentages exact (60 of 100 is
// 60, not 60.00000000000001), so boundary values land on the documented side.
function percentOf(used: number, limit: number): number {
  return limit > 0 ? (used * 100) / limit : 0;
}

const { medium: MEDIUM, high: HIGH, critical: CRITICAL } = PRESSURE_THRESHOLDS;

function pressureForPercent(p: number): PressureLevel {
  return p >= CRITICAL ? 'critical' : p >= HIGH ? 'high' : p >= MEDIUM ? 'medium' : 'low';
}
