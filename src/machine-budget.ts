/**
 * Machine-wide byte budgets: `Budget.open(name, limit, { scope: 'machine' })`.
 *
 * Every process of the same user that opens the same name (in the same
 * directory) shares one counter, with the rules of process budgets: the
 * counter is never above its limit, as any process sees it; a release gives
 * back at most what the caller holds; the same errors. The counter lives in
 * a small file in a memory-backed directory (`/dev/shm/resource-guard-<uid>`),
 * mapped by each process, private to its owner (mode 0600; a file of another
 * user, open to others, or a symbolic link is refused). Each process holds a
 * kernel lock on its entry in the file while it has the budget open, so the
 * bytes of a process that died, however it died (SIGKILL and the OOM killer
 * included), are given back:
 *
 * - by any process that opens the budget;
 * - by a reservation that would otherwise be refused, at most 1 ms after the
 *   last check for dead holders began, so a dead process's bytes are there
 *   for the next reservation that needs them once the process has ended;
 * - by a periodic check every second in each process that has one open, so
 *   that `used` is right even when nobody asks for more.
 *
 * Inside a process, bytes belong to the thread that reserved them, as with
 * process budgets: a worker that ends in any way gives its bytes back.
 *
 * Each operation is one native call under a lock in the shared file; see
 * docs/budgets.md for the design and the figures.
 *
 * @module
 */
import * as os from 'node:os';
import { binding } from './binding';
import { Budget, setMachineOpener, type BudgetStats } from './budget';
import { BudgetError, OutOfRangeError } from './errors';
import { validateBytes } from './validate';

/** How many processes can have one machine budget open at once. */
export const MACHINE_BUDGET_MAX_PROCESSES = 256;
/** How often each process checks its machine budgets for dead holders. */
export const MACHINE_BUDGET_RECLAIM_INTERVAL_MS = 1000;

const NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/;

/** Statistics of a machine budget, machine-wide. */
export interface MachineBudgetStats extends BudgetStats {
  scope: 'machine';
  /** Processes that have the budget open now (also in `openHandles`). */
  holders: number;
  /** Bytes this process holds, all its threads together. */
  processHeld: number;
  /** Bytes given back for processes that died holding them. */
  reclaimedBytes: number;
  /** Processes found dead whose bytes were given back. */
  reclaimedProcesses: number;
  /** The file that holds the budget. */
  path: string;
}

let openHere = 0;
let timer: NodeJS.Timeout | undefined;

function opened(): void {
  if (openHere++ === 0) {
    timer = setInterval(() => {
      try {
        binding.machineReclaim();
      } catch {
        // Nothing a check could throw is the caller's concern: it runs again.
      }
    }, MACHINE_BUDGET_RECLAIM_INTERVAL_MS);
    timer.unref();
  }
}

function closed(): void {
  if (--openHere === 0 && timer !== undefined) {
    clearInterval(timer);
    timer = undefined;
  }
}

const registry = new FinalizationRegistry<number>((handle) => {
  try {
    binding.machineClose(handle);
  } finally {
    closed();
  }
});

const uid = (): number => (typeof process.geteuid === 'function' ? process.geteuid() : 0);

/**
 * The default directory: `resource-guard-<uid>` in /dev/shm (else the temp
 * directory), made with mode 0700 and checked to be this user's own, so
 * that no other user can take a budget's name in it first.
 */
function defaultDirectory(name: string): string {
  const fs = require('node:fs') as typeof import('node:fs');
  const dir = `${machineBudgetBase()}/resource-guard-${uid()}`;
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(err as NodeJS.ErrnoException, name, dir);
  }
  let st: import('node:fs').Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (err) {
    throw ioError(err as NodeJS.ErrnoException, name, dir);
  }
  if (!st.isDirectory() || st.uid !== uid() || (st.mode & 0o077) !== 0) {
    throw new BudgetError(
      'ERR_BUDGET_FOREIGN',
      `Refusing ${dir}: the directory of this user's machine budgets must be a directory owned by uid ${uid()} with no access for others (mode 0700)`,
      name,
      0,
      NaN,
      NaN,
    );
  }
  return dir;
}

function ioError(err: NodeJS.ErrnoException, name: string, path: string): BudgetError {
  const e = new BudgetError('ERR_BUDGET_IO', `Cannot use ${path} for the machine budget ${JSON.stringify(name)}: ${err.code ?? err.message}`, name, 0, NaN, NaN);
  (e as { errno?: number }).errno = typeof err.errno === 'number' ? -Math.abs(err.errno) : undefined;
  (e as { syscallCode?: string }).syscallCode = err.code;
  return e;
}

function fileOf(directory: string, name: string): string {
  return `${directory}/rg-${uid()}-${name}.budget`;
}

/** The typed error for a native machine-budget code (other than over-limit). */
function machineError(code: number, name: string, path: string, requested: number): BudgetError {
  const label = `machine budget ${JSON.stringify(name)}`;
  switch (code) {
    case 3:
      return new BudgetError('ERR_BUDGET_NOT_FOUND', `No ${label} (${path}); give a limit to create it`, name, 0, NaN, NaN);
    case 5:
      return new BudgetError(
        'ERR_BUDGET_TOO_MANY',
        `The ${label} is open in ${MACHINE_BUDGET_MAX_PROCESSES} live processes, the most one budget holds`,
        name,
        requested,
        NaN,
        NaN,
      );
    case 6:
      return new BudgetError('ERR_BUDGET_CLOSED', `The handle on the ${label} is closed`, name, 0, NaN, NaN);
    case 9:
      return new BudgetError(
        'ERR_BUDGET_FOREIGN',
        `Refusing ${path}: it must be a regular file owned by this user (uid ${process.geteuid?.() ?? '?'}) with no access for others (mode 0600)`,
        name,
        requested,
        NaN,
        NaN,
      );
    case 10:
      return new BudgetError(
        'ERR_BUDGET_CORRUPT',
        `Refusing ${path}: it is not a machine budget this version of resource-guard can use (wrong magic, version, size or contents); remove it if no process uses it`,
        name,
        requested,
        NaN,
        NaN,
      );
    case 11:
      return new BudgetError(
        'ERR_BUDGET_UNSUPPORTED',
        `Machine-wide budgets are available on Linux only (this is ${process.platform})`,
        name,
        requested,
        NaN,
        NaN,
      );
    case 12: {
      const errno = binding.machineErrno();
      let sys = `errno ${errno}`;
      try {
        sys = require('node:util').getSystemErrorName(-errno) as string;
      } catch {
        // keep the number
      }
      const err = new BudgetError('ERR_BUDGET_IO', `Cannot use ${path} for the ${label}: ${sys}`, name, requested, NaN, NaN);
      (err as { errno?: number; syscallCode?: string }).errno = errno;
      (err as { syscallCode?: string }).syscallCode = sys;
      return err;
    }
    case 13:
      return new BudgetError(
        'ERR_BUDGET_LOCK_TIMEOUT',
        `The lock of the ${label} (${path}) stayed taken for 2 s by a running process; the file may be damaged`,
        name,
        requested,
        NaN,
        NaN,
      );
    case 14:
      return new BudgetError(
        'ERR_BUDGET_LOST',
        `The machine budget's file ${path} was removed, replaced or shortened, or this process's entry in it was changed from outside; bytes counted there are lost to the budget. Close this handle and open the budget again`,
        name,
        requested,
        NaN,
        NaN,
      );
    default:
      return new BudgetError('ERR_BUDGET_CORRUPT', `The ${label} failed with code ${code}`, name, requested, NaN, NaN);
  }
}

/**
 * A handle on a machine-wide byte budget. Open it with
 * `Budget.open(name, limit, { scope: 'machine' })`; it is a {@link Budget}
 * and works wherever one does (allocators, caches, health, metrics).
 */
export class MachineBudget extends Budget {
  /** The file that holds the budget. */
  readonly path: string;
  readonly #handle: number;
  readonly #owned: boolean;

  /** @internal use Budget.open(name, limit, { scope: 'machine' }) */
  constructor(name: string, handle: number, owned: boolean, path: string) {
    super(name, -1, -1, false);
    this.#handle = handle;
    this.#owned = owned;
    this.path = path;
    opened();
    registry.register(this, handle, this);
  }

  static {
    setMachineOpener((name, limit, where, owned) => {
      if (!NAME.test(name)) {
        throw new OutOfRangeError('name', 'for a machine budget, 1 to 100 characters of A-Z a-z 0-9 . _ - not starting with a dot', name);
      }
      const directory = where.directory ?? defaultDirectory(name);
      const path = fileOf(directory, name);
      const r = binding.machineOpen(directory, name, limit, owned);
      if (r >= 0) return new MachineBudget(name, r, owned, path);
      if (-r === 4) {
        const existing = binding.machineExistingLimit();
        return throwError(
          new BudgetError(
            'ERR_BUDGET_LIMIT_MISMATCH',
            `Machine budget ${JSON.stringify(name)} exists with a limit of ${existing} bytes, not ${limit}; open it without a limit or call setLimit()`,
            name,
            limit ?? 0,
            existing,
            NaN,
          ),
        );
      }
      return throwError(machineError(-r, name, path, limit ?? 0));
    });
  }

  override get scope(): 'process' | 'machine' {
    return 'machine';
  }

  protected override _reserve(bytes: number): number {
    const r = binding.machineReserve(this.#handle, bytes);
    if (r >= 0 || r === -1) return r;
    throw machineError(-r, this.name, this.path, bytes);
  }

  protected override _release(bytes: number): number {
    const r = binding.machineRelease(this.#handle, bytes);
    if (r >= 0) return r;
    if (r === -2) return -1;
    throw machineError(-r, this.name, this.path, bytes);
  }

  protected override _ownHeld(): number {
    return this.#owned ? binding.machineHeld(this.#handle) : 0;
  }

  protected override _closeHandle(): void {
    registry.unregister(this);
    try {
      binding.machineClose(this.#handle);
    } finally {
      closed();
    }
  }

  /** Bytes reserved now, machine-wide. */
  override get used(): number {
    this.#open();
    const r = binding.machineUsed(this.#handle);
    if (r < 0) throw machineError(-r, this.name, this.path, 0);
    return r;
  }

  override get limit(): number {
    this.#open();
    const r = binding.machineLimit(this.#handle);
    if (r < 0) throw machineError(-r, this.name, this.path, 0);
    return r;
  }

  /** Highest `used` reached, machine-wide, since the file was made. */
  override get peak(): number {
    return this.stats().peak;
  }

  /** Bytes this thread holds on the budget (through this handle, for an allocator's). */
  override get held(): number {
    if (this.closed) return 0;
    return binding.machineHeld(this.#handle);
  }

  override stats(): MachineBudgetStats {
    this.#open();
    const s = binding.machineStats(this.#handle);
    if (typeof s === 'number') throw machineError(s, this.name, this.path, 0);
    return {
      name: this.name,
      scope: 'machine',
      used: s.used,
      peak: s.peak,
      limit: s.limit,
      successes: s.successes,
      failures: s.failures,
      leased: 0,
      openHandles: s.holders,
      holders: s.holders,
      processHeld: s.processHeld,
      reclaimedBytes: s.reclaimedBytes,
      reclaimedProcesses: s.reclaimedProcesses,
      held: binding.machineHeld(this.#handle),
      path: this.path,
    };
  }

  /**
   * Changes the limit for every process. It cannot go below what is
   * reserved now (`ERR_BUDGET_LIMIT_BELOW_USAGE`), after what dead processes
   * held is given back.
   */
  override setLimit(limit: number): void {
    validateBytes(limit, 'limit');
    this.#open();
    const r = binding.machineSetLimit(this.#handle, limit);
    if (r === 0) return;
    if (r === 7) {
      throw new BudgetError(
        'ERR_BUDGET_LIMIT_BELOW_USAGE',
        `Cannot lower the limit of machine budget ${JSON.stringify(this.name)} to ${limit} bytes: ${this.used} bytes are reserved`,
        this.name,
        limit,
        this.limit,
        this.used,
      );
    }
    throw machineError(r, this.name, this.path, limit);
  }

  /**
   * Gives back now what processes that died held, instead of waiting for
   * the periodic check. Returns how many dead processes were found.
   */
  reclaim(): number {
    this.#open();
    const r = binding.machineReclaim(this.#handle);
    if (r < 0) throw machineError(-r, this.name, this.path, 0);
    return r;
  }

  #open(): void {
    if (this.closed) throw machineError(6, this.name, this.path, 0);
  }
}

function throwError(err: Error): never {
  throw err;
}

function machineBudgetBase(): string {
  return binding.machineDefaultDir() || os.tmpdir();
}

/**
 * The directory machine budgets use when none is given:
 * `resource-guard-<uid>` in /dev/shm, else in os.tmpdir() (made on first open).
 */
export function machineBudgetDirectory(): string {
  return `${machineBudgetBase()}/resource-guard-${uid()}`;
}
