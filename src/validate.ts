/**
 * Argument validation shared by every public function. One message template
 * per failure, Node-style codes. Validation happens before any native call
 * and before any state changes, so a rejected call leaves everything as it was.
 *
 * @module
 */
import { InvalidArgTypeError, InvalidArgValueError, OutOfRangeError } from './errors';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** A byte count: an integer from 0 to 2^53 - 1 (no strings, no rounding). */
export function validateBytes(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(name, 'of type number', value);
  if (!Number.isInteger(value) || value < 0 || value > MAX_SAFE) {
    throw new OutOfRangeError(name, `an integer >= 0 and <= ${MAX_SAFE}`, value);
  }
  return value;
}

/** A finite number within [min, max]. */
export function validateNumber(value: unknown, name: string, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(name, 'of type number', value);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new OutOfRangeError(name, rangeText(min, max, 'a finite number'), value);
  }
  return value;
}

/** An integer within [min, max]. */
export function validateInteger(value: unknown, name: string, min = 0, max = MAX_SAFE): number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(name, 'of type number', value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new OutOfRangeError(name, rangeText(min, max, 'an integer'), value);
  }
  return value;
}

/** A fraction in (0, 1] unless told otherwise. */
export function validateFraction(value: unknown, name: string, allowZero = false): number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(name, 'of type number', value);
  if (!Number.isFinite(value) || value > 1 || (allowZero ? value < 0 : value <= 0)) {
    throw new OutOfRangeError(name, allowZero ? '>= 0 and <= 1' : '> 0 and <= 1', value);
  }
  return value;
}

export function validateString(value: unknown, name: string): string {
  if (typeof value !== 'string') throw new InvalidArgTypeError(name, 'of type string', value);
  return value;
}

export function validateBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw new InvalidArgTypeError(name, 'of type boolean', value);
  return value;
}

export function validateFunction<T extends (...args: never[]) => unknown>(value: unknown, name: string): T {
  if (typeof value !== 'function') throw new InvalidArgTypeError(name, 'of type function', value);
  return value as T;
}

export function validateObject<T extends object>(value: unknown, name: string): T {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgTypeError(name, 'of type object', value);
  }
  return value as T;
}

export function validateOneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string') throw new InvalidArgTypeError(name, 'of type string', value);
  if (!(allowed as readonly string[]).includes(value)) {
    throw new InvalidArgValueError(name, value, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
  }
  return value as T;
}

/**
 * The busy and idle microseconds between two host CPU readings `a` and `b`
 * (objects with finite `busyUs` and `idleUs` >= 0), refusing a `b` whose
 * counters are below `a`'s with `ERR_INVALID_ARG_VALUE`.
 */
export function validateCpuInterval(a: unknown, b: unknown): [busy: number, idle: number] {
  const aBusy = cpuField(a, 'a', 'busyUs');
  const aIdle = cpuField(a, 'a', 'idleUs');
  const bBusy = cpuField(b, 'b', 'busyUs');
  const bIdle = cpuField(b, 'b', 'idleUs');
  const busy = bBusy - aBusy;
  const idle = bIdle - aIdle;
  if (busy < 0 || idle < 0) {
    const what = busy < 0 ? `busyUs went back from ${aBusy} to ${bBusy}` : `idleUs went back from ${aIdle} to ${bIdle}`;
    throw new InvalidArgValueError('b', b, `is not a reading taken after a: ${what}`);
  }
  return [busy, idle];
}

function cpuField(reading: unknown, name: string, field: 'busyUs' | 'idleUs'): number {
  if (typeof reading !== 'object' || reading === null) throw new InvalidArgTypeError(name, 'of type object', reading);
  const v = (reading as Record<string, unknown>)[field];
  if (typeof v !== 'number') throw new InvalidArgTypeError(`${name}.${field}`, 'of type number', v);
  if (!Number.isFinite(v) || v < 0 || v > MAX_SAFE) throw new OutOfRangeError(`${name}.${field}`, `a number >= 0 and <= ${MAX_SAFE}`, v);
  return v;
}

// ---- sizes ----------------------------------------------------------------------

// Size parsing lives in ./size (one language for every option, variable and
// message); re-exported here for the modules that import it from validate.
export { parseSize, type Size } from './size';

function rangeText(min: number, max: number, what: string): string {
  if (min === -Infinity && max === Infinity) return what;
  if (min === -Infinity) return `${what} <= ${max}`;
  if (max === Infinity) return `${what} >= ${min}`;
  return `${what} >= ${min} and <= ${max}`;
}
