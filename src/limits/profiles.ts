/**
 * Limit profiles: presets for typical tasks, and custom profiles built on
 * them. The figures follow the sandbox guide's memory and fuel tables:
 * 16-32 MB and about a million fuel units for simple calculations and text,
 * 128 MB and ten million for data processing, 512 MB and a hundred million
 * for heavy work, with timeouts from 10 s to the 5 minute ceiling it gives.
 *
 * @module
 */
import { InvalidArgTypeError, InvalidArgValueError, OutOfRangeError } from '../errors';
import { parseSize, validateNumber, validateObject, validateOneOf } from '../validate';
import type { Limits, ProfileName, ResolvedLimits } from './types';

const MiB = 1024 * 1024;

/** The preset profiles. */
export const profiles: Readonly<Record<ProfileName, Readonly<Required<Omit<Limits, 'profile'>>>>> = Object.freeze({
  /** Small calculations and text processing. */
  lightweight: Object.freeze({
    heap: 32 * MiB,
    rssGrowth: 64 * MiB,
    timeout: 10_000,
    cpuTime: 10_000,
    fuel: 1_000_000,
    ioWrite: 10 * MiB,
    ioRead: 10 * MiB,
  }),
  /** Typical application work: moderate data sets, image processing. */
  standard: Object.freeze({
    heap: 128 * MiB,
    rssGrowth: 256 * MiB,
    timeout: 30_000,
    cpuTime: 30_000,
    fuel: 10_000_000,
    ioWrite: 100 * MiB,
    ioRead: 100 * MiB,
  }),
  /** Large data processing. */
  heavy: Object.freeze({
    heap: 512 * MiB,
    rssGrowth: 1024 * MiB,
    timeout: 300_000,
    cpuTime: 300_000,
    fuel: 100_000_000,
    ioWrite: 1024 * MiB,
    ioRead: 1024 * MiB,
  }),
});

export const PROFILE_NAMES: readonly ProfileName[] = Object.freeze(['lightweight', 'standard', 'heavy'] as const);

const KEYS = ['profile', 'heap', 'rssGrowth', 'timeout', 'cpuTime', 'fuel', 'ioWrite', 'ioRead'] as const;

/**
 * A custom profile: `base` (a preset name or other limits) with `overrides`
 * applied. The result is frozen, validated, and can be passed anywhere limits
 * are accepted or used as the base of another profile.
 */
export function defineProfile(base: ProfileName | Limits, overrides: Limits = {}): Readonly<Limits> {
  const from: Limits =
    typeof base === 'string'
      ? { profile: validateOneOf(base, 'base', PROFILE_NAMES) }
      : typeof base === 'object' && base !== null && !Array.isArray(base)
        ? base
        : invalidBase(base);
  resolveLimits(from, 'base');
  resolveLimits(overrides, 'overrides');
  if (overrides.profile !== undefined) {
    throw new InvalidArgValueError('overrides.profile', overrides.profile, 'cannot be set (pass the profile as the base)');
  }
  return Object.freeze({ ...expand(from, 'base'), ...stripProfile(overrides) });
}

function invalidBase(base: unknown): never {
  throw new InvalidArgTypeError('base', `one of ${PROFILE_NAMES.map((n) => `'${n}'`).join(', ')} or a limits object`, base);
}

/**
 * Applies the profile and parses sizes. Accepts a profile name or a
 * {@link Limits} object; unknown keys are refused so a typo cannot silently
 * remove a limit.
 */
export function resolveLimits(limits: ProfileName | Limits | undefined, name = 'limits'): ResolvedLimits {
  if (limits === undefined) limits = {};
  const given: Limits = typeof limits === 'string' ? { profile: validateOneOf(limits, name, PROFILE_NAMES) } : validateObject<Limits>(limits, name);
  for (const key of Object.keys(given)) {
    if (!(KEYS as readonly string[]).includes(key)) {
      throw new InvalidArgValueError(`${name}.${key}`, (given as Record<string, unknown>)[key], `is not a known limit (use ${KEYS.join(', ')})`);
    }
  }
  const l = expand(given, name);
  const heap = size(l.heap, `${name}.heap`);
  if (heap !== null && heap < MiB) throw new OutOfRangeError(`${name}.heap`, 'at least 1 MiB', l.heap);
  return {
    profile: given.profile ?? null,
    // The Worker takes whole MiB; report what it is given.
    heap: heap === null ? null : Math.ceil(heap / MiB) * MiB,
    rssGrowth: size(l.rssGrowth, `${name}.rssGrowth`),
    timeout: millis(l.timeout, `${name}.timeout`),
    cpuTime: millis(l.cpuTime, `${name}.cpuTime`),
    fuel: fuel(l.fuel, `${name}.fuel`),
    ioWrite: size(l.ioWrite, `${name}.ioWrite`),
    ioRead: size(l.ioRead, `${name}.ioRead`),
  };
}

/** The profile's figures with the given ones on top (`profile` removed). */
function expand(given: Limits, name: string): Omit<Limits, 'profile'> {
  if (given.profile === undefined) return stripProfile(given);
  const p = profiles[validateOneOf(given.profile, `${name}.profile`, PROFILE_NAMES)];
  return { ...p, ...stripProfile(given) };
}

function stripProfile(l: Limits): Omit<Limits, 'profile'> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(l)) if (k !== 'profile' && v !== undefined) out[k] = v;
  return out as Omit<Limits, 'profile'>;
}

function size(v: unknown, name: string): number | null {
  if (v === undefined || v === null || v === Infinity) return null;
  return parseSize(v, name);
}

function millis(v: unknown, name: string): number | null {
  if (v === undefined || v === null || v === Infinity) return null;
  validateNumber(v, name, 0);
  if ((v as number) <= 0 || (v as number) > 2 ** 31 - 1) throw new OutOfRangeError(name, 'a number of milliseconds > 0 and <= 2147483647', v);
  return v as number;
}

function fuel(v: unknown, name: string): number | null {
  if (v === undefined || v === null || v === Infinity) return null;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER) return v;
  validateNumber(v, name);
  throw new OutOfRangeError(name, `an integer >= 0 and <= ${Number.MAX_SAFE_INTEGER}`, v);
}
