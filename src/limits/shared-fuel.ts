/**
 * Fuel shared by several threads: one budget in a `SharedArrayBuffer`,
 * consumed with a compare-and-swap, so concurrent requests from any number
 * of workers never spend more than the budget and the remaining count never
 * goes negative. A request that does not fit is refused whole
 * ({@link FuelExhaustedError}) and not counted.
 *
 * Every thread opens the same budget with `SharedFuel.from(fuel.buffer)`.
 *
 * This module must not load the native addon: task workers import it.
 *
 * @module
 */
import { InvalidArgTypeError, OutOfRangeError } from '../errors';
import { FuelExhaustedError } from './errors';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
/** Cells: remaining, used, limit, refused requests. */
const REMAINING = 0;
const USED = 1;
const LIMIT = 2;
const REFUSED = 3;
const CELLS = 4;
/** The buffer {@link SharedFuel.from} hands to the constructor. */
let adopting: SharedArrayBuffer | null = null;

function units(n: unknown, name: string): number {
  if (typeof n !== 'number') throw new InvalidArgTypeError(name, 'of type number', n);
  if (!Number.isInteger(n) || n < 0 || n > MAX_SAFE) throw new OutOfRangeError(name, `an integer >= 0 and <= ${MAX_SAFE}`, n);
  return n;
}

/** A fuel budget several threads spend at once. */
export class SharedFuel {
  readonly #cells: BigInt64Array;

  /** A new budget of `limit` units (an integer, 0..2^53 − 1). */
  constructor(limit: number) {
    const opened = adopting;
    adopting = null;
    if (opened !== null) {
      this.#cells = new BigInt64Array(opened);
      return;
    }
    const l = units(limit, 'limit');
    this.#cells = new BigInt64Array(new SharedArrayBuffer(CELLS * 8));
    Atomics.store(this.#cells, REMAINING, BigInt(l));
    Atomics.store(this.#cells, LIMIT, BigInt(l));
  }

  /** Opens the budget whose `buffer` another thread created (post it to the worker). */
  static from(buffer: SharedArrayBuffer): SharedFuel {
    if (!(buffer instanceof SharedArrayBuffer)) throw new InvalidArgTypeError('buffer', 'an instance of SharedArrayBuffer', buffer);
    if (buffer.byteLength !== CELLS * 8) throw new OutOfRangeError('buffer.byteLength', `${CELLS * 8} (a SharedFuel buffer)`, buffer.byteLength);
    adopting = buffer;
    return new SharedFuel(0);
  }

  /** The memory to hand to other threads. */
  get buffer(): SharedArrayBuffer {
    return this.#cells.buffer as SharedArrayBuffer;
  }

  /**
   * Spends `n` units (default 1), or throws {@link FuelExhaustedError}
   * spending none when fewer than `n` are left.
   */
  consume(n = 1): void {
    if (!this.tryConsume(n)) {
      const c = this.#cells;
      throw new FuelExhaustedError(Number(Atomics.load(c, LIMIT)), Number(Atomics.load(c, USED)), n);
    }
  }

  /** Spends `n` units if they are left; false (nothing spent) otherwise. */
  tryConsume(n = 1): boolean {
    units(n, 'n');
    const c = this.#cells;
    const want = BigInt(n);
    for (;;) {
      const left = Atomics.load(c, REMAINING);
      if (left < want) {
        Atomics.add(c, REFUSED, 1n);
        return false;
      }
      if (Atomics.compareExchange(c, REMAINING, left, left - want) === left) {
        Atomics.add(c, USED, want);
        return true;
      }
    }
  }

  /** Adds `n` units to the budget (refused past 2^53 − 1, changing nothing). */
  add(n: number): void {
    units(n, 'n');
    const c = this.#cells;
    const want = BigInt(n);
    for (;;) {
      const limit = Atomics.load(c, LIMIT);
      if (limit + want > BigInt(MAX_SAFE)) throw new OutOfRangeError('n', `at most ${MAX_SAFE - Number(limit)}`, n);
      if (Atomics.compareExchange(c, LIMIT, limit, limit + want) === limit) break;
    }
    Atomics.add(c, REMAINING, want);
  }

  /**
   * Starts the account again with `limit` units (default: the current
   * limit) and nothing used. Meant for when no thread is consuming: a
   * request racing a reset is counted against the old or the new budget.
   */
  reset(limit: number = this.limit): void {
    const l = BigInt(units(limit, 'limit'));
    const c = this.#cells;
    Atomics.store(c, LIMIT, l);
    Atomics.store(c, USED, 0n);
    Atomics.store(c, REFUSED, 0n);
    Atomics.store(c, REMAINING, l);
  }

  get limit(): number {
    return Number(Atomics.load(this.#cells, LIMIT));
  }
  get used(): number {
    return Number(Atomics.load(this.#cells, USED));
  }
  get remaining(): number {
    return Number(Atomics.load(this.#cells, REMAINING));
  }
  /** Requests refused since creation or the last reset. */
  get refused(): number {
    return Number(Atomics.load(this.#cells, REFUSED));
  }
}

