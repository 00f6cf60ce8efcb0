/**
 * Typed errors. Every failure resource-guard reports is an instance of a
 * class below with a stable `code` string and the numbers that explain it,
 * so callers branch on `err.code` (or `instanceof`) rather than on messages.
 *
 * Bad arguments are reported the way Node's own APIs do: `TypeError` or
 * `RangeError` with `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE` or
 * `ERR_OUT_OF_RANGE`.
 *
 * @module
 */

/** Base class of every resource failure. */
export class ResourceError extends Error {
  /** Stable machine-readable code, e.g. `ERR_MEMORY_LIMIT`. */
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Memory above a hard limit (RSS or V8 heap). */
export class MemoryLimitError extends ResourceError {
  constructor(
    readonly current: number,
    readonly limit: number,
    readonly kind: 'rss' | 'heap',
    message?: string,
  ) {
    super(
      'ERR_MEMORY_LIMIT',
      message ??
        `${kind === 'rss' ? 'Resident memory' : 'V8 heap'} ${pairText(current, limit, ' is above the hard limit of ')}`,
    );
  }
}

/** The process-wide memory budget (80 % of RAM by default) is exceeded. */
export class MemoryBudgetError extends ResourceError {
  constructor(
    readonly currentMB: number,
    readonly limitMB: number,
    readonly percentOfSystem: number,
    message?: string,
  ) {
    super(
      'ERR_MEMORY_BUDGET',
      message ??
        `Memory limit exceeded: ${currentMB} MB / ${limitMB} MB (${percentOfSystem}% of system RAM)`,
    );
  }
}

/** Not enough free disk space for the operation. */
export class DiskSpaceError extends ResourceError {
  constructor(
    readonly path: string,
    readonly available: number,
    readonly required: number,
    message?: string,
  ) {
    super(
      'ERR_DISK_SPACE',
      message ??
        `Not enough disk space at ${path}: ${pairText(available, required, ' available, ')} required`,
    );
  }
}

/** CPU load above the critical threshold. */
export class CpuOverloadError extends ResourceError {
  constructor(
    readonly load: number,
    readonly threshold: number,
  ) {
    super(
      'ERR_CPU_OVERLOAD',
      `CPU load ${(load * 100).toFixed(1)}% is at or above the critical threshold of ${(threshold * 100).toFixed(1)}%`,
    );
  }
}

/** Work refused because the degradation level is too high. */
export class DegradedError extends ResourceError {
  constructor(
    readonly level: string,
    message?: string,
  ) {
    super('ERR_DEGRADED', message ?? `Refused: the process is degraded to level '${level}'`);
  }
}

/** A filesystem path could not be read (missing, not a directory, no access). */
export class PathError extends ResourceError {
  constructor(
    code: 'ERR_PATH_NOT_FOUND' | 'ERR_NOT_A_DIRECTORY' | 'ERR_PATH_UNREADABLE',
    readonly path: string,
    readonly errno: number,
    reason: string,
  ) {
    super(code, `Cannot read disk space for ${JSON.stringify(path)}: ${reason}`);
  }
}

/** A kernel interface could not be read. */
export class SamplerError extends ResourceError {
  constructor(
    readonly source: string,
    readonly errno: number,
  ) {
    super('ERR_SAMPLER', `Could not read ${source} (errno ${errno})`);
  }
}

/** Codes of {@link BudgetError}. */
export type BudgetErrorCode =
  | 'ERR_BUDGET_EXCEEDED'
  | 'ERR_BUDGET_RELEASE_EXCEEDS_HELD'
  | 'ERR_BUDGET_NOT_FOUND'
  | 'ERR_BUDGET_LIMIT_MISMATCH'
  | 'ERR_BUDGET_TOO_MANY'
  | 'ERR_BUDGET_CLOSED'
  | 'ERR_BUDGET_LIMIT_BELOW_USAGE'
  /** A machine budget's file belongs to another user, is open to other users, or is not a regular file. */
  | 'ERR_BUDGET_FOREIGN'
  /** A machine budget's file is not one this version made: wrong magic, version, size or contents. */
  | 'ERR_BUDGET_CORRUPT'
  /** Machine budgets are not available on this platform. */
  | 'ERR_BUDGET_UNSUPPORTED'
  /** A machine budget's directory or file could not be used (see `cause`). */
  | 'ERR_BUDGET_IO'
  /** A machine budget's lock stayed taken too long (a stuck or damaged file). */
  | 'ERR_BUDGET_LOCK_TIMEOUT'
  /** This process's entry in a machine budget's file was taken from it (the file was tampered with). */
  | 'ERR_BUDGET_LOST';

/** A process-wide byte budget refused an operation. */
export class BudgetError extends ResourceError {
  constructor(
    code: BudgetErrorCode,
    message: string,
    /** Budget name ('' for a private budget). */
    readonly budget: string,
    /** Bytes the operation asked for (reserve, release or new limit). */
    readonly requested: number,
    /** The budget's limit at the time, or NaN when unknown. */
    readonly limit: number,
    /** Bytes reserved at the time (process-wide), or NaN when unknown. */
    readonly current: number,
  ) {
    super(code, message);
  }
}

/** A reservation would take a budget above its limit. */
export class BudgetExceededError extends BudgetError {
  constructor(budget: string, requested: number, limit: number, current: number) {
    super(
      'ERR_BUDGET_EXCEEDED',
      `Budget ${budget ? JSON.stringify(budget) : '(private)'} cannot reserve ${requested} bytes: ` +
        `${current} of ${limit} bytes in use (${percent(current, limit)}%)`,
      budget,
      requested,
      limit,
      current,
    );
  }
}

/**
 * A `dispose` callback of a {@link BudgetedCache} tried to change the cache
 * while one of the cache's own operations was running it.
 */
export class CacheReentrancyError extends ResourceError {
  constructor(
    /** The refused method. */
    readonly method: string,
  ) {
    super(
      'ERR_CACHE_REENTRANT',
      `BudgetedCache#${method}() was called from a dispose callback during a cache operation; ` +
        'a dispose callback may read the cache but not change it (defer the change, e.g. with queueMicrotask)',
    );
  }
}

/** A file for checkpoint lines cannot be opened for appending. */
export class CheckpointFileError extends ResourceError {
  constructor(
    readonly path: string,
    /** The system error code, e.g. 'ENOENT'. */
    readonly syscallCode: string,
    reason: string,
  ) {
    super('ERR_CHECKPOINT_FILE', `Cannot append checkpoint lines to ${JSON.stringify(path)}: ${reason}`);
  }
}

/** `TypeError` with `code: 'ERR_ILLEGAL_CONSTRUCTOR'`: a class only the library creates. */
export class IllegalConstructorError extends TypeError {
  readonly code = 'ERR_ILLEGAL_CONSTRUCTOR';
  constructor(name: string, factory: string) {
    super(`Illegal constructor: ${name} objects come from ${factory}`);
    this.name = 'TypeError';
  }
}

// ---- argument errors, shaped like Node's --------------------------------------

/** `TypeError` with `code: 'ERR_INVALID_ARG_TYPE'`. */
export class InvalidArgTypeError extends TypeError {
  readonly code = 'ERR_INVALID_ARG_TYPE';
  constructor(name: string, expected: string, actual: unknown) {
    super(`The "${name}" argument must be ${expected}. Received ${describe(actual)}`);
    this.name = 'TypeError';
  }
}

/** `TypeError` with `code: 'ERR_INVALID_ARG_VALUE'`. */
export class InvalidArgValueError extends TypeError {
  readonly code = 'ERR_INVALID_ARG_VALUE';
  constructor(name: string, actual: unknown, reason: string) {
    super(`The argument '${name}' ${reason}. Received ${describe(actual)}`);
    this.name = 'TypeError';
  }
}

/** `RangeError` with `code: 'ERR_OUT_OF_RANGE'`. */
export class OutOfRangeError extends RangeError {
  readonly code = 'ERR_OUT_OF_RANGE';
  constructor(name: string, range: string, actual: unknown) {
    super(`The value of "${name}" is out of range. It must be ${range}. Received ${describe(actual)}`);
    this.name = 'RangeError';
  }
}

/** Short description of a received value, as Node prints it. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  switch (typeof value) {
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'bigint':
      return `${value}n`;
    case 'string': {
      const s = value.length > 28 ? `${value.slice(0, 25)}...` : value;
      return `type string (${JSON.stringify(s)})`;
    }
    case 'function':
      return `function ${(value as { name?: string }).name || '<anonymous>'}`;
    case 'object': {
      const ctor = (value as object).constructor;
      return ctor && ctor.name ? `an instance of ${ctor.name}` : 'an object';
    }
    default:
      return `type ${typeof value} (${String(value)})`;
  }
}

/** Human-readable byte count (binary units), for messages. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = Math.abs(bytes);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const text = i === 0 ? String(v) : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2);
  return `${bytes < 0 ? '-' : ''}${text} ${units[i]}`;
}

/**
 * Two byte counts for a message that compares them: as {@link formatBytes}
 * prints them, unless that prints two different counts alike (1025 MiB and
 * 1024 MiB both read "1.00 GiB"); then both as exact bytes ("1074790400
 * bytes"), so the message shows the difference.
 */
export function formatBytePair(a: number, b: number): [string, string] {
  const fa = formatBytes(a);
  const fb = formatBytes(b);
  if (fa !== fb || a === b || !Number.isFinite(a) || !Number.isFinite(b)) return [fa, fb];
  return [`${a} bytes`, `${b} bytes`];
}

function pairText(a: number, b: number, between: string): string {
  const [fa, fb] = formatBytePair(a, b);
  return `${fa}${between}${fb}`;
}

function percent(current: number, limit: number): string {
  if (!(limit > 0)) return current > 0 ? '100' : '0';
  return ((current / limit) * 100).toFixed(1);
}
