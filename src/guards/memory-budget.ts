/**
 * MemoryBudget: one process-wide memory ceiling, 80 % (configurable) of
 * physical RAM or of the cgroup's memory limit when one is set, checked
 * before expensive work with a one-line answer fit for an error dialog:
 *
 *     Memory limit exceeded: 12500 MiB / 13107 MiB (80% of system RAM)
 *
 * When usage and limit print as the same whole MiB, the exact bytes end
 * the message: `13107 MiB / 13107 MiB (80% of system RAM); exactly
 * 13743895348 bytes / 13743895347 bytes`.
 * Settings whose limit, `floor(total × fraction)`, would be 0 bytes are
 * refused (`ERR_OUT_OF_RANGE` for a configured total, `ERR_MEMORY_BUDGET`
 * for a RAM or cgroup reading), so fractions are always finite.
 *
 * The figures are whole MiB (2^20 bytes; 16 GiB of RAM reads 16384 MiB);
 * the `…MB()` methods, named after the reference design, count the same MiB.
 * Usage is the resident set size of the process, read fresh and cached for
 * 500 ms; a failed reading is not cached, and an unreadable usage fails
 * closed: checkUsage() throws rather than guess.
 *
 * @module
 */
import { MemoryBudgetError, OutOfRangeError } from '../errors';
import { readCgroup, readRss, readSystemMemory } from '../sampler';
import { validateFraction, validateNumber, validateObject } from '../validate';
import { type Clock, monotonicClock, optionalClock, optionalSize, optionsObject, percentText, sane, toMB, validateSource } from './internal';

/** Where a {@link MemoryBudget} reads memory. The native readers are the default. */
export interface MemoryBudgetSource {
  /** Bytes the process uses now (resident set size). */
  usage(): number;
  /** Physical RAM, bytes. */
  systemTotal(): number;
  /** The cgroup's memory limit in bytes, or null when there is none. */
  cgroupLimit(): number | null;
}

/** Options of {@link MemoryBudget}. */
export interface MemoryBudgetOptions {
  /**
   * Share of the base (RAM, or the cgroup limit) the process may use, in (0, 1].
   * @default 0.8
   */
  fraction?: number;
  /**
   * How long a usage reading is reused, milliseconds (0: read every time).
   * @default 500
   */
  cacheMs?: number;
  /**
   * An explicit base instead of RAM or the cgroup limit (bytes or '16GiB').
   * @default the cgroup memory limit when set and below RAM, else physical RAM
   */
  total?: number | string;
  /** Where to read memory; missing methods use the native readers. @default process RSS, physical RAM, the cgroup limit */
  source?: Partial<MemoryBudgetSource>;
  /** Monotonic milliseconds, for the cache. @default the sampler's clock */
  clock?: Clock;
}

/** A consistent set of the budget's figures. */
export interface MemoryBudgetStatus {
  /** Bytes in use (may come from the cache). */
  usage: number;
  limit: number;
  total: number;
  /** usage / limit. */
  usageFraction: number;
  usageMB: number;
  limitMB: number;
  totalMB: number;
  /** The configured fraction of the base, 0..1. */
  fraction: number;
  basis: 'system' | 'cgroup' | 'configured';
  exceeded: boolean;
}

const native: MemoryBudgetSource = {
  usage: () => readRss(),
  systemTotal: () => readSystemMemory().total,
  cgroupLimit: () => {
    try {
      return readCgroup().memoryLimit;
    } catch {
      return null;
    }
  },
};

let global: MemoryBudget | null = null;

/**
 * A memory ceiling for the whole process.
 *
 * ```ts
 * MemoryBudget.get().checkUsage(); // throws MemoryBudgetError (ERR_MEMORY_BUDGET) over the limit
 * ```
 */
export class MemoryBudget {
  /** Bytes of the base: RAM, the cgroup limit, or the configured total. */
  readonly total: number;
  /** Bytes allowed: `floor(total × fraction)`. */
  readonly limit: number;
  readonly fraction: number;
  readonly basis: 'system' | 'cgroup' | 'configured';
  readonly cacheMs: number;
  readonly #usage: () => number;
  readonly #clock: Clock;
  #cached = NaN;
  #cachedAt = -Infinity;

  constructor(options?: MemoryBudgetOptions) {
    const o = optionsObject<MemoryBudgetOptions>(options, 'options');
    const fraction = o.fraction === undefined ? 0.8 : validateFraction(o.fraction, 'options.fraction');
    const cacheMs = o.cacheMs === undefined ? 500 : validateNumber(o.cacheMs, 'options.cacheMs', 0, 3_600_000);
    const total = optionalSize(o.total, 'options.total');
    if (total === 0) throw new OutOfRangeError('options.total', '> 0', o.total);
    const clock = optionalClock(o.clock, 'options.clock');
    const given = o.source === undefined ? {} : validateObject<Partial<MemoryBudgetSource>>(o.source, 'options.source');
    for (const m of ['usage', 'systemTotal', 'cgroupLimit'] as const) {
      if (given[m] !== undefined) validateSource(given, 'options.source', [m]);
    }
    const source: MemoryBudgetSource = {
      usage: given.usage ?? native.usage,
      systemTotal: given.systemTotal ?? native.systemTotal,
      cgroupLimit: given.cgroupLimit ?? native.cgroupLimit,
    };

    let base: number;
    let basis: MemoryBudget['basis'];
    if (total !== undefined) {
      base = total;
      basis = 'configured';
    } else {
      const ram = sane(source.systemTotal());
      if (!(ram > 0)) throw new MemoryBudgetError(NaN, NaN, fraction * 100, 'Memory budget: physical RAM could not be read');
      const cg = source.cgroupLimit();
      if (typeof cg === 'number' && cg > 0 && cg < ram) {
        base = cg;
        basis = 'cgroup';
      } else {
        base = ram;
        basis = 'system';
      }
    }
    const limit = Math.floor(base * fraction);
    if (!(limit >= 1)) {
      // A limit of 0 bytes would make every fraction NaN or Infinity.
      if (basis === 'configured') {
        throw new OutOfRangeError('options.total', `a size whose fraction (${fraction}) is at least 1 byte`, o.total);
      }
      throw new MemoryBudgetError(
        toMB(base),
        0,
        fraction * 100,
        `Memory budget: ${fraction * 100}% of ${base} bytes (${basis === 'cgroup' ? 'the cgroup memory limit' : 'physical RAM'}) is less than 1 byte`,
      );
    }
    this.total = base;
    this.fraction = fraction;
    this.limit = limit;
    this.basis = basis;
    this.cacheMs = cacheMs;
    this.#usage = source.usage;
    this.#clock = clock ?? monotonicClock;
  }

  /**
   * The process-wide budget, created with default options on first use.
   * Each JS environment (main thread, worker) holds its own instance; all
   * of them measure the same process and compute the same limit.
   */
  static get(): MemoryBudget {
    global ??= new MemoryBudget();
    return global;
  }

  /**
   * Creates the process-wide budget with these options and makes it the one
   * {@link MemoryBudget.get} returns. Invalid options throw and leave the
   * current one in place.
   */
  static initialize(options?: MemoryBudgetOptions): MemoryBudget {
    const budget = new MemoryBudget(options);
    global = budget;
    return budget;
  }

  /** Bytes in use, from the cache when it is younger than `cacheMs`. Throws when usage cannot be read. */
  currentUsage(): number {
    const now = this.#clock();
    if (now - this.#cachedAt < this.cacheMs && this.#cachedAt <= now) return this.#cached;
    const value = sane(this.#usage());
    if (Number.isNaN(value)) throw new TypeError('memory usage reading is not a number >= 0');
    this.#cached = value;
    this.#cachedAt = now;
    return value;
  }

  /** Usage in whole MiB (2^20 bytes). */
  currentUsageMB(): number {
    return toMB(this.currentUsage());
  }

  /** The limit in whole MiB (2^20 bytes). */
  limitMB(): number {
    return toMB(this.limit);
  }

  /** The base in whole MiB (2^20 bytes). */
  totalMB(): number {
    return toMB(this.total);
  }

  /** usage / limit: 1 means exactly at the limit. */
  usageFraction(): number {
    return this.currentUsage() / this.limit;
  }

  /** usage / limit × 100. */
  usagePercent(): number {
    return this.usageFraction() * 100;
  }

  /** Whether usage is within the limit; false when usage cannot be read (fails closed). */
  withinBudget(): boolean {
    try {
      return this.currentUsage() <= this.limit;
    } catch {
      return false;
    }
  }

  /**
   * Throws {@link MemoryBudgetError} (`ERR_MEMORY_BUDGET`) when usage is
   * strictly above the limit, or when usage cannot be read.
   */
  checkUsage(): void {
    let usage: number;
    try {
      usage = this.currentUsage();
    } catch (cause) {
      const err = new MemoryBudgetError(
        NaN,
        this.limitMB(),
        this.fraction * 100,
        `Memory limit check failed: current usage could not be read (${cause instanceof Error ? cause.message : String(cause)}); ` +
          `refusing as if over the limit of ${this.limitMB()} MiB (${this.#of()})`,
      );
      err.cause = cause;
      throw err;
    }
    if (usage > this.limit) {
      const current = toMB(usage);
      const limitMB = this.limitMB();
      // Whole MiB can print alike for different figures: then give the bytes too.
      const exact = current === limitMB ? `; exactly ${usage} bytes / ${this.limit} bytes` : '';
      throw new MemoryBudgetError(current, limitMB, this.fraction * 100, `Memory limit exceeded: ${current} MiB / ${limitMB} MiB (${this.#of()})${exact}`);
    }
  }

  /** All figures at once (usage may come from the cache). Throws when usage cannot be read. */
  status(): MemoryBudgetStatus {
    const usage = this.currentUsage();
    return {
      usage,
      limit: this.limit,
      total: this.total,
      usageFraction: usage / this.limit,
      usageMB: toMB(usage),
      limitMB: this.limitMB(),
      totalMB: this.totalMB(),
      fraction: this.fraction,
      basis: this.basis,
      exceeded: usage > this.limit,
    };
  }

  /** Forgets the cached reading. */
  invalidate(): void {
    this.#cachedAt = -Infinity;
  }

  /** `Memory budget initialized: total 16384 MiB, limit 13107 MiB (80%)`. */
  describe(): string {
    return `Memory budget initialized: total ${this.totalMB()} MiB, limit ${this.limitMB()} MiB (${percentText(this.fraction)}%${
      this.basis === 'system' ? '' : this.basis === 'cgroup' ? ' of the cgroup limit' : ' of the configured total'
    })`;
  }

  #of(): string {
    const pct = `${percentText(this.fraction)}%`;
    if (this.basis === 'system') return `${pct} of system RAM`;
    if (this.basis === 'cgroup') return `${pct} of the cgroup memory limit`;
    return `${pct} of ${this.totalMB()} MiB`;
  }
}
