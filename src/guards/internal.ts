/**
 * Helpers shared by the guards: clocks, unit conversions and the checks that
 * turn option objects into validated numbers. Not exported from the package.
 *
 * @module
 */
import { binding } from '../binding';
import { InvalidArgTypeError, InvalidArgValueError, OutOfRangeError, ResourceError } from '../errors';
import { parseSize } from '../size';
import { validateBoolean, validateFunction, validateInteger, validateObject } from '../validate';

/** 2^20: the "MB" of MemoryBudget messages, checkpoints and `*_MB` variables. */
export const MiB = 1024 * 1024;

/**
 * A guard was used after its `close()`: it has let go of what it held (an
 * open directory, a timer, a CPU monitor) and no longer answers checks, so
 * that a closed guard can never be mistaken for one that says "ok".
 */
export class GuardClosedError extends ResourceError {
  constructor(
    /** Class of the closed guard, e.g. 'DiskSpaceGuard'. */
    readonly guard: string,
    /** What it guarded (a path), when that helps tell guards apart. */
    readonly target?: string,
  ) {
    super('ERR_GUARD_CLOSED', `The ${guard}${target === undefined ? '' : ` on ${JSON.stringify(target)}`} is closed`);
  }
}

/** A monotonic clock in milliseconds. */
export type Clock = () => number;

/**
 * The native monotonic clock (CLOCK_MONOTONIC on Linux), the same clock as
 * the sampler's `timestampMs`, so readings from both can be mixed.
 */
export const monotonicClock: Clock = () => binding.monotonicMs();

/** Wall-clock milliseconds since the epoch. */
export const wallClock: Clock = () => Date.now();

/** Options object or undefined; anything else is a type error. */
export function optionsObject<T extends object>(value: unknown, name: string): Partial<T> {
  if (value === undefined) return {};
  return validateObject<Partial<T>>(value, name);
}

/** An optional size (number of bytes or '512MB'-style string). */
export function optionalSize(value: unknown, name: string): number | undefined {
  return value === undefined ? undefined : parseSize(value, name);
}

/** An optional clock function. */
export function optionalClock(value: unknown, name: string): Clock | undefined {
  return value === undefined ? undefined : validateFunction<Clock>(value, name);
}

/** An object that has the named methods. */
export function validateSource<T extends object>(value: unknown, name: string, methods: readonly string[]): T {
  const obj = validateObject<Record<string, unknown>>(value, name);
  for (const m of methods) {
    if (typeof obj[m] !== 'function') throw new InvalidArgTypeError(`${name}.${m}`, 'of type function', obj[m]);
  }
  return obj as T;
}

/** A byte count a source returned: a finite number >= 0, else NaN ("unknown"). */
export function sane(value: unknown): number {
  return typeof value === 'number' && value >= 0 && value < Infinity ? value : NaN;
}

/** `a <= b` for a pair of limits, as a RangeError naming both. */
export function requireOrder(lowName: string, low: number, highName: string, high: number): void {
  if (!(low <= high)) throw new OutOfRangeError(lowName, `<= ${highName} (${high})`, low);
}

/** Whole mebibytes, rounded down, as the budget messages print them. */
export function toMB(bytes: number): number {
  return Math.floor(bytes / MiB);
}

/** A percentage with at most one decimal: 80, 75.5. */
export function percentText(fraction: number): string {
  return String(Math.round(fraction * 1000) / 10);
}

// ---- environment variables ----------------------------------------------------------

/**
 * A size from the variable `key` (the size language: a number with a unit,
 * '512MiB', '2Gi', '500MB'; a bare number is refused with a message that
 * suggests a unit), or from its legacy name `key + '_MB'`, where a bare
 * number counts mebibytes (2^20 bytes), as it always did. Setting both is
 * refused, naming both.
 */
export function envSize(env: Record<string, string | undefined>, key: string): number | undefined {
  const legacy = `${key}_MB`;
  const raw = env[key];
  const old = env[legacy];
  const given = raw !== undefined && raw.trim() !== '';
  const oldGiven = old !== undefined && old.trim() !== '';
  if (given && oldGiven) {
    throw new InvalidArgValueError(legacy, old, `cannot be set together with ${key} (${JSON.stringify(raw)}); keep ${key} only`);
  }
  if (given) {
    const text = raw.trim();
    if (/^\d+(\.\d+)?$/.test(text)) {
      throw new InvalidArgValueError(
        key,
        raw,
        `has no unit: write '${text}MiB' or '${text}Mi' (2^20 bytes each), '${text}MB' (10^6 bytes each) or '${text}B' for bytes; the legacy ${legacy} counts a bare number in MiB`,
      );
    }
    return parseSize(text, key);
  }
  return oldGiven ? envMegabytes(env, legacy) : undefined;
}

/**
 * A size from a legacy `*_MB` variable: a bare number counts mebibytes
 * (2^20 bytes); a value with a unit ('2GiB', '500MB') is parsed like any
 * other size.
 */
export function envMegabytes(env: Record<string, string | undefined>, key: string): number | undefined {
  const raw = env[key];
  if (raw === undefined || raw.trim() === '') return undefined;
  const text = raw.trim();
  if (/^\d+(\.\d+)?$/.test(text)) {
    const bytes = Math.floor(Number(text) * MiB);
    if (!Number.isSafeInteger(bytes)) throw new OutOfRangeError(key, `at most ${Number.MAX_SAFE_INTEGER} bytes`, raw);
    return bytes;
  }
  return parseSize(text, key);
}

/** A fraction from a variable: '0.85' or '85%'. */
export function envFraction(env: Record<string, string | undefined>, key: string): number | undefined {
  const raw = env[key];
  if (raw === undefined || raw.trim() === '') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(raw);
  if (!m) throw new InvalidArgValueError(key, raw, "must be a fraction such as 0.85 or a percentage such as '85%'");
  const value = Number(m[1]) / (m[2] === '%' ? 100 : 1);
  if (!(value > 0 && value <= 1)) throw new OutOfRangeError(key, "> 0 and <= 1 (or '0%' < p <= '100%')", raw);
  return value;
}

/** A non-negative integer from a variable. */
export function envInteger(env: Record<string, string | undefined>, key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = env[key];
  if (raw === undefined || raw.trim() === '') return undefined;
  if (!/^\s*\d+\s*$/.test(raw)) throw new InvalidArgValueError(key, raw, 'must be a whole number');
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new OutOfRangeError(key, max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`, raw);
  }
  return value;
}

/** A switch from a variable: 1/0, true/false, yes/no, on/off. */
export function envBoolean(env: Record<string, string | undefined>, key: string): boolean | undefined {
  const raw = env[key];
  if (raw === undefined || raw.trim() === '') return undefined;
  const v = raw.trim().toLowerCase();
  if (v === '1' || v === 'true' || v === 'yes' || v === 'on') return true;
  if (v === '0' || v === 'false' || v === 'no' || v === 'off') return false;
  throw new InvalidArgValueError(key, raw, 'must be one of 1, 0, true, false, yes, no, on, off');
}

/**
 * The operation interval of a guard's "check every N operations" mode:
 * `checkInterval` (default 100, an integer from 1 to 2^31), divided by five
 * and rounded up when `aggressive` is true. Both options are validated.
 */
export function operationInterval(checkInterval: unknown, aggressive: unknown, prefix: string): number {
  const interval = checkInterval === undefined ? 100 : validateInteger(checkInterval, `${prefix}.checkInterval`, 1, 2 ** 31);
  const fast = aggressive === undefined ? false : validateBoolean(aggressive, `${prefix}.aggressive`);
  return fast ? Math.max(1, Math.ceil(interval / 5)) : interval;
}
