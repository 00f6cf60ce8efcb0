/**
 * DiskSpaceGuard: free space on the file system of an output directory, with
 * a hard minimum, a soft warning level, a reserve kept on top of the minimum
 * for writes, and a check every N recorded operations.
 *
 * A path whose free space cannot be read is "unknown": its figures are null,
 * never a guessed 0 or Infinity, and every check that needs them fails closed
 * with {@link DiskSpaceUnknownError} (or `false` from the boolean checks).
 *
 * The default source keeps the directory open (one `fstatvfs` per reading).
 * Every reading first checks that the kept directory is still the one the
 * path names (same device and inode, one `stat`): when the directory was
 * removed, replaced (a fresh directory renamed over it) or had a file system
 * mounted over it, the guard lets the old one go and reads what is at the
 * path now, or reports unknown when nothing is.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import * as nodePath from 'node:path';
import { binding } from '../binding';
import { DiskSpaceError, InvalidArgValueError } from '../errors';
import { readDisk } from '../sampler';
import { parseSize, validateNumber, validateString } from '../validate';
import { DiskSpaceUnknownError } from './errors';
import { estimateOutputSize, type OutputSizeOptions } from './estimate';
import {
  type Clock,
  GuardClosedError,
  MiB,
  monotonicClock,
  operationInterval,
  optionalClock,
  optionalSize,
  optionsObject,
  requireOrder,
  sane,
  validateSource,
} from './internal';

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
  /**
   * Check five times as often: the operation interval becomes
   * `ceil(checkInterval / 5)` (at least 1).
   * @default false
   */
  aggressive?: boolean;
  /** Where to read free space. @default the native reader (`readDisk`) */
  source?: DiskSource;
  /**
   * How old, in milliseconds, the reading behind the hot check
   * {@link DiskSpaceGuard.ok} may grow before `ok()` takes a fresh one
   * (which also notices a removed, replaced or newly mounted directory).
   * 0 reads on every `ok()` call. Full checks always read.
   * @default 1000
   */
  refreshMs?: number;
  /** Monotonic clock in milliseconds for `refreshMs`. @default the native monotonic clock */
  clock?: Clock;
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

// The native side of the default source. `diskRead` takes the path as an
// optional third argument: with it, the addon first checks that the kept
// directory is still the one at the path (-1 when it is not).
interface NativeDisk {
  diskOpen(path: string): number;
  diskRead(handle: number, out: Float64Array, path?: string): number;
  diskClose(handle: number): void;
  readDisk(path: string, out: Float64Array): number;
}
const native = binding as unknown as NativeDisk;

const ENOSYS = process.platform === 'darwin' ? 78 : process.platform === 'win32' ? 40 : 38;
/** diskRead: the kept directory is no longer the one at the path. */
const REPLACED = -1;
/** Handle states besides an open handle (>= 0). */
const H_NONE = -1; // not open (yet, or since the last failure)
const H_BY_PATH = -3; // the platform reads by path (Windows): nothing to keep open

/**
 * What the finalizer of a guard closes: the handle it holds now (it changes
 * when the directory is reopened). Shared by the guard and the registry; it
 * must not reference the guard.
 */
interface HandleCell {
  h: number;
}
const finalizer = new FinalizationRegistry<HandleCell>((cell) => {
  const h = cell.h;
  cell.h = H_NONE;
  if (h >= 0) {
    try {
      native.diskClose(h);
    } catch {
      // The environment is being torn down; its cleanup hook closes every handle.
    }
  }
});

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

/** The options a guard was made with (resolved path, explicit settings): for ResourceGuard's builder. */
export let guardSpec: (guard: DiskSpaceGuard) => DiskSpaceGuardOptions;

/**
 * Free-space guard for one output directory.
 *
 * Failure rule (fail closed): when free space cannot be read — the path is
 * missing or not a directory, `statvfs` fails, a custom source throws or
 * returns no usable figure — the reading is "unknown": `check()` returns
 * state `'unknown'` with null figures (never 0, never unlimited) and fires
 * `unknown`; `assert()`, `checkBeforeWrite()` and `recordWrite()` (at its
 * periodic check) throw {@link DiskSpaceUnknownError}
 * (`ERR_DISK_SPACE_UNKNOWN`); `ok()`, `canWrite()` and
 * `estimateOutputSize().fits` say false. The next reading tries again.
 * A closed guard throws {@link GuardClosedError} (`ERR_GUARD_CLOSED`).
 *
 * ```ts
 * const disk = new DiskSpaceGuard({ path: './output', minFree: '1GiB', reserve: '100MiB' });
 * disk.checkBeforeWrite(chunk.length); // throws DiskSpaceError when it would not fit
 * fs.writeSync(fd, chunk);
 * disk.recordWrite(chunk.length);      // re-reads free space every 100 writes
 * if (!disk.ok()) pause();              // hot check: no system call between refreshes
 * disk.close();                         // lets go of the directory (or `using disk = …`)
 * ```
 */
export class DiskSpaceGuard extends EventEmitter<DiskSpaceGuardEvents> {
  // Hot path of ok(): `#countdown` calls pass on the cached verdict before
  // the clock is read; `#room` is free space above the minimum at the last
  // reading less the bytes recorded since (NaN when unknown or closed).
  #countdown = 0;
  #room = NaN;

  /** The guarded directory, absolute. */
  readonly path: string;
  readonly #source: DiskSource | null;
  readonly #buf = new Float64Array(3);
  /** The kept-open directory of the default source (see HandleCell). */
  readonly #cell: HandleCell = { h: H_NONE };
  #closed = false;
  readonly #minFree: number;
  readonly #softFree: number;
  readonly #reserve: number;
  readonly #interval: number;
  readonly #refreshMs: number;
  readonly #clock: Clock;
  readonly #spec: DiskSpaceGuardOptions;
  #readAt = NaN;
  #clockAt = NaN;
  #callsSinceClock = 0;

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
    const interval = operationInterval(o.checkInterval, o.aggressive, 'options');
    // As given (validated above), for the spec a builder step copies.
    const givenInterval = o.checkInterval === undefined ? 100 : o.checkInterval;
    const source = o.source === undefined ? null : validateSource<DiskSource>(o.source, 'options.source', ['read']);
    const refreshMs = o.refreshMs === undefined ? 1000 : validateNumber(o.refreshMs, 'options.refreshMs', 0, 2 ** 31 - 1);
    const clock = optionalClock(o.clock, 'options.clock');
    requireOrder('options.minFree', minFree, 'options.softFree', softFree);
    // Nothing is opened here: the directory is opened at the first reading.
    this.path = nodePath.resolve(dir);
    this.#minFree = minFree;
    this.#softFree = softFree;
    this.#reserve = reserve;
    this.#interval = interval;
    this.#opsUntilCheck = interval;
    this.#source = source;
    this.#refreshMs = refreshMs;
    this.#clock = clock ?? monotonicClock;
    // The interval as given and the aggressive flag, so a copy made from this
    // spec with other options divides once, or not at all with aggressive: false.
    const spec: DiskSpaceGuardOptions = { path: this.path, minFree, reserve, checkInterval: givenInterval, refreshMs };
    if (o.aggressive === true) spec.aggressive = true;
    if (o.softFree !== undefined) spec.softFree = softFree;
    if (source !== null) spec.source = source;
    if (clock !== undefined) spec.clock = clock;
    this.#spec = spec;
    if (source === null) finalizer.register(this, this.#cell, this);
  }

  static {
    guardSpec = (guard) => ({ ...guard.#spec });
  }

  /** Whether {@link DiskSpaceGuard.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Lets go of the kept-open directory (so its volume can be unmounted).
   * Idempotent. Afterwards every check throws {@link GuardClosedError}
   * (`ERR_GUARD_CLOSED`); `limits`, `stats()` and `path` still answer.
   * A guard that is garbage-collected unclosed is closed by a finalizer.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#room = NaN;
    this.#countdown = -Infinity;
    finalizer.unregister(this);
    this.#release();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * The hot check: whether free space is at least `minFree` (as
   * {@link DiskSpaceGuard.assert} would pass), from a reading at most
   * `refreshMs` old less the bytes recorded since. No system call between
   * refreshes: most calls are a decrement and a comparison, and the clock
   * is read only every so many calls. When the recorded writes would take
   * free space below the minimum, it confirms with one fresh reading.
   * Unknown free space fails closed: false.
   */
  ok(): boolean {
    if (--this.#countdown >= 0 && this.#room >= 0) return true;
    return this.#okSlow();
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
    this.#assertOpen();
    this.#read();
    return this.#status();
  }

  /**
   * Reads free space now; throws {@link DiskSpaceError} (`ERR_DISK_SPACE`)
   * when it is below `minFree`, {@link DiskSpaceUnknownError}
   * (`ERR_DISK_SPACE_UNKNOWN`) when it cannot be read.
   */
  assert(): DiskSpaceStatus {
    this.#assertOpen();
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
    this.#assertOpen();
    const available = this.#read();
    if (Number.isNaN(available)) throw new DiskSpaceUnknownError(this.path, this.#reason);
    const required = this.#minFree + this.#reserve + n;
    if (available < required) throw new DiskSpaceError(this.path, available, required);
    return available;
  }

  /** {@link DiskSpaceGuard.checkBeforeWrite} as a boolean: false when it would throw. */
  canWrite(bytes: number | string): boolean {
    const n = parseSize(bytes, 'bytes');
    this.#assertOpen();
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
    this.#assertOpen();
    this.#operations++;
    this.#bytesWritten += n;
    this.#sinceCheck += n;
    this.#room -= n;
    if (--this.#opsUntilCheck <= 0) {
      this.#opsUntilCheck = this.#interval;
      this.assert();
    }
  }

  /** Estimates an output's size (see {@link estimateOutputSize}) and whether it fits now. */
  estimateOutputSize(options: OutputSizeOptions): OutputPlan {
    const bytes = estimateOutputSize(options);
    this.#assertOpen();
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

  /** Throws {@link GuardClosedError} once closed. */
  #assertOpen(): void {
    if (this.#closed) throw new GuardClosedError('DiskSpaceGuard', this.path);
  }

  #okSlow(): boolean {
    this.#assertOpen();
    const now = this.#clock();
    const age = now - this.#readAt; // NaN before the first reading
    let due = !(age >= 0 && age < this.#refreshMs); // a clock that went back counts as due
    // Recorded writes took the estimate below the minimum: confirm once.
    if (!due && this.#room < 0 && this.#sinceCheck > 0 && this.#available - this.#minFree >= 0) due = true;
    if (due) this.#read(now);
    this.#countdown = this.#nextCountdown(now);
    return this.#room >= 0;
  }

  /**
   * Calls of ok() to let pass before the clock is read again: about an
   * eighth of `refreshMs` at the call rate seen since the last clock read,
   * between 0 and 1023, so that a reading is never much older than
   * `refreshMs` and the clock costs nothing per call in a tight loop.
   */
  #nextCountdown(now: number): number {
    const calls = this.#callsSinceClock + 1;
    const elapsed = now - this.#clockAt;
    this.#clockAt = now;
    if (this.#refreshMs === 0) {
      this.#callsSinceClock = 0;
      return 0;
    }
    const k = !(elapsed > 0) ? 1024 : Math.floor((calls * this.#refreshMs) / 8 / elapsed);
    const n = Math.max(1, Math.min(1024, k));
    this.#callsSinceClock = n - 1;
    return n - 1;
  }

  /** Closes the kept directory, if any. */
  #release(): void {
    const h = this.#cell.h;
    this.#cell.h = H_NONE;
    if (h >= 0) native.diskClose(h);
  }

  /** Opens the directory at the path; 0 or an errno. */
  #openDir(): number {
    const r = native.diskOpen(this.path);
    if (r >= 0) {
      this.#cell.h = r;
      return 0;
    }
    if (-r === ENOSYS) {
      this.#cell.h = H_BY_PATH;
      return 0;
    }
    return -r;
  }

  /** One reading from the default source into #buf: 0 or an errno. */
  #readNative(): number {
    const buf = this.#buf;
    if (this.#cell.h === H_NONE) {
      const err = this.#openDir();
      if (err !== 0) return err;
      // Just opened at the path: nothing to check.
      return this.#cell.h >= 0 ? native.diskRead(this.#cell.h, buf) : native.readDisk(this.path, buf);
    }
    if (this.#cell.h === H_BY_PATH) return native.readDisk(this.path, buf);
    let err = native.diskRead(this.#cell.h, buf, this.path);
    if (err === REPLACED) {
      // Removed, replaced or mounted over: read what is at the path now.
      this.#release();
      err = this.#openDir();
      if (err === 0) err = this.#cell.h >= 0 ? native.diskRead(this.#cell.h, buf) : native.readDisk(this.path, buf);
    }
    if (err !== 0) this.#release(); // look the path up again next time
    return err;
  }

  /** Takes a reading; returns available bytes or NaN (unknown). */
  #read(now = NaN): number {
    this.#checks++;
    let available = NaN;
    let total = NaN;
    let reason: unknown = null;
    if (this.#source === null) {
      const err = this.#readNative();
      if (err === 0) {
        total = this.#buf[0]!;
        available = this.#buf[2]!;
      } else {
        // The sampler's reader turns the errno into the right PathError.
        try {
          const info = readDisk(this.path); // it came back in between
          total = info.total;
          available = info.available;
        } catch (e) {
          reason = e;
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
    this.#room = available - this.#minFree;
    this.#readAt = Number.isNaN(now) ? this.#clock() : now;
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
