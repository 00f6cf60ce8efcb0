/**
 * LimitedAllocator: a byte budget with a hard limit, reservations that give
 * their bytes back exactly once, Buffers that account for themselves, and
 * pressure levels.
 *
 * An allocator is a thin layer over a {@link Budget}. `new LimitedAllocator(n)`
 * uses a private budget; `LimitedAllocator.shared(name, n)` opens the
 * process-wide budget called `name`, which every worker thread that opens the
 * same name shares. A reservation is one compare-and-swap on memory the addon
 * shares with every thread, so the counter can never be above its limit, not
 * even for an instant, and no native call is made on the hot path.
 *
 * What it counts are *accounted* bytes: what callers reserved or allocated
 * through it. That is not RSS. RSS also holds V8's heap, the allocator's
 * overhead and fragmentation, pages of freed memory the C library has not
 * returned, and the memory of Buffers that were freed here but not yet
 * collected; and a large zero-filled Buffer may not be resident at all until
 * it is written. Use the allocator to keep a program's own big consumers in
 * a budget, and MemoryGuard to watch what the kernel sees.
 *
 * Bytes are owned by the thread that reserved them (the Budget's rule) and by
 * the allocator that reserved them (this module's rule): an allocator can
 * only release what it holds, so two allocators on one budget in one thread
 * cannot release each other's bytes, and the counter never goes negative.
 * One count serves both rules: the allocator's budget handle has a held
 * counter of its own in the thread's ledger (at most 4096 per thread).
 *
 * @module
 */
import { PRESSURE_LEVELS, type PressureLevel } from './pressure';
import { constants as bufferConstants } from 'node:buffer';
import { EventEmitter } from 'node:events';
import { Budget, heldByCell, openOwned, releaseOwned, reserveValidated, type BudgetOpenOptions, type BudgetStats } from './budget';
import {
  BudgetError,
  InvalidArgTypeError,
  InvalidArgValueError,
  OutOfRangeError,
  ResourceError,
  formatBytes,
} from './errors';
import { parseSize, validateBytes, validateNumber, validateObject, validateString, type Size } from './validate';

// ---- errors ---------------------------------------------------------------------

/**
 * An allocation or reservation would take the budget above its limit.
 * `requested`, `limit` and `current` are the figures at the time of the
 * refusal; `available` is `limit - current`.
 */
export class MemoryLimitExceededError extends ResourceError {
  /** Budget name ('' for a private budget). */
  readonly budget: string;
  /** Bytes asked for (for a resize: the additional bytes). */
  readonly requested: number;
  /** The budget's limit. */
  readonly limit: number;
  /** Bytes reserved at the time, by every thread sharing the budget. */
  readonly current: number;

  constructor(budget: string, requested: number, limit: number, current: number, what = `allocate ${bytesText(requested)}`) {
    super(
      'ERR_MEMORY_LIMIT_EXCEEDED',
      `Memory limit exceeded${budget ? ` for budget ${JSON.stringify(budget)}` : ''}: cannot ${what}; ` +
        `${bytesText(current)} of ${bytesText(limit)} in use (${percentText(current, limit)}%), ` +
        `${bytesText(Math.max(0, limit - current))} available`,
    );
    this.budget = budget;
    this.requested = requested;
    this.limit = limit;
    this.current = current;
  }

  /** Bytes that were still free: `limit - current`. */
  get available(): number {
    return Math.max(0, this.limit - this.current);
  }

  /** `current / limit` in percent. */
  get usagePercent(): number {
    return usage(this.current, this.limit);
  }
}

/** A reservation released twice, or a Buffer freed twice. */
export class AlreadyReleasedError extends ResourceError {
  constructor(
    /** Bytes the handle or Buffer had been charged. */
    readonly bytes: number,
    what: string,
  ) {
    super('ERR_ALREADY_RELEASED', `${what} was already released; its ${bytesText(bytes)} went back to the budget then`);
  }
}

// ---- pressure -------------------------------------------------------------------

/**
 * Usage (percent of the limit) at which each level starts. A level applies
 * from its threshold inclusive: with the defaults, 60 % is `medium`.
 */
export interface PressureThresholds {
  /** @default 60 */
  medium: number;
  /** @default 80 */
  high: number;
  /** @default 95 */
  critical: number;
}

/** The payload of the `'pressure'` event. */
export interface PressureChange {
  level: PressureLevel;
  previous: PressureLevel;
  /** Bytes in use when the change was seen (every thread). */
  used: number;
  limit: number;
  usagePercent: number;
}


const DEFAULT_THRESHOLDS: Readonly<PressureThresholds> = Object.freeze({ medium: 60, high: 80, critical: 95 });

// ---- options and stats ------------------------------------------------------------

/** Options of {@link LimitedAllocator}. */
export interface AllocatorOptions {
  /**
   * Usage percentages at which the pressure levels start.
   * @default { medium: 60, high: 80, critical: 95 }
   */
  pressureThresholds?: Partial<PressureThresholds>;
}

/**
 * Options of {@link LimitedAllocator.shared}: with `scope: 'machine'` the
 * budget is shared by every process of this user on the machine (see
 * {@link BudgetOpenOptions}).
 */
export interface SharedAllocatorOptions extends AllocatorOptions, BudgetOpenOptions {}

/** Options of {@link LimitedAllocator.fromEnv}. */
export interface FromEnvOptions extends AllocatorOptions {
  /**
   * Open the shared budget of this name instead of creating a private one.
   * @default undefined (private)
   */
  name?: string;
  /**
   * Where to read the variable from.
   * @default process.env
   */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * The variable holding the limit in MiB (2^20 bytes), e.g. `512` or `0.5`.
   * @default 'RESOURCE_GUARD_MEMORY_LIMIT_MB'
   */
  variable?: string;
  /**
   * Limit in MiB when the variable is unset or empty.
   * @default 512
   */
  defaultMB?: number;
}

/** A snapshot of an allocator and its budget. */
export interface AllocatorStats {
  /** Budget name ('' for a private budget). */
  name: string;
  /** Bytes reserved now, by every thread on the budget. */
  allocatedBytes: number;
  /** Highest `allocatedBytes` reached. */
  peakBytes: number;
  limit: number;
  /** `limit - allocatedBytes`. */
  availableBytes: number;
  usagePercent: number;
  pressureLevel: PressureLevel;
  /** Successful reservations on the budget, every thread, including exited ones. */
  successes: number;
  /** Refused reservations on the budget, every thread. */
  failures: number;
  /** Bytes this allocator holds (reservations, raw bytes and live Buffers). */
  heldBytes: number;
  /** Buffers from {@link LimitedAllocator.allocate} not yet freed or collected. */
  liveBuffers: number;
  /** Bytes charged for those Buffers. */
  liveBufferBytes: number;
  /** Handles open on the budget in the whole process. */
  openHandles: number;
}

// ---- internals shared by the classes below ------------------------------------------

/** Guards the constructors of handle classes: only this module creates them. */
const TOKEN: unique symbol = Symbol('resource-guard.allocator');

/** Set up by LimitedAllocator's static block: gives a Buffer's charge back. */
let freeCharge: (charge: BufferCharge) => void;
/** The budget LimitedAllocator.shared() opened, for the constructor to take. */
let adopting: Budget | null = null;

/** What an allocated Buffer is charged. Also the FinalizationRegistry token. */
class BufferCharge {
  constructor(
    readonly owner: LimitedAllocator,
    readonly bytes: number,
    public freed = false,
  ) {}
}

/** Buffer -> its charge, for free(). Weak: the map keeps no Buffer alive. */
const charges = new WeakMap<Uint8Array, BufferCharge>();

/**
 * The safety net: a Buffer that is collected without free() gives its bytes
 * back. The callback runs on the thread that allocated it, which is the
 * thread that owns the bytes. The charge refers to its allocator, so an
 * allocator stays alive while any of its Buffers does.
 */
const buffers = new FinalizationRegistry<BufferCharge>((charge) => {
  if (charge.freed) return;
  try {
    freeCharge(charge);
  } catch {
    // Only possible if the budget handle was closed or released behind the
    // allocator's back (allocator.budget.close()); there is no caller to
    // tell, and the thread's teardown returns whatever it still holds.
  }
});

// ---- the allocator ----------------------------------------------------------------

/**
 * Events of a {@link LimitedAllocator}. (Declared by merging rather than with
 * `EventEmitter<Events>`, which older `@types/node` releases do not have.)
 */
export interface LimitedAllocator {
  /**
   * `'pressure'`: the pressure level this allocator last saw changed. Checked
   * after each of its own reservations and releases (one comparison with a
   * precomputed byte threshold) and by {@link LimitedAllocator.checkPressure};
   * changes made by other threads are seen at this allocator's next operation.
   */
  on(event: 'pressure', listener: (change: PressureChange) => void): this;
  once(event: 'pressure', listener: (change: PressureChange) => void): this;
  off(event: 'pressure', listener: (change: PressureChange) => void): this;
  addListener(event: 'pressure', listener: (change: PressureChange) => void): this;
  prependListener(event: 'pressure', listener: (change: PressureChange) => void): this;
  removeListener(event: 'pressure', listener: (change: PressureChange) => void): this;
  emit(event: 'pressure', change: PressureChange): boolean;
}

/**
 * A byte budget with a hard limit. See the module documentation for what is
 * and is not counted.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class LimitedAllocator extends EventEmitter {
  readonly #budget: Budget;
  readonly #percent: Readonly<PressureThresholds>;
  #liveBuffers = 0;
  #liveBufferBytes = 0;
  #closed = false;
  /** The level last seen, and the byte range in which it still holds. */
  #level = 0;
  #up = 0;
  #down = 0;
  #limitSeen = -1;
  /** Byte thresholds of medium, high and critical for `#limitSeen`. */
  #bytes: [number, number, number] = [1, 1, 1];

  static {
    freeCharge = (charge) => charge.owner.#freeCharge(charge);
  }

  /**
   * An allocator with a private budget of `limit` bytes (a number, or a size
   * string such as `'512MiB'`; see parseSize).
   */
  constructor(limit: Size, options?: AllocatorOptions) {
    super();
    // LimitedAllocator.shared() hands over the budget it opened.
    const opened = adopting;
    adopting = null;
    if (opened === null) {
      const percent = readOptions(options);
      this.#budget = openOwned('', parseSize(limit, 'limit'));
      this.#percent = percent;
    } else {
      this.#budget = opened;
      this.#percent = readOptions(options);
    }
    this.#observe(this.#budget.used);
  }

  /**
   * Opens the process-wide budget called `name`: every thread that opens the
   * same name shares one counter. The first opener creates it with `limit`.
   * Later openers may leave `limit` out; giving a different one is refused
   * with `ERR_BUDGET_LIMIT_MISMATCH` (call {@link setLimit} to resize
   * deliberately). Without `limit`, the budget must exist
   * (`ERR_BUDGET_NOT_FOUND`).
   */
  static shared(name: string, limit?: Size, options?: SharedAllocatorOptions): LimitedAllocator {
    validateString(name, 'name');
    const bytes = limit === undefined ? undefined : parseSize(limit, 'limit');
    readOptions(options); // validated before the budget is opened
    if (name === '') throw new OutOfRangeError('name', 'a non-empty string (use new LimitedAllocator(limit) for a private budget)', name);
    const scope = options === undefined ? undefined : { scope: options.scope, directory: options.directory, lease: options.lease };
    adopting = openOwned(name, bytes, scope);
    return new LimitedAllocator(0, options);
  }

  /**
   * An allocator whose limit comes from the environment, 512 MiB when unset
   * or empty: `RESOURCE_GUARD_MEMORY_LIMIT`, a size with a unit ('512MiB',
   * '2Gi'), or its legacy name `RESOURCE_GUARD_MEMORY_LIMIT_MB`, a plain
   * number of MiB (decimals allowed); both set is refused. With
   * `options.variable` naming another variable, that variable alone is read,
   * as a plain number of MiB. A malformed value is refused with `ERR_INVALID_ARG_VALUE` naming
   * the variable, rather than read as far as it parses.
   */
  static fromEnv(options: FromEnvOptions = {}): LimitedAllocator {
    validateObject<FromEnvOptions>(options, 'options');
    const named = options.variable === undefined ? LEGACY_VARIABLE : validateString(options.variable, 'options.variable');
    // The library's own names are read as a pair whichever of them is named;
    // any other variable alone, as a number of MiB.
    const pair = named === LEGACY_VARIABLE || named === SIZE_VARIABLE;
    const variable = pair ? LEGACY_VARIABLE : named;
    const env = options.env === undefined ? process.env : options.env;
    validateObject(env, 'options.env');
    const defaultMB = options.defaultMB ?? 512;
    validateNumber(defaultMB, 'options.defaultMB', 0, Number.MAX_SAFE_INTEGER / MIB);
    const raw: unknown = env[variable];
    if (raw !== undefined && typeof raw !== 'string') throw new InvalidArgTypeError(`options.env.${variable}`, 'of type string', raw);
    const sized: unknown = pair ? env[SIZE_VARIABLE] : undefined;
    if (sized !== undefined && typeof sized !== 'string') throw new InvalidArgTypeError(`options.env.${SIZE_VARIABLE}`, 'of type string', sized);
    const rawGiven = raw !== undefined && raw.trim() !== '';
    const sizedGiven = sized !== undefined && sized.trim() !== '';
    if (rawGiven && sizedGiven) {
      throw new InvalidArgValueError(variable, raw, `cannot be set together with ${SIZE_VARIABLE} (${JSON.stringify(sized)}); keep ${SIZE_VARIABLE} only`);
    }
    const limit = sizedGiven
      ? parseSize(sized.trim(), SIZE_VARIABLE)
      : rawGiven
        ? parseMiB(raw, variable)
        : Math.floor(defaultMB * MIB);
    return options.name === undefined ? new LimitedAllocator(limit, options) : LimitedAllocator.shared(options.name, limit, options);
  }

  // ---- raw bytes: the hot path ----------------------------------------------------

  /**
   * Reserves `size` bytes if that keeps the budget at or under its limit;
   * returns false and changes nothing otherwise. No handle is created: give
   * the bytes back with {@link releaseBytes}.
   */
  reserveBytes(size: number): boolean {
    if (!Number.isSafeInteger(size) || size < 0) validateBytes(size, 'size');
    // The bytes count in the budget handle's own ledger cell: that is this
    // allocator's held count.
    const used = reserveValidated(this.#budget, size);
    // Thresholds are at least 1 byte, so a refusal (-1) never reaches #up.
    if (used >= this.#up) this.#observe(used);
    return used >= 0;
  }

  /**
   * Gives back `size` bytes reserved with {@link reserveBytes}. More than this
   * allocator holds is refused (`ERR_BUDGET_RELEASE_EXCEEDS_HELD`) and changes
   * nothing.
   */
  releaseBytes(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0) validateBytes(size, 'size');
    const used = releaseOwned(this.#budget, size);
    // #down is never negative, so a refusal (-1 or -2) takes this branch too.
    if (used < this.#down) this.#belowDown(used, size);
  }

  // ---- reservations -------------------------------------------------------------

  /** Reserves `size` bytes, or returns null when that would exceed the limit. */
  tryReserve(size: number): Reservation | null {
    return this.reserveBytes(size) ? new Reservation(TOKEN, this, size) : null;
  }

  /** Reserves `size` bytes, or throws {@link MemoryLimitExceededError}. */
  reserve(size: number): Reservation {
    if (this.reserveBytes(size)) return new Reservation(TOKEN, this, size);
    throw this.#exceeded(size);
  }

  /**
   * The pre-flight check: throws {@link MemoryLimitExceededError} when `size`
   * bytes would not fit now. Reserves nothing, so another thread may take
   * the room before you do; the reservation itself is what is atomic.
   */
  checkCanAllocate(size: number): void {
    if (!this.canAllocate(size)) throw this.#exceeded(size);
  }

  /** Whether `size` bytes would fit now (see {@link checkCanAllocate}). */
  canAllocate(size: number): boolean {
    validateBytes(size, 'size');
    this.#assertOpen();
    const budget = this.#budget;
    return size <= budget.limit - budget.used;
  }

  // ---- buffers ------------------------------------------------------------------

  /**
   * A zero-filled Buffer of `size` bytes charged to the budget, or null when
   * it would exceed the limit. Give it back with {@link free}; one that is
   * dropped without free() is given back after it is garbage-collected.
   *
   * It is `Buffer.alloc(size)`: its own memory, never a slice of Node's
   * shared pool (`Buffer.allocUnsafe` hands out slices of one 8 KiB slab, so
   * charging them one by one would count memory that is not theirs), and
   * zero-filled, so no stale data can leak out of it. Zero-filling writes
   * every page up front; {@link allocateUnsafe} skips that.
   *
   * Tracking costs a WeakMap entry and a FinalizationRegistry cell (about
   * 1-2 µs with the garbage collection they cause): fine for Buffers of
   * kilobytes and up. For many small blocks, reserve their total with
   * {@link reserveBytes} and allocate them yourself.
   */
  allocate(size: number): Buffer | null {
    return this.#allocate(size, false);
  }

  /**
   * Like {@link allocate} but the contents are not initialised
   * (`Buffer.allocUnsafeSlow`): for callers that overwrite every byte.
   */
  allocateUnsafe(size: number): Buffer | null {
    return this.#allocate(size, true);
  }

  /**
   * A Buffer for a `using` declaration: freed when the scope ends.
   * `using lease = allocator.lease(4096)` (null over the limit, which `using`
   * accepts).
   */
  lease(size: number): BufferLease | null {
    const buf = this.#allocate(size, false);
    return buf === null ? null : new BufferLease(TOKEN, this, buf);
  }

  /**
   * Gives back the bytes of a Buffer from {@link allocate}. Freeing it twice
   * throws {@link AlreadyReleasedError}; a Buffer from elsewhere,
   * `ERR_INVALID_ARG_VALUE`. After free() the Buffer's memory is reclaimed by
   * the garbage collector once nothing refers to it; do not use it.
   */
  free(buf: Uint8Array): void {
    const charge = charges.get(buf);
    if (charge === undefined || charge.owner !== this) {
      if (!(buf instanceof Uint8Array)) throw new InvalidArgTypeError('buf', 'an instance of Buffer', buf);
      throw new InvalidArgValueError(
        'buf',
        buf,
        charge === undefined ? 'was not allocated by a LimitedAllocator' : 'was allocated by another LimitedAllocator',
      );
    }
    if (charge.freed) throw new AlreadyReleasedError(charge.bytes, 'This Buffer');
    buffers.unregister(charge);
    this.#freeCharge(charge);
  }

  /** Whether `buf` came from this allocator and is neither freed nor returned by close(). */
  owns(buf: Uint8Array): boolean {
    const charge = charges.get(buf);
    return charge !== undefined && charge.owner === this && !charge.freed && !this.#closed;
  }

  // ---- figures --------------------------------------------------------------------

  /** The budget this allocator draws on, for health reports and metrics. */
  get budget(): Budget {
    return this.#budget;
  }

  /** Budget name ('' for a private budget). */
  get name(): string {
    return this.#budget.name;
  }

  /** Bytes reserved now by every thread on the budget. */
  get allocatedBytes(): number {
    return this.#budget.used;
  }

  /** Highest {@link allocatedBytes} reached. */
  get peakBytes(): number {
    return this.#budget.peak;
  }

  get limit(): number {
    return this.#budget.limit;
  }

  /** `limit - allocatedBytes`. */
  get availableBytes(): number {
    const budget = this.#budget;
    return Math.max(0, budget.limit - budget.used);
  }

  /** Bytes this allocator holds, in this thread. */
  get heldBytes(): number {
    return heldByCell(this.#budget);
  }

  /** `allocatedBytes / limit` in percent (0 for a limit of 0). */
  get usagePercent(): number {
    const budget = this.#budget;
    return usage(budget.used, budget.limit);
  }

  /** The pressure level now (computed from the live counter). */
  get pressureLevel(): PressureLevel {
    const budget = this.#budget;
    const limit = budget.limit;
    return PRESSURE_LEVELS[levelOf(budget.used, limit === this.#limitSeen ? this.#bytes : thresholds(limit, this.#percent))]!;
  }

  /** The thresholds in use, in percent. */
  get pressureThresholds(): Readonly<PressureThresholds> {
    return this.#percent;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Figures of the budget (one native call) and of this allocator. */
  stats(): AllocatorStats {
    this.#assertOpen();
    const s: BudgetStats = this.#budget.stats();
    return {
      name: s.name,
      allocatedBytes: s.used,
      peakBytes: s.peak,
      limit: s.limit,
      availableBytes: Math.max(0, s.limit - s.used),
      usagePercent: usage(s.used, s.limit),
      pressureLevel: PRESSURE_LEVELS[levelOf(s.used, thresholds(s.limit, this.#percent))]!,
      successes: s.successes,
      failures: s.failures,
      heldBytes: heldByCell(this.#budget),
      liveBuffers: this.#liveBuffers,
      liveBufferBytes: this.#liveBufferBytes,
      openHandles: s.openHandles,
    };
  }

  /**
   * Re-reads the counter and the limit and emits `'pressure'` if the level
   * changed since this allocator last looked (for example because another
   * thread reserved bytes). Returns the level.
   */
  checkPressure(): PressureLevel {
    this.#assertOpen();
    this.#observe(this.#budget.used);
    return PRESSURE_LEVELS[this.#level]!;
  }

  /**
   * Changes the limit for every thread sharing the budget. It cannot go below
   * what is reserved now (`ERR_BUDGET_LIMIT_BELOW_USAGE`).
   */
  setLimit(limit: Size): void {
    const bytes = parseSize(limit, 'limit');
    this.#assertOpen();
    this.#budget.setLimit(bytes);
    this.#observe(this.#budget.used);
  }

  /**
   * Gives back every byte this allocator holds (reservations and Buffers
   * included: their later release() or free() does nothing) and closes its
   * handle on the budget. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#liveBuffers = 0;
    this.#liveBufferBytes = 0;
    // Closing the handle gives back what its cell holds.
    this.#budget.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ---- private ------------------------------------------------------------------

  #allocate(size: number, unsafe: boolean): Buffer | null {
    if (!Number.isSafeInteger(size) || size < 0) validateBytes(size, 'size');
    if (size > bufferConstants.MAX_LENGTH) {
      throw new OutOfRangeError('size', `<= ${bufferConstants.MAX_LENGTH} (buffer.constants.MAX_LENGTH)`, size);
    }
    if (!this.reserveBytes(size)) return null;
    let buf: Buffer;
    try {
      buf = unsafe ? Buffer.allocUnsafeSlow(size) : Buffer.alloc(size);
    } catch (err) {
      this.#releaseHeld(size);
      throw err;
    }
    const charge = new BufferCharge(this, size);
    charges.set(buf, charge);
    buffers.register(buf, charge, charge);
    this.#liveBuffers++;
    this.#liveBufferBytes += size;
    return buf;
  }

  #freeCharge(charge: BufferCharge): void {
    charge.freed = true;
    if (this.#closed) return;
    this.#liveBuffers--;
    this.#liveBufferBytes -= charge.bytes;
    this.#releaseHeld(charge.bytes);
  }

  /** Release of bytes known to be held (or of a closed allocator: nothing). */
  #releaseHeld(size: number): void {
    if (this.#closed) return;
    const used = releaseOwned(this.#budget, size);
    if (used < this.#down && used >= 0) this.#observe(used);
  }

  /** After a release: a level change, or a refusal (negative `used`). */
  #belowDown(used: number, size: number): void {
    if (used >= 0) {
      this.#observe(used);
      return;
    }
    // Closed (-2): releasing nothing is allowed, anything else is not.
    if (used === -2 && size === 0) return;
    this.#throwRelease(size);
  }

  /** Recomputes the level for `used` and emits `'pressure'` on a change. */
  #observe(used: number): void {
    const limit = this.#budget.limit;
    if (limit !== this.#limitSeen) {
      this.#bytes = thresholds(limit, this.#percent);
      this.#limitSeen = limit;
    }
    const t = this.#bytes;
    const level = levelOf(used, t);
    this.#up = level === 3 ? Infinity : t[level]!;
    this.#down = level === 0 ? 0 : t[level - 1]!;
    if (level === this.#level) return;
    const previous = this.#level;
    this.#level = level;
    if (this.listenerCount('pressure') === 0) return;
    const change: PressureChange = {
      level: PRESSURE_LEVELS[level]!,
      previous: PRESSURE_LEVELS[previous]!,
      used,
      limit,
      usagePercent: usage(used, limit),
    };
    try {
      this.emit('pressure', change);
    } catch (err) {
      // The reservation or release that noticed the change has already
      // happened; failing it now would leak its bytes. Report the listener's
      // error the way Node reports errors nobody can catch.
      process.nextTick(() => {
        throw err;
      });
    }
  }

  #exceeded(size: number): MemoryLimitExceededError {
    const budget = this.#budget;
    return new MemoryLimitExceededError(budget.name, size, budget.limit, budget.used);
  }

  #assertOpen(): void {
    if (this.#closed) this.#throwClosed();
  }

  #throwClosed(): never {
    throw new BudgetError('ERR_BUDGET_CLOSED', 'The LimitedAllocator is closed', this.#budget.name, 0, NaN, NaN);
  }

  #throwRelease(size: number): never {
    const budget = this.#budget;
    if (this.#closed || budget.closed) this.#throwClosed();
    throw new BudgetError(
      'ERR_BUDGET_RELEASE_EXCEEDS_HELD',
      `Cannot release ${bytesText(size)}: this allocator holds ${bytesText(heldByCell(budget))}`,
      budget.name,
      size,
      budget.limit,
      budget.used,
    );
  }
}

// ---- handles --------------------------------------------------------------------

/**
 * Bytes reserved from a {@link LimitedAllocator}, released exactly once.
 * Resizing up may fail (and leaves the reservation as it was); resizing down
 * always succeeds.
 */
export class Reservation {
  readonly #owner: LimitedAllocator;
  /** Bytes held, or -1 once released. */
  #size: number;

  /** @internal Reservations come from {@link LimitedAllocator.reserve}. */
  constructor(token: typeof TOKEN, owner: LimitedAllocator, size: number) {
    if (token !== TOKEN) throw new TypeError('Illegal constructor: use LimitedAllocator#reserve()');
    this.#owner = owner;
    this.#size = size;
  }

  /** Bytes held (0 once released). */
  get size(): number {
    return this.#size < 0 ? 0 : this.#size;
  }

  get released(): boolean {
    return this.#size < 0;
  }

  get allocator(): LimitedAllocator {
    return this.#owner;
  }

  /**
   * Gives the bytes back. A second call throws {@link AlreadyReleasedError}.
   * After the allocator was closed this only marks the handle released.
   */
  release(): void {
    const size = this.#size;
    if (size < 0) throw new AlreadyReleasedError(0, 'This reservation');
    this.#size = -1;
    const owner = this.#owner;
    if (!owner.closed) owner.releaseBytes(size);
  }

  /**
   * Changes the reservation to `size` bytes. Growing reserves the difference
   * and returns false, changing nothing, when it does not fit; shrinking
   * gives the difference back and always succeeds.
   */
  tryResize(size: number): boolean {
    if (!Number.isSafeInteger(size) || size < 0) validateBytes(size, 'size');
    const current = this.#size;
    if (current < 0) throw new AlreadyReleasedError(0, 'This reservation');
    if (size > current) {
      if (!this.#owner.reserveBytes(size - current)) return false;
    } else if (size < current && !this.#owner.closed) {
      this.#owner.releaseBytes(current - size);
    }
    this.#size = size;
    return true;
  }

  /** Like {@link tryResize} but throws {@link MemoryLimitExceededError} when growing does not fit. */
  resize(size: number): void {
    if (this.tryResize(size)) return;
    const owner = this.#owner;
    throw new MemoryLimitExceededError(
      owner.name,
      size - this.#size,
      owner.limit,
      owner.allocatedBytes,
      `grow a reservation from ${bytesText(this.#size)} to ${bytesText(size)}`,
    );
  }

  /** Releases unless already released (for `using`). */
  [Symbol.dispose](): void {
    if (this.#size >= 0) this.release();
  }
}

/** A Buffer from {@link LimitedAllocator.lease}, freed when disposed. */
export class BufferLease {
  readonly #owner: LimitedAllocator;
  /** The charged Buffer. Do not use it after the lease is disposed. */
  readonly buffer: Buffer;

  /** @internal Leases come from {@link LimitedAllocator.lease}. */
  constructor(token: typeof TOKEN, owner: LimitedAllocator, buffer: Buffer) {
    if (token !== TOKEN) throw new TypeError('Illegal constructor: use LimitedAllocator#lease()');
    this.#owner = owner;
    this.buffer = buffer;
  }

  /** Whether the Buffer was given back (by this lease, free() or close()). */
  get freed(): boolean {
    return !this.#owner.owns(this.buffer);
  }

  /** Frees the Buffer; a second call throws {@link AlreadyReleasedError}. */
  free(): void {
    this.#owner.free(this.buffer);
  }

  /** Frees the Buffer unless already freed. */
  [Symbol.dispose](): void {
    const charge = charges.get(this.buffer);
    if (charge !== undefined && !charge.freed) this.#owner.free(this.buffer);
  }
}

// ---- helpers --------------------------------------------------------------------

const MIB = 1024 * 1024;
/** The variable LimitedAllocator.fromEnv() reads first: a size with a unit. */
const SIZE_VARIABLE = 'RESOURCE_GUARD_MEMORY_LIMIT';
/** Its legacy name: a plain number of MiB. */
const LEGACY_VARIABLE = 'RESOURCE_GUARD_MEMORY_LIMIT_MB';

function readOptions(options: AllocatorOptions | undefined): Readonly<PressureThresholds> {
  if (options === undefined) return DEFAULT_THRESHOLDS;
  validateObject(options, 'options');
  const given = options.pressureThresholds;
  if (given === undefined) return DEFAULT_THRESHOLDS;
  validateObject(given, 'options.pressureThresholds');
  const medium = validateNumber(given.medium ?? DEFAULT_THRESHOLDS.medium, 'options.pressureThresholds.medium', 0, 100);
  const high = validateNumber(given.high ?? DEFAULT_THRESHOLDS.high, 'options.pressureThresholds.high', 0, 100);
  const critical = validateNumber(given.critical ?? DEFAULT_THRESHOLDS.critical, 'options.pressureThresholds.critical', 0, 100);
  if (!(medium > 0 && medium < high && high < critical)) {
    throw new InvalidArgValueError(
      'options.pressureThresholds',
      `${medium}/${high}/${critical}`,
      'must satisfy 0 < medium < high < critical <= 100',
    );
  }
  return Object.freeze({ medium, high, critical });
}

/**
 * Byte thresholds for a limit: the smallest `used` with
 * `used / limit >= percent / 100`, computed exactly (BigInt, once per limit
 * change) so that 60 % of any limit up to 2^53 - 1 is decided without
 * rounding. At least 1, so an empty budget (and a limit of 0) is `low`.
 */
function thresholds(limit: number, percent: Readonly<PressureThresholds>): [number, number, number] {
  const at = (p: number): number => {
    // percent with six decimals, as an integer: p% = P / 1e8 of the limit
    const P = BigInt(Math.round(p * 1e6));
    const n = BigInt(limit) * P;
    const t = (n + 99_999_999n) / 100_000_000n;
    return Math.max(1, Number(t));
  };
  return [at(percent.medium), at(percent.high), at(percent.critical)];
}

function levelOf(used: number, t: readonly [number, number, number]): number {
  return used >= t[2] ? 3 : used >= t[1] ? 2 : used >= t[0] ? 1 : 0;
}

function usage(used: number, limit: number): number {
  return limit > 0 ? (used / limit) * 100 : 0;
}

function percentText(current: number, limit: number): string {
  return usage(current, limit).toFixed(1);
}

function bytesText(bytes: number): string {
  return bytes >= 1024 ? `${bytes} bytes (${formatBytes(bytes)})` : `${bytes} bytes`;
}

function parseMiB(raw: string, variable: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*$/.exec(raw);
  if (!m) {
    throw new InvalidArgValueError(
      `process.env.${variable}`,
      raw,
      'must be a number of MiB such as 512 or 0.5 (no unit, no sign)',
    );
  }
  const bytes = Math.floor(Number(m[1]) * MIB);
  if (!Number.isSafeInteger(bytes)) {
    throw new OutOfRangeError(`process.env.${variable}`, `at most ${Math.floor(Number.MAX_SAFE_INTEGER / MIB)} MiB`, raw);
  }
  return bytes;
}
