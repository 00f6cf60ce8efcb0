/**
 * The size language: how every size option reads a number of bytes.
 *
 * | form | meaning | example |
 * |---|---|---|
 * | a number | whole bytes | `1048576` |
 * | `B` | bytes | `'512B'` |
 * | `kB`/`KB`, `MB`, `GB`, `TB`, `PB` (any case) | powers of 1000 (SI) | `'512MB'` = 512 000 000 |
 * | `KiB`, `MiB`, `GiB`, `TiB`, `PiB` (any case) | powers of 1024 (IEC) | `'512MiB'` = 536 870 912 |
 * | `k`, `M`, `G`, `T`, `P`, `E` (exact case) | Kubernetes decimal: powers of 1000 | `'512M'` = 512 000 000 |
 * | `Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei` (exact case) | Kubernetes binary: powers of 1024 | `'512Mi'` = 536 870 912 |
 *
 * "MB" always means 10^6 bytes; "MiB" and "Mi" mean 2^20. A string without
 * a unit is refused (is `'95'` 95 bytes or 95 MiB?), with a message that
 * suggests one; pass a number for bytes. Kubernetes' `m` (milli) and bare
 * `K` are refused: a byte count has no thousandths, and `K` is not a
 * Kubernetes suffix. The value may have decimals (`'1.5GiB'`); the result is
 * rounded down to whole bytes and must be at most 2^53 - 1.
 *
 * @module
 */
import { InvalidArgTypeError, InvalidArgValueError, OutOfRangeError } from './errors';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** A size given as bytes or as a string with a unit such as `'512MB'`, `'2GiB'` or `'512Mi'`. */
export type Size = number | string;

/** Units matched in any case: SI and IEC byte units. */
const CASELESS: Readonly<Record<string, number>> = Object.freeze({
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  pb: 1e15,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  pib: 1024 ** 5,
});

/** Kubernetes quantity suffixes, matched exactly. */
const KUBERNETES: Readonly<Record<string, number>> = Object.freeze({
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
  Pi: 1024 ** 5,
  Ei: 1024 ** 6,
});

/** The multiplier of a unit, or undefined when it is not one. */
export function sizeUnit(unit: string): number | undefined {
  if (typeof unit !== 'string') throw new InvalidArgTypeError('unit', 'of type string', unit);
  if (Object.hasOwn(KUBERNETES, unit)) return KUBERNETES[unit];
  const lower = unit.toLowerCase();
  return Object.hasOwn(CASELESS, lower) ? CASELESS[lower] : undefined;
}

const UNIT_HELP = 'use B; kB, MB, GB, TB, PB or k, M, G, T, P, E for powers of 1000; KiB, MiB, GiB, TiB, PiB or Ki, Mi, Gi, Ti, Pi, Ei for powers of 1024';

/** Parses a size to whole bytes (see the module text). Throws a typed error naming `name`. */
export function parseSize(value: unknown, name = 'size'): number {
  if (typeof name !== 'string') throw new InvalidArgTypeError('name', 'of type string', name);
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0 || value > MAX_SAFE) {
      throw new OutOfRangeError(name, `an integer >= 0 and <= ${MAX_SAFE}`, value);
    }
    return value;
  }
  if (typeof value !== 'string') throw new InvalidArgTypeError(name, 'of type number or string', value);
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  if (!m) throw new InvalidArgValueError(name, value, "must be a size such as 1048576, '512MiB', '512Mi' or '2GB'");
  const digits = m[1]!;
  const unit = m[2]!;
  if (unit === '') {
    throw new InvalidArgValueError(
      name,
      value,
      `has no unit: write '${digits}B' for bytes, or '${digits}MiB' / '${digits}Mi' (2^20 bytes each) or '${digits}MB' (10^6 bytes each), or pass the number ${digits}`,
    );
  }
  if (unit === 'm') {
    throw new InvalidArgValueError(name, value, "uses 'm' (milli): a byte count has no thousandths; write 'M' or 'MB' (10^6 bytes) or 'Mi' (2^20 bytes)");
  }
  if (unit === 'K') {
    throw new InvalidArgValueError(name, value, "uses 'K', which is not a Kubernetes suffix; write 'k' or 'kB' (1000 bytes) or 'Ki' / 'KiB' (1024 bytes)");
  }
  const mult = sizeUnit(unit);
  if (mult === undefined) throw new InvalidArgValueError(name, value, `has an unknown unit (${UNIT_HELP})`);
  const bytes = Math.floor(Number(digits) * mult);
  if (!Number.isFinite(bytes) || bytes > MAX_SAFE) throw new OutOfRangeError(name, `at most ${MAX_SAFE} bytes`, value);
  return bytes;
}
