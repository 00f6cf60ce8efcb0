/**
 * DiskSpaceGuard: free space on the file system of an output directory, with
 * a hard minimum, a soft warning level, a reserve kept on top of the minimum
 * for writes, and a check every N recorded operations.
 *
 * A path whose free space cannot be read is "unknown": its figures are null,
 * never a guessed 0 or Infinity, and every check that needs them fails closed
 * with {@link DiskSpaceUnknownError}.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import * as nodePath from 'node:path';
import { binding } from '../binding';
import { DiskSpaceError, InvalidArgValueError } from '../errors';
import { DiskReader, readDisk } from '../sampler';
import { parseSize, validateInteger, validateString } from '../validate';
import { DiskSpaceUnknownError } from './errors';
import { estimateOutputSize, type OutputSizeOptions } from './estimate';
import { MiB, optionalSize, optionsObject, requireOrder, sane, validateSource } from './internal';

/** One reading of a {@link DiskSource}, bytes. */
export interface DiskReading {
  /** Bytes an unprivileged process may still write. */
  available: number;
  /** Size of the file system. */
  total?: number;
}

/** Where a {@link DiskSpaceGuard} reads free space. The native reader (`readDisk`) is the default. */
export interface DiskSource {
  /** Reads the file system holding `path`; throws when it cannot. */
  read(path: string): DiskReading;
}

/** Options of {@link DiskSpaceGuard}. */
export interface DiskSpaceGuardOptions {
  /**
   * The output directory. Resolved to an absolute path once, at construction.
   * @default process.cwd()
   */
  path?: string;
  /**
   * Free space below which {@link DiskSpaceGuard.assert} throws. Exactly at
   * the minimum passes.
   * @default 100 MiB
   */
  minFree?: number | string;
  /**
   * Free space below which the `soft` event fires.
   * @default 5 × minFree
   */
  softFree?: number | string;
  /**
   * Bytes {@link DiskSpaceGuard.checkBeforeWrite} keeps free on top of
   * `minFree` (room for writes that are not checked one by one).
   * @default 0
   */
  reserve?: number | string;
  /**
   * {@link DiskSpaceGuard.recordWrite} re-reads free space (and asserts) every
   * this many operations.
   * @default 100
   */
  checkInterval?: number;
  /** Where to read free space. @default the native reader (`readDisk`) */
  source?: DiskSource;
}

/** What {@link DiskSpaceGuard.check} returns. */
export interface DiskSpaceStatus {
  path: string;
  /** 'unknown' when free space could not be read. */
  state: 'ok' | 'low' | 'critical' | 'unknown';
  /** Bytes available to this process, or null when unknown. */
  available: number | null;
  /** Size of the file system, or null when unknown. */
  total: number | null;
  minFree: number;
  softFree: number;
  reserve: number;
  /** `available < softFree`, or null when unknown. */
  belowSoft: boolean | null;
  /** `available < minFree`, or null when unknown. */
  belowMinimum: boolean | null;
  /** Why the figures are unknown, else null. */
  reason: unknown;
}

/** Counters of a {@link DiskSpaceGuard} since construction or reset(). */
export interface DiskSpaceGuardStats {
  /** Fresh readings taken (check, assert, checkBeforeWrite, periodic). */
  checks: number;
  /** Times free space fell below `softFree`. */
  softWarnings: number;
  /** Times free space fell below `minFree`. */
  hardBreaches: number;
  /** Readings that failed. */
  unknownReadings: number;
  /** Calls of recordWrite(). */
  operations: number;
  /** Bytes passed to recordWrite(). */
  bytesWritten: number;
  /** Lowest free space read, or null if none was read. */
  lowestAvailable: number | null;
}

/** What {@link DiskSpaceGuard.estimateOutputSize} returns. */
export interface OutputPlan {
  /** Estimated bytes of the output. */
  bytes: number;
  /** Free space now, or null when unknown. */
  available: number | null;
  /** `minFree + reserve + bytes`. */
  required: number;
  /** Whether the output fits (false when free space is unknown). */
  fits: boolean;
}

/** Events of {@link DiskSpaceGuard}, each on crossing into the state. */
export type DiskSpaceGuardEvents = {
  soft: [DiskSpaceStatus];
  hard: [DiskSpaceStatus];
  unknown: [DiskSpaceStatus];
};

const ST_OK = 0;
const ST_LOW = 1;
const ST_CRITICAL = 2;
const ST_UNKNOWN = 3;
const STATES = ['ok', 'low', 'critical', 'unknown'] as const;

/**
 * Free-space guard for one output directory.
 *
 * ```ts
 * const disk = new DiskSpaceGuard({ path: './output', minFree: '1GiB', reserve: '100MiB' });
 * disk.checkBeforeWrite(chunk.length); // throws DiskSpaceError when it would not fit
 * fs.writeSync(fd, chunk);
 * disk.recordWrite(chunk.length);      // re-reads free space every 100 writes
 * ```
 */
export class DiskSpaceGuard extends EventEmitter<DiskSpaceGuardEvents> {
  /** The guarded directory, absolute. */
  readonly path: string;
  readonly #source: DiskSource | null;
  readonly #buf = new Float64Array(3);
  /** Kept-open directory for the default source; null until opened or after a failure. */
  #reader: DiskReader | null = null;
  readonly #minFree: number;
  readonly #softFree: number;
  readonly #reserve: number;
  readonly #interval: number;

  #state = -1;
  #available = NaN;
  #total = NaN;
  #reason: unknown = null;
  #sinceCheck = 0;
  #opsUntilCheck: number;

  #checks = 0;
  #softWarnings = 0;
  #hardBreaches = 0;
  #unknownReadings = 0;
  #operations = 0;
  #bytesWritten = 0;
  #lowest = NaN;

  constructor(options?: DiskSpaceGuardOptions) {
    super();
    const o = optionsObject<DiskSpaceGuardOptions>(options, 'options');
    const dir = o.path === undefined ? process.cwd() : validateString(o.path, 'options.path');
    if (dir === '' || dir.includes('\0')) {
      throw new InvalidArgValueError('options.path', dir, 'must be a non-empty path without null bytes');
    }
    const minFree = optionalSize(o.minFree, 'options.minFree') ?? 100 * MiB;
    const softFree = optionalSize(o.softFree, 'options.softFree') ?? Math.min(minFree * 5, Number.MAX_SAFE_INTEGER);
    const reserve = optionalSize(o.reserve, 'options.reserve') ?? 0;
    const interval = o.checkInterval === undefined ? 100 : validateInteger(o.checkInterval, 'options.checkInterval', 1, 2 ** 31);
    const source = o.source === undefined ? null : validateSource<DiskSource>(o.source, 'options.source', ['read']);
    requireOrder('options.minFree', minFree, 'options.softFree', softFree);
    this.path = nodePath.resolve(dir);
    this.#minFree = minFree;
    this.#softFree = softFree;
    this.#reserve = reserve;
    this.#interval = interval;
    this.#opsUntilCheck = interval;
    this.#source = source;
  }

  /** Limits in force, bytes. */
  get limits(): { minFree: number; softFree: number; reserve: number; checkInterval: number } {
    return { minFree: this.#minFree, softFree: this.#softFree, reserve: this.#reserve, checkInterval: this.#interval };
  }

  /**
   * Free space at the last reading less the bytes recorded since, or null
   * when the last reading failed (or none was taken).
   */
  get estimatedAvailable(): number | null {
    return this.#state === ST_UNKNOWN || Number.isNaN(this.#available)
      ? null
      : Math.max(0, this.#available - this.#sinceCheck);
  }

  /** Reads free space now and returns the status. Never throws for low space. */
  check(): DiskSpaceStatus {
    this.#read();
    return this.#status();
  }

  /**
   * Reads free space now; throws {@link DiskSpaceError} (`ERR_DISK_SPACE`)
   * when it is below `minFree`, {@link DiskSpaceUnknownError}
   * (`ERR_DISK_SPACE_UNKNOWN`) when it cannot be read.
   */
  assert(): DiskSpaceStatus {
    const available = this.#read();
    if (Number.isNaN(available)) throw new DiskSpaceUnknownError(this.path, this.#reason);
    if (available < this.#minFree) throw new DiskSpaceError(this.path, available, this.#minFree);
    return this.#status();
  }

  /**
   * Passes (and returns the bytes available) when
   * `available >= minFree + reserve + bytes`, exactly, with no rounding of
   * small writes. Otherwise throws {@link DiskSpaceError} with the figures,
   * or {@link DiskSpaceUnknownError} when free space cannot be read.
   */
  checkBeforeWrite(bytes: number | string): number {
    const n = parseSize(bytes, 'bytes');
    const available = this.#read();
    if (Number.isNaN(available)) throw new DiskSpaceUnknownError(this.path, this.#reason);
    const required = this.#minFree + this.#reserve + n;
    if (available < required) throw new DiskSpaceError(this.path, available, required);
    return available;
  }

  /** {@link DiskSpaceGuard.checkBeforeWrite} as a boolean: false when it would throw. */
  canWrite(bytes: number | string): boolean {
    const n = parseSize(bytes, 'bytes');
    const available = this.#read();
    return available >= this.#minFree + this.#reserve + n;
  }

  /**
   * Records a completed write. Every `checkInterval` calls it re-reads free
   * space and throws as {@link DiskSpaceGuard.assert} does. A rejected
   * argument changes no counter.
   */
  recordWrite(bytes: number | string = 0): void {
    const n = parseSize(bytes, 'bytes');
    this.#operations++;
    this.#bytesWritten += n;
    this.#sinceCheck += n;
    if (--this.#opsUntilCheck <= 0) {
      this.#opsUntilCheck = this.#interval;
      this.assert();
    }
  }

  /** Estimates an output's size (see {@link estimateOutputSize}) and whether it fits now. */
  estimateOutputSize(options: OutputSizeOptions): OutputPlan {
    const bytes = estimateOutputSize(options);
    const available = this.#read();
    const required = this.#minFree + this.#reserve + bytes;
    return {
      bytes,
      available: Number.isNaN(available) ? null : available,
      required,
      fits: available >= required,
    };
  }

  /** Counters since construction or {@link DiskSpaceGuard.reset}. */
  stats(): DiskSpaceGuardStats {
    return {
      checks: this.#checks,
      softWarnings: this.#softWarnings,
      hardBreaches: this.#hardBreaches,
      unknownReadings: this.#unknownReadings,
      operations: this.#operations,
      bytesWritten: this.#bytesWritten,
      lowestAvailable: Number.isNaN(this.#lowest) ? null : this.#lowest,
    };
  }

  /** Clears the counters; a state that persists fires its event again at the next reading. */
  reset(): void {
    this.#checks = 0;
    this.#softWarnings = 0;
    this.#hardBreaches = 0;
    this.#unknownReadings = 0;
    this.#operations = 0;
    this.#bytesWritten = 0;
    this.#lowest = NaN;
    this.#state = -1;
    this.#opsUntilCheck = this.#interval;
  }

  // ---- internals --------------------------------------------------------------

  /** Takes a reading; returns available bytes or NaN (unknown). */
  #read(): number {
    this.#checks++;
    let available = NaN;
    let total = NaN;
    let reason: unknown = null;
    if (this.#source === null) {
      const buf = this.#buf;
      if (this.#reader === null) {
        try {
          this.#reader = DiskReader.open(this.path);
        } catch {
          this.#reader = null;
        }
      }
      const err = this.#reader !== null ? this.#reader.readInto(buf) : binding.readDisk(this.path, buf);
      if (err === 0) {
        total = buf[0]!;
        available = buf[2]!;
      } else {
        // Reopen next time (the directory may have been replaced).
        this.#reader?.close();
        this.#reader = null;
        // The sampler's reader turns the errno into the right PathError.
        try {
          const info = readDisk(this.path);
          total = info.total;
          available = info.available;
        } catch (err) {
          reason = err;
        }
      }
    } else {
      try {
        const r = this.#source.read(this.path);
        available = sane(r?.available);
        total = sane(r?.total ?? NaN);
        if (Number.isNaN(available)) reason = new TypeError(`source.read() returned no usable "available" figure`);
      } catch (err) {
        reason = err;
      }
    }
    this.#available = available;
    this.#total = total;
    this.#reason = reason;
    this.#sinceCheck = 0;
    this.#update(available);
    return available;
  }

  #update(available: number): void {
    let state: number;
    if (Number.isNaN(available)) {
      state = ST_UNKNOWN;
      this.#unknownReadings++;
    } else {
      if (!(available >= this.#lowest)) this.#lowest = available;
      state = available < this.#minFree ? ST_CRITICAL : available < this.#softFree ? ST_LOW : ST_OK;
    }
    const prev = this.#state;
    if (state === prev) return;
    this.#state = state;
    // Crossing downwards fires: ok -> low -> critical; critical counts as low too.
    const fireSoft = (state === ST_LOW || state === ST_CRITICAL) && prev !== ST_LOW && prev !== ST_CRITICAL;
    const fireHard = state === ST_CRITICAL;
    const fireUnknown = state === ST_UNKNOWN;
    if (fireSoft) this.#softWarnings++;
    if (fireHard) this.#hardBreaches++;
    if (fireSoft || fireHard || fireUnknown) {
      const status = this.#status();
      if (fireSoft) this.emit('soft', status);
      if (fireHard) this.emit('hard', status);
      if (fireUnknown) this.emit('unknown', status);
    }
  }

  #status(): DiskSpaceStatus {
    const known = this.#state !== ST_UNKNOWN && !Number.isNaN(this.#available);
    const available = this.#available;
    return {
      path: this.path,
      state: STATES[this.#state < 0 ? ST_UNKNOWN : this.#state]!,
      available: known ? available : null,
      total: known && !Number.isNaN(this.#total) ? this.#total : null,
      minFree: this.#minFree,
      softFree: this.#softFree,
      reserve: this.#reserve,
      belowSoft: known ? available < this.#softFree : null,
      belowMinimum: known ? available < this.#minFree : null,
      reason: known ? null : this.#reason,
    };
  }
}
