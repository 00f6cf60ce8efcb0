/**
 * Process-wide byte budgets.
 *
 * A budget is a counter with a limit that lives in memory the addon shares
 * with every JS environment of the process: `Budget.open('cache', n)` in the
 * main thread and in any worker returns handles to the same counter.
 *
 * The hot path runs in JS on that shared memory. A reservation is a
 * compare-and-swap that only succeeds while `used + bytes <= limit`, so the
 * counter is never above its limit, not even for an instant as another thread
 * sees it; a release is one atomic subtraction. Budgets whose limit fits in
 * 32 bits use 32-bit Atomics (no BigInt on the hot path); larger ones use
 * 64-bit Atomics. Either way the counter is exact up to 2^53 - 1 bytes.
 *
 * Bytes belong to the environment (thread) that reserved them: each
 * environment keeps a ledger of what it holds, a release can give back at
 * most that, and when the environment goes away (a worker exits, crashes or
 * is terminated, or the last handle of a budget is closed or collected) the
 * addon returns whatever it still held.
 *
 * A LimitedAllocator's handle keeps its own count instead (a ledger *cell*),
 * so that an allocator releases only what it reserved and one counter serves
 * both rules; closing that handle gives its bytes back at once.
 *
 * @module
 */
import { binding } from './binding';
import { BudgetError, BudgetExceededError, InvalidArgTypeError, InvalidArgValueError, OutOfRangeError } from './errors';
import { sharedRegion, nativeLayout } from './sampler';
import { validateBoolean, validateBytes, validateObject, validateOneOf, validateString } from './validate';

const MAX = nativeLayout.maxBudgets;
const CELLS = nativeLayout.maxCells;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const SLOT_WORDS32 = nativeLayout.budgetSlotBytes / 4;
const SLOT_WORDS64 = nativeLayout.budgetSlotBytes / 8;
const BASE32 = nativeLayout.budgetsOffset / 4;
const BASE64 = nativeLayout.budgetsOffset / 8;
const LIMIT32 = nativeLayout.budgetLimit32Offset / 4;
const FLAGS32 = nativeLayout.budgetFlagsOffset / 4;
const FLAG_LEASING = nativeLayout.flagLeasing;
/** Index of the low 32-bit half of a 64-bit word. */
const LOW = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 0 : 1;

const ledgerBuffer = binding.ledgerBuffer();
const FAST = sharedRegion !== null && ledgerBuffer !== null;
const U32 = FAST ? new Uint32Array(sharedRegion!) : new Uint32Array(0);
const B64 = FAST ? new BigUint64Array(sharedRegion!) : new BigUint64Array(0);
const F64 = FAST ? new Float64Array(sharedRegion!) : new Float64Array(0);
/**
 * This environment's ledger: held[MAX], successes[MAX], failures[MAX],
 * peak[MAX], cells[CELLS] and pending[MAX]. `peak` is the highest counter
 * value a reservation of this environment produced; the budget's peak is the
 * largest of all environments' (the native side takes the maximum), so a new
 * high is recorded with a plain store rather than a compare-exchange on a
 * shared word. A cell is the held count of one handle that owns it.
 * `pending` and LEASE serve leasing budgets (see LeasingBudget).
 */
if (
  FAST &&
  (ledgerBuffer!.byteLength !== nativeLayout.ledgerBytes ||
    nativeLayout.ledgerDoubles !== 5 * MAX + CELLS ||
    nativeLayout.ledgerPendingOffset !== 8 * (4 * MAX + CELLS))
) {
  throw new Error('resource-guard: the native ledger does not match this version of the library');
}
const LEDGER = FAST ? new Float64Array(ledgerBuffer!, 0, 5 * MAX + CELLS) : new Float64Array(0);
/** This environment's lease word per slot (see LeasingBudget). */
const LEASE = FAST ? new Uint32Array(ledgerBuffer!, nativeLayout.ledgerLeaseOffset, MAX) : new Uint32Array(0);
const PEAK = 3 * MAX;
const CELL0 = 4 * MAX;
const PENDING = 4 * MAX + CELLS;
/** Open handles with a cell, per slot, in this environment. */
const cellHandles = new Int32Array(MAX);

/**
 * Unchecked entry points for other modules of this package (the allocator):
 * the caller has validated the size; they return the usage right after the
 * operation (or -1 for a refused reservation), so the caller needs no second
 * read of the counter. Set by a static block of Budget, which alone can reach
 * its private fields.
 * @internal
 */
export let reserveValidated: (budget: Budget, bytes: number) => number;
/**
 * Release for the owner of a handle with a cell (the allocator): -1 when the
 * cell holds fewer than `bytes`, -2 when the handle is closed; the caller
 * throws its own error.
 * @internal
 */
export let releaseOwned: (budget: Budget, bytes: number) => number;
/**
 * Opens `name` ('' for a private budget) with a cell of its own.
 * @internal
 */
export let openOwned: (name: string, limit: number | undefined, options?: BudgetOpenOptions) => Budget;
/**
 * What the handle's cell holds (0 once closed).
 * @internal
 */
export let heldByCell: (budget: Budget) => number;

/**
 * Throws the typed error of validateBytes unless `bytes` is an integer from 0
 * to 2^53 - 1. The common case is one inline test, with no call.
 */
function checkBytes(bytes: unknown): void {
  if (typeof bytes !== 'number' || !(bytes >= 0 && bytes <= MAX_SAFE) || Math.trunc(bytes) !== bytes) {
    validateBytes(bytes, 'bytes');
  }
}

const NATIVE_ERRORS = ['', 'over limit', 'exceeds held', 'not found', 'limit mismatch', 'too many', 'closed', 'below usage', 'width', 'bad size'];

/** Options of {@link Budget.open}. */
export interface BudgetOpenOptions {
  /**
   * `'process'`: shared by the threads of this process. `'machine'`: shared
   * by every process of this user on this machine that opens the same name
   * (see docs/budgets.md, "Machine-wide budgets"); the name must then be 1
   * to 100 characters of `A-Z a-z 0-9 . _ -`, not starting with a dot.
   * @default 'process'
   */
  scope?: 'process' | 'machine';
  /**
   * Machine scope: the directory that holds the budget's file. Every process
   * that shares the budget must name the same directory. It should be
   * memory-backed, not shared with other machines, and writable by this user
   * only (in a directory others can write to, another user can take the
   * budget's name first).
   * @default `resource-guard-<uid>`, made with mode 0700, in /dev/shm where
   * it exists, else in os.tmpdir()
   */
  directory?: string;
  /**
   * Process scope, budgets below 4 GiB: this handle's thread takes bytes
   * from the shared counter in chunks (a *lease*) and serves its
   * reservations from them, so that threads sharing the budget do not
   * contend on one counter. The counter still never passes the limit (it
   * counts the leases); a reservation that does not fit first takes every
   * thread's unused lease back, so it is refused only when the bytes really
   * are in use; a thread that ends gives back its lease with what it held.
   * `used` then costs a native call; `peak` counts leased bytes. A budget of
   * 4 GiB or more keeps its single counter. See docs/budgets.md, "Leases".
   * Refused with scope 'machine'.
   * @default false
   */
  lease?: boolean;
}

/**
 * Validates `options.lease` (after readScope validated the object).
 * @internal
 */
export function readLease(options: BudgetOpenOptions | undefined, machine: boolean): boolean {
  if (options === undefined || options.lease === undefined) return false;
  const lease = validateBoolean(options.lease, 'options.lease');
  if (machine && lease) throw new InvalidArgValueError('options.lease', options.lease, "applies to scope 'process' only");
  return lease;
}

/** Where a machine budget lives; resolved by readScope. @internal */
export interface MachineScope {
  /** The directory given, resolved; null for the default (a private directory made on open). */
  directory: string | null;
}

/**
 * Validates open options; null for the process scope.
 * @internal
 */
export function readScope(options: BudgetOpenOptions | undefined): MachineScope | null {
  if (options === undefined) return null;
  validateObject(options, 'options');
  const scope = options.scope === undefined ? 'process' : validateOneOf(options.scope, 'options.scope', ['process', 'machine'] as const);
  if (scope === 'process') {
    if (options.directory !== undefined) {
      throw new InvalidArgValueError('options.directory', options.directory, "applies to scope 'machine' only");
    }
    return null;
  }
  if (options.directory === undefined) return { directory: null };
  validateString(options.directory, 'options.directory');
  if (options.directory === '' || options.directory.includes('\0')) {
    throw new InvalidArgValueError('options.directory', options.directory, 'must be a directory path');
  }
  return { directory: require('node:path').resolve(options.directory) as string };
}

type MachineOpener = (name: string, limit: number | undefined, where: MachineScope, owned: boolean) => Budget;
let opener: MachineOpener | undefined;
/**
 * Set by the machine-budget module when it loads.
 * @internal
 */
export function setMachineOpener(fn: MachineOpener): void {
  opener = fn;
}
function machineOpener(): MachineOpener {
  // Loaded on first use, so that a process without machine budgets does not pay for them.
  if (opener === undefined) require('./machine-budget');
  return opener!;
}

/** Statistics of a budget, process-wide. */
export interface BudgetStats {
  name: string;
  /** Bytes reserved now, by all environments. */
  used: number;
  /** Highest `used` ever reached. */
  peak: number;
  limit: number;
  /** Successful reservations, by all environments, including exited ones. */
  successes: number;
  /** Refused reservations. */
  failures: number;
  /**
   * Bytes the counter counts that no reservation holds: the unused leases of
   * threads on a leasing budget (0 otherwise). The counter is `used + leased`.
   */
  leased: number;
  /** Handles open on this budget across all environments. */
  openHandles: number;
  /** Bytes this environment holds. */
  held: number;
}

// A handle's key is slot + MAX * (cell + 1), as budgetOpen returns it.
const slotOf = (key: number): number => key % MAX;
const cellOf = (key: number): number => Math.floor(key / MAX) - 1;

const registry = new FinalizationRegistry<number>((key) => {
  const slot = slotOf(key);
  const cell = cellOf(key);
  if (cell >= 0) cellHandles[slot]!--;
  binding.budgetClose(slot, cell);
});

/**
 * A handle on a process-wide byte budget. Handles are per environment; open
 * the same name in each worker to share a budget.
 */
export class Budget {
  /** The name it was opened by ('' for a private budget). */
  readonly name: string;
  /** Index of the budget in the shared region. */
  // Index fields start as 0 rather than undefined so that V8 keeps them as
  // small integers: a field first holding undefined is widened to "any
  // value", and every read of it on the hot paths then checks its tag.
  readonly slot: number = 0;
  readonly #narrow: boolean;
  readonly #used: number = 0; // index of `used` (U32 low word, or B64 word)
  readonly #limit: number = 0; // F64 index
  /** The handle's own cell, or -1: it counts in the environment's held[slot]. */
  readonly #cell: number = -1;
  #closed = false;

  static {
    reserveValidated = (budget, bytes) => {
      if (budget.#closed) budget.#throwClosed();
      return budget._reserve(bytes);
    };
    releaseOwned = (budget, bytes) => (budget.#closed ? -2 : budget._release(bytes));
    openOwned = (name, limit, options) => {
      const where = readScope(options);
      const lease = readLease(options, where !== null);
      return where !== null ? machineOpener()(name, limit, where, true) : Budget.#open(name, limit, true, lease);
    };
    heldByCell = (budget) => (budget.#closed ? 0 : budget._ownHeld());
  }

  /** Use {@link Budget.open} or {@link Budget.create}. */
  protected constructor(name: string, slot: number, cell: number, narrow: boolean) {
    this.name = name;
    this.slot = slot;
    this.#cell = cell;
    this.#narrow = narrow;
    this.#used = narrow ? BASE32 + slot * SLOT_WORDS32 + LOW : BASE64 + slot * SLOT_WORDS64;
    this.#limit = BASE64 + slot * SLOT_WORDS64 + 2;
    // A machine budget (slot -1) keeps no slot of the process region; its
    // class registers its own handle.
    if (slot < 0) return;
    if (cell >= 0) cellHandles[slot]!++;
    registry.register(this, slot + MAX * (cell + 1), this);
  }

  /**
   * What the handle's own count holds (0 without one).
   * @internal
   */
  protected _ownHeld(): number {
    if (this.#cell < 0) return 0;
    return FAST ? LEDGER[CELL0 + this.#cell]! : binding.budgetHeld(this.slot, this.#cell);
  }

  /** The ledger index of the count this handle's reservations go to. */
  protected get heldIndex(): number {
    return this.#cell < 0 ? this.slot : CELL0 + this.#cell;
  }

  /**
   * Opens the budget called `name`, creating it with `limit` bytes if it does
   * not exist. Without `limit`, the budget must exist (`ERR_BUDGET_NOT_FOUND`).
   * With a `limit` that differs from the existing one: `ERR_BUDGET_LIMIT_MISMATCH`
   * (use {@link Budget.setLimit} to change it deliberately).
   */
  static open(name: string, limit?: number, options?: BudgetOpenOptions): Budget {
    validateString(name, 'name');
    if (name === '') throw new OutOfRangeError('name', 'a non-empty string (use Budget.create for a private budget)', name);
    if (limit !== undefined) validateBytes(limit, 'limit');
    const where = readScope(options);
    const lease = readLease(options, where !== null);
    if (where !== null) return machineOpener()(name, limit, where, false);
    return Budget.#open(name, limit, false, lease);
  }

  /** Creates a private budget that no other open can find. */
  static create(limit: number): Budget {
    validateBytes(limit, 'limit');
    return Budget.#open('', limit, false);
  }

  static #open(name: string, limit: number | undefined, withCell: boolean, lease = false): Budget {
    const r = binding.budgetOpen(name, limit, withCell, lease);
    if (r >= 0) {
      const slot = slotOf(r);
      const cell = cellOf(r);
      // One class per kind keeps each hot path monomorphic: a process that
      // uses both narrow and wide budgets does not slow the narrow one.
      const stats = binding.budgetStats(slot);
      const narrow = typeof stats === 'object' && stats.narrow;
      if (!FAST) return new NativeBudget(name, slot, cell, narrow);
      if (!narrow) return new WideBudget(name, slot, cell);
      return lease ? new LeasingBudget(name, slot, cell) : new NarrowBudget(name, slot, cell);
    }
    const code = -r;
    const label = name ? JSON.stringify(name) : '(private)';
    switch (code) {
      case 3:
        throw new BudgetError('ERR_BUDGET_NOT_FOUND', `No budget named ${label}; give a limit to create it`, name, 0, NaN, NaN);
      case 4: {
        const existing = Budget.#peekLimit(name);
        throw new BudgetError(
          'ERR_BUDGET_LIMIT_MISMATCH',
          `Budget ${label} exists with a limit of ${existing} bytes, not ${limit}; open it without a limit or call setLimit()`,
          name,
          limit ?? 0,
          existing,
          NaN,
        );
      }
      case 5:
        throw new BudgetError('ERR_BUDGET_TOO_MANY', `Too many budgets open in this process (at most ${MAX})`, name, limit ?? 0, NaN, NaN);
      case 10:
        throw new BudgetError(
          'ERR_BUDGET_TOO_MANY',
          `Too many allocators open in this thread (at most ${CELLS}); close the ones no longer used`,
          name,
          limit ?? 0,
          NaN,
          NaN,
        );
      default:
        throw new BudgetError('ERR_BUDGET_CLOSED', `Could not open budget ${label}: ${NATIVE_ERRORS[code] ?? code}`, name, 0, NaN, NaN);
    }
  }

  static #peekLimit(name: string): number {
    const r = binding.budgetOpen(name);
    if (r < 0) return NaN;
    const s = binding.budgetStats(r);
    binding.budgetClose(r);
    return typeof s === 'object' ? s.limit : NaN;
  }

  /** Budgets in use in this process (all environments). */
  static count(): number {
    return binding.budgetCount();
  }

  /** Whether reservations run in JS on shared memory (false: one native call each). */
  static get sharedMemory(): boolean {
    return FAST;
  }

  /**
   * Reserves `bytes` if that keeps the budget at or under its limit.
   * Returns false (and changes nothing) when it would not.
   */
  tryReserve(bytes: number): boolean {
    checkBytes(bytes);
    if (this.#closed) this.#throwClosed();
    return this._reserve(bytes) >= 0;
  }

  /**
   * Reserves validated `bytes` on an open handle; returns the usage right
   * after, or -1 when refused. One implementation per kind of budget.
   * @internal
   */
  protected _reserve(bytes: number): number {
    return binding.budgetReserve(this.slot, bytes, this.#cell) === 0 ? this.#stats().used : -1;
  }

  /**
   * Releases validated `bytes` on an open handle; returns the usage right
   * after, or -1 (changing nothing) when this environment holds fewer.
   * @internal
   */
  protected _release(bytes: number): number {
    return binding.budgetRelease(this.slot, bytes, this.#cell) === 0 ? this.#stats().used : -1;
  }

  /** Like {@link tryReserve}, but throws {@link BudgetExceededError} over the limit. */
  reserve(bytes: number): void {
    if (!this.tryReserve(bytes)) {
      throw new BudgetExceededError(this.name, bytes, this.limit, this.used);
    }
  }

  /**
   * Returns `bytes` to the budget. At most what this environment holds can be
   * released (`ERR_BUDGET_RELEASE_EXCEEDS_HELD`), so the counter never goes
   * negative. Bytes a LimitedAllocator reserved are that allocator's to
   * release.
   */
  release(bytes: number): void {
    checkBytes(bytes);
    if (this.#closed) this.#throwClosed();
    if (this._release(bytes) < 0) this.#throwRelease(bytes);
  }

  /**
   * Bytes reserved now, process-wide. On a budget some handle opened with
   * `lease`, the counter also counts the threads' unused leases, so this is
   * a native call that subtracts them (exact when no reservation is under
   * way); otherwise it is one read of the counter.
   */
  get used(): number {
    if (!FAST) return this.#stats().used;
    if (!this.#narrow) return Number(B64[this.#used]!);
    if ((U32[this.#used - LOW + FLAGS32]! & FLAG_LEASING) === 0) return U32[this.#used]!;
    const used = binding.budgetUsed(this.slot);
    return used >= 0 ? used : U32[this.#used]!;
  }

  /**
   * Highest `used` reached, process-wide. A native call (it gathers every
   * thread's record of its own highs), so not for tight loops. On a leasing
   * budget it is the highest the counter reached, leases included: at most
   * one lease per thread above the bytes really reserved then.
   */
  get peak(): number {
    if (this.#closed) this.#throwClosed();
    const peak = binding.budgetPeak(this.slot);
    if (peak < 0) this.#throwClosed();
    return peak;
  }

  get limit(): number {
    if (!FAST) return this.#stats().limit;
    return F64[this.#limit]!;
  }

  /**
   * Bytes this environment holds on this budget, those of its allocators
   * included.
   */
  get held(): number {
    if (this.#closed) return 0;
    if (FAST && cellHandles[this.slot] === 0) return LEDGER[this.slot]!;
    const held = binding.budgetHeld(this.slot);
    if (held < 0) this.#throwClosed();
    return held;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Who shares the counter: the threads of this process, or every process of this user on the machine. */
  get scope(): 'process' | 'machine' {
    return 'process';
  }

  /** Process-wide statistics (one native call). */
  stats(): BudgetStats {
    if (this.#closed) this.#throwClosed();
    const s = this.#stats();
    return { ...s, held: this.held };
  }

  /**
   * Changes the limit for every handle in every environment. It cannot go
   * below what is reserved now (`ERR_BUDGET_LIMIT_BELOW_USAGE`), nor cross
   * 2^32 - 1 bytes in either direction from where it was created, because
   * that decides the counter's width (`ERR_OUT_OF_RANGE`). A reservation that
   * races with a lowering either is seen by it (and the lowering fails) or
   * sees the new limit and backs out, so usage never stays above the limit.
   */
  setLimit(limit: number): void {
    validateBytes(limit, 'limit');
    if (this.#closed) this.#throwClosed();
    const r = binding.budgetSetLimit(this.slot, limit);
    if (r === 7) {
      throw new BudgetError(
        'ERR_BUDGET_LIMIT_BELOW_USAGE',
        `Cannot lower the limit of ${this.#label()} to ${limit} bytes: ${this.used} bytes are reserved`,
        this.name,
        limit,
        this.limit,
        this.used,
      );
    }
    if (r === 8) {
      throw new OutOfRangeError(
        'limit',
        this.#narrow ? 'at most 4294967295 for a budget created below 4 GiB' : 'above 4294967295 for a budget created above 4 GiB',
        limit,
      );
    }
  }

  /**
   * Closes this handle. When it is the environment's last handle on the
   * budget, the bytes this environment still holds are returned. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this._closeHandle();
  }

  /**
   * Lets go of what the handle holds in native code; called once, by close().
   * @internal
   */
  protected _closeHandle(): void {
    registry.unregister(this);
    if (this.#cell >= 0) cellHandles[this.slot]!--;
    binding.budgetClose(this.slot, this.#cell);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #stats(): Omit<BudgetStats, 'held'> {
    const s = binding.budgetStats(this.slot);
    if (typeof s === 'number') this.#throwClosed();
    const { narrow: _narrow, ...rest } = s as Exclude<typeof s, number>;
    return rest;
  }

  #label(): string {
    return this.name ? `budget ${JSON.stringify(this.name)}` : 'the private budget';
  }

  #throwRelease(bytes: number): never {
    throw new BudgetError(
      'ERR_BUDGET_RELEASE_EXCEEDS_HELD',
      `Cannot release ${bytes} bytes from ${this.#label()}: this thread holds ${this.held}`,
      this.name,
      bytes,
      this.limit,
      this.used,
    );
  }

  #throwClosed(): never {
    throw new BudgetError('ERR_BUDGET_CLOSED', `The handle on ${this.#label()} is closed`, this.name, 0, NaN, NaN);
  }
}

/** A budget whose limit is below 2^32: 32-bit Atomics, no BigInt. */
class NarrowBudget extends Budget {
  // Initialised to 0 for the reason given in Budget.
  readonly #used: number = 0; // U32 index of the low word of `used`
  readonly #limit32: number = 0;
  readonly #held: number = 0; // LEDGER index of what this handle's bytes count in
  /**
   * The counter as this handle last saw it. The first compare-exchange uses
   * it as its expected value instead of reading the counter first: when no
   * other thread has moved the counter since, that saves the read that the
   * exchange would otherwise wait on. A stale guess costs one failed
   * exchange, which returns the real value; it can never decide an outcome.
   */
  #seen = 0;

  constructor(name: string, slot: number, cell: number) {
    super(name, slot, cell, true);
    const base = BASE32 + slot * SLOT_WORDS32;
    this.#used = base + LOW;
    this.#limit32 = base + LIMIT32;
    this.#held = this.heldIndex;
  }

  // tryReserve() and release() are repeated in each subclass so that their
  // call of _reserve/_release sees one class only and stays monomorphic in a
  // process that also uses the other kind. Errors take the base class's path.
  override tryReserve(bytes: number): boolean {
    checkBytes(bytes);
    if (this.closed) return super.tryReserve(bytes);
    return this._reserve(bytes) >= 0;
  }

  override release(bytes: number): void {
    checkBytes(bytes);
    if (this.closed || this._release(bytes) < 0) super.release(bytes);
  }

  // The common case is one guessed exchange that succeeds, written without a
  // loop so that V8 compiles it as straight-line code; everything else (a
  // guess that is stale or would pass the limit, a lost race) goes to
  // #reserveSlow, which reads the counter.
  //
  // Termination safety: V8 stops a thread (Worker#terminate, process.exit()
  // in a worker, a heap-limit breach) only at an interrupt check, and those
  // sit at calls (builtins such as Atomics.* included) and at the back edges
  // of loops. Between the atomic operation on the shared counter and the
  // store to this thread's ledger there is neither: the ledger store comes
  // right after the operation that commits, with no call or loop between
  // them, so when the thread is torn down the ledger says exactly what it
  // added to the counter. A thread stopped at the operation's own call has
  // not changed the counter yet. See "Failure semantics" in the docs.
  protected override _reserve(bytes: number): number {
    const cur = this.#seen;
    const next = cur + bytes;
    if (next <= U32[this.#limit32]! && Atomics.compareExchange(U32, this.#used, cur, next) === cur) {
      LEDGER[this.#held]! += bytes; // no call before this store: see above
      return this.#taken(next, bytes);
    }
    return this.#reserveSlow(bytes);
  }

  /**
   * Retries from the counter's real value; only this path refuses. When
   * other handles lease on this budget, their threads' unused leases are
   * taken back (once) before a refusal.
   */
  #reserveSlow(bytes: number): number {
    const i = this.#used;
    const limit = U32[this.#limit32]!;
    let cur = U32[i]!;
    let reclaimed = false;
    for (;;) {
      const next = cur + bytes;
      if (next > limit) {
        if (!reclaimed && (U32[i - LOW + FLAGS32]! & FLAG_LEASING) !== 0 && binding.budgetReclaimLeases(this.slot) > 0) {
          reclaimed = true;
          cur = U32[i]!;
          continue;
        }
        this.#seen = cur;
        LEDGER[MAX + MAX + this.slot]!++;
        return -1;
      }
      const prev = Atomics.compareExchange(U32, i, cur, next);
      if (prev === cur) {
        LEDGER[this.#held]! += bytes; // no call or back edge before this store
        return this.#taken(next, bytes);
      }
      cur = prev;
    }
  }

  /**
   * Bookkeeping after an exchange from `next - bytes` to `next` succeeded
   * and the ledger recorded it.
   */
  #taken(next: number, bytes: number): number {
    this.#seen = next;
    // A concurrent setLimit() may have lowered the limit since we read it; it
    // publishes first and then checks usage, so one side sees the other.
    // Back out if it did: the counter first, then the ledger, with nothing
    // between them (see _reserve).
    if (next > U32[this.#limit32]!) {
      const after = Atomics.sub(U32, this.#used, bytes) - bytes;
      LEDGER[this.#held]! -= bytes;
      this.#seen = after;
      LEDGER[MAX + MAX + this.slot]!++;
      return -1;
    }
    const slot = this.slot;
    LEDGER[MAX + slot]!++;
    if (next > LEDGER[PEAK + slot]!) LEDGER[PEAK + slot] = next;
    return next;
  }

  // A release subtracts from the counter first and then from the ledger, with
  // nothing between them (see _reserve); `held` was read before, and only
  // this thread writes its ledger.
  protected override _release(bytes: number): number {
    const h = this.#held;
    const held = LEDGER[h]!;
    if (bytes > held) return -1;
    const prev = Atomics.sub(U32, this.#used, bytes);
    LEDGER[h] = held - bytes;
    return (this.#seen = prev - bytes);
  }
}

/**
 * A narrow budget opened with `lease`: this thread's reservations are served
 * from its lease word (LEASE[slot], on a cache line of this thread's ledger)
 * instead of the shared counter, and the lease is refilled from the counter
 * in chunks while the counter is far from the limit.
 *
 * What this thread added to the counter is, at every point where V8 can stop
 * the thread, exactly held + lease + pending (the ledger's words), which is
 * what the addon gives back at teardown. Each change to shared memory is one
 * atomic operation followed, with no call or back edge between (see
 * "Termination safety" in NarrowBudget), by the ledger stores that account
 * for it:
 *
 * - take from the lease: CAS lease l -> l - b; held += b.
 * - refill: CAS counter c -> c + b + chunk; held += b, pending = chunk;
 *   Atomics.add(lease, chunk); pending = 0.
 * - release: Atomics.add(lease, b); held -= b. Past 2 chunks, the excess
 *   goes back: CAS lease l -> chunk; pending = l - chunk;
 *   Atomics.sub(counter, pending); pending = 0.
 *
 * Any thread may take a lease back (the addon exchanges it with 0 under the
 * registry mutex and subtracts it from the counter): a reservation that does
 * not fit, a lowering of the limit. The owner changes its lease word only
 * with atomic operations, so an exchange and the owner's CAS cannot both
 * take the same bytes; an Atomics.add after an exchange lands in the fresh
 * (zero) lease.
 *
 * Leases are only taken while the counter stays at or under half the limit
 * after the refill; nearer the limit a reservation takes exactly its bytes
 * from the counter, as NarrowBudget does.
 */
class LeasingBudget extends Budget {
  readonly #used: number = 0; // U32 index of the low word of `used`
  readonly #limit32: number = 0;
  readonly #held: number = 0; // LEDGER index of what this handle's bytes count in
  /** The refill chunk, from the limit as the last refill saw it. */
  #chunk = 0;

  constructor(name: string, slot: number, cell: number) {
    super(name, slot, cell, true);
    const base = BASE32 + slot * SLOT_WORDS32;
    this.#used = base + LOW;
    this.#limit32 = base + LIMIT32;
    this.#held = this.heldIndex;
    this.#chunk = leaseChunk(U32[base + LIMIT32]!);
  }

  // As in NarrowBudget.
  override tryReserve(bytes: number): boolean {
    checkBytes(bytes);
    if (this.closed) return super.tryReserve(bytes);
    return this._reserve(bytes) >= 0;
  }

  override release(bytes: number): void {
    checkBytes(bytes);
    if (this.closed || this._release(bytes) < 0) super.release(bytes);
  }

  // Returns the counter as read after the operation (bytes reserved plus
  // every thread's lease): the allocator's pressure levels see that.
  protected override _reserve(bytes: number): number {
    const slot = this.slot;
    const l = LEASE[slot]!;
    if (l >= bytes && Atomics.compareExchange(LEASE, slot, l, l - bytes) === l) {
      LEDGER[this.#held]! += bytes; // no call before this store
      LEDGER[MAX + slot]!++;
      return U32[this.#used]!;
    }
    return this.#reserveSlow(bytes);
  }

  /** Refills the lease, or takes the bytes from the counter; only this path refuses. */
  #reserveSlow(bytes: number): number {
    const slot = this.slot;
    const i = this.#used;
    const limit = U32[this.#limit32]!;
    const chunk = (this.#chunk = leaseChunk(limit));
    const half = limit / 2;
    let cur = U32[i]!;
    let reclaimed = false;
    for (;;) {
      const next = cur + bytes;
      if (next > limit) {
        // Other threads' unused leases (and this one's) count in the
        // counter: take them back, once, before refusing.
        if (!reclaimed && binding.budgetReclaimLeases(slot) > 0) {
          reclaimed = true;
          cur = U32[i]!;
          continue;
        }
        LEDGER[MAX + MAX + slot]!++;
        return -1;
      }
      const take = next + chunk <= half ? chunk : 0;
      const prev = Atomics.compareExchange(U32, i, cur, next + take);
      if (prev === cur) {
        LEDGER[this.#held]! += bytes; // no call or back edge before these stores
        LEDGER[PENDING + slot] = take;
        return this.#refilled(next + take, bytes, take);
      }
      cur = prev;
    }
  }

  /**
   * After the counter went up by `bytes` (now held) and `take` (now
   * pending) to `top`: moves `take` into the lease, or backs out if a
   * concurrent setLimit() lowered the limit (see NarrowBudget#taken).
   */
  #refilled(top: number, bytes: number, take: number): number {
    const slot = this.slot;
    if (top > U32[this.#limit32]!) {
      Atomics.sub(U32, this.#used, bytes + take);
      LEDGER[this.#held]! -= bytes; // no call before these stores
      LEDGER[PENDING + slot] = 0;
      LEDGER[MAX + MAX + slot]!++;
      return -1;
    }
    if (take > 0) {
      Atomics.add(LEASE, slot, take);
      LEDGER[PENDING + slot] = 0; // no call before this store
    }
    LEDGER[MAX + slot]!++;
    if (top > LEDGER[PEAK + slot]!) LEDGER[PEAK + slot] = top;
    return top;
  }

  protected override _release(bytes: number): number {
    const h = this.#held;
    const held = LEDGER[h]!;
    if (bytes > held) return -1;
    const slot = this.slot;
    const l = Atomics.add(LEASE, slot, bytes) + bytes;
    LEDGER[h] = held - bytes; // no call before this store
    // Chunks of the limit as it is now: after setLimit() lowered it, a
    // lease filled in the old chunks goes down to the new ones.
    const chunk = leaseChunk(U32[this.#limit32]!);
    if (l > 2 * chunk) this.#giveBack(l, chunk);
    return U32[this.#used]!;
  }

  /** Gives the lease's excess over one chunk back to the counter. */
  #giveBack(l: number, keep: number): void {
    const slot = this.slot;
    if (Atomics.compareExchange(LEASE, slot, l, keep) === l) {
      LEDGER[PENDING + slot] = l - keep; // no call before this store
      Atomics.sub(U32, this.#used, l - keep);
      LEDGER[PENDING + slot] = 0; // nor before this one
    }
  }
}

/**
 * The refill chunk of a leasing budget: 64 KiB, or a 64th of the limit when
 * that is less (a lease is taken only while the counter stays at or under
 * half the limit, so the leases of up to 32 threads fit there).
 */
function leaseChunk(limit: number): number {
  return Math.min(65536, Math.floor(limit / 64));
}

/**
 * A budget whose limit is 2^32 or more: 64-bit Atomics on BigInts.
 *
 * The pair is kept near the cost of a bare BigInt64 compare-exchange loop by
 * doing no more BigInt work than that loop: the first exchange uses the
 * counter as this handle last saw it (as NarrowBudget does), the limit is
 * compared as a BigInt kept beside the number it was made from (remade when
 * the limit changes), and the peak is raised only when the new usage passes
 * the highest value this handle has written there. None of these can decide
 * an outcome wrongly: a stale guess fails its exchange, a changed limit is
 * seen by comparing numbers, and the peak cache is never above this
 * environment's peak (which only grows while the handle is open).
 */
class WideBudget extends Budget {
  readonly #used: number = 0; // B64 index
  readonly #limit: number = 0; // F64 index
  readonly #held: number = 0; // as in NarrowBudget
  /** The counter as this handle last saw it; only a guess (see NarrowBudget). */
  #seen = 0n;
  /** The limit #limitBig was made from; NaN until the first reservation. */
  #limitNum = NaN;
  #limitBig = 0n;
  /** A usage at or under this environment's peak for the slot. */
  #peakBig = 0n;

  constructor(name: string, slot: number, cell: number) {
    super(name, slot, cell, false);
    const base = BASE64 + slot * SLOT_WORDS64;
    this.#used = base;
    this.#limit = base + 2;
    this.#held = this.heldIndex;
  }

  // As in NarrowBudget. The public pair returns booleans, so it never turns
  // a BigInt into a number; _reserve/_release (the allocator's) do.
  override tryReserve(bytes: number): boolean {
    checkBytes(bytes);
    if (this.closed) return super.tryReserve(bytes);
    return this.#take(bytes);
  }

  override release(bytes: number): void {
    checkBytes(bytes);
    if (this.closed || !this.#give(bytes)) super.release(bytes);
  }

  protected override _reserve(bytes: number): number {
    return this.#take(bytes) ? Number(this.#seen) : -1;
  }

  protected override _release(bytes: number): number {
    return this.#give(bytes) ? Number(this.#seen) : -1;
  }

  // The common case: the guess is right and the limit is the one cached.
  // Termination safety as in NarrowBudget: the ledger store comes right
  // after the exchange that commits, with no call or back edge between.
  #take(bytes: number): boolean {
    const b = BigInt(bytes);
    const cur = this.#seen;
    const next = cur + b;
    if (
      F64[this.#limit] === this.#limitNum &&
      next <= this.#limitBig &&
      Atomics.compareExchange(B64, this.#used, cur, next) === cur
    ) {
      LEDGER[this.#held]! += bytes; // no call before this store
      return this.#taken(next, b, bytes);
    }
    return this.#takeSlow(b, bytes);
  }

  /** Retries from the counter's real value and the current limit; only this path refuses. */
  #takeSlow(b: bigint, bytes: number): boolean {
    const i = this.#used;
    let cur = Atomics.load(B64, i);
    for (;;) {
      const limit = F64[this.#limit]!;
      if (limit !== this.#limitNum) {
        this.#limitNum = limit;
        this.#limitBig = BigInt(limit);
      }
      const next = cur + b;
      if (next > this.#limitBig) {
        this.#seen = cur;
        LEDGER[MAX + MAX + this.slot]!++;
        return false;
      }
      const prev = Atomics.compareExchange(B64, i, cur, next);
      if (prev === cur) {
        LEDGER[this.#held]! += bytes; // no call or back edge before this store
        return this.#taken(next, b, bytes);
      }
      cur = prev;
    }
  }

  /** Bookkeeping after an exchange to `next` succeeded and the ledger recorded it. */
  #taken(next: bigint, b: bigint, bytes: number): boolean {
    this.#seen = next;
    // A concurrent setLimit() may have lowered the limit since it was read
    // (see NarrowBudget#taken): back out, the counter first, then the ledger.
    if (F64[this.#limit] !== this.#limitNum && Number(next) > F64[this.#limit]!) {
      const prev = Atomics.sub(B64, this.#used, b);
      LEDGER[this.#held]! -= bytes; // no call before this store
      this.#seen = prev - b;
      LEDGER[MAX + MAX + this.slot]!++;
      return false;
    }
    LEDGER[MAX + this.slot]!++;
    if (next > this.#peakBig) this.#raisePeak(next);
    return true;
  }

  #raisePeak(next: bigint): void {
    const used = Number(next);
    const i = PEAK + this.slot;
    if (used > LEDGER[i]!) LEDGER[i] = used;
    this.#peakBig = next;
  }

  // As in NarrowBudget#_release: the counter, then the ledger, nothing between.
  #give(bytes: number): boolean {
    const h = this.#held;
    const held = LEDGER[h]!;
    if (bytes > held) return false;
    const b = BigInt(bytes);
    const prev = Atomics.sub(B64, this.#used, b);
    LEDGER[h] = held - bytes; // no call before this store
    this.#seen = prev - b;
    return true;
  }
}

/**
 * Where the runtime refuses external buffers: one native call per operation
 * (the base class's implementation).
 */
class NativeBudget extends Budget {}

/** Exposed for argument checks of callers that take a Budget. */
export function assertBudget(value: unknown, name: string): Budget {
  if (!(value instanceof Budget)) throw new InvalidArgTypeError(name, 'an instance of Budget', value);
  return value;
}
