/**
 * Fuel: a cooperative operation budget. A task spends it with
 * `fuel.consume(n)` inside its loops; when the budget is spent the next
 * request throws {@link FuelExhaustedError}.
 *
 * The hot path is a subtraction and a compare on a local grant: no atomic,
 * no message, no clock. Every `grant` units (and at exhaustion) the slow path
 * settles the account and calls `onCheckpoint(used)`, which the task worker
 * uses to publish the total to shared memory for the parent's monitoring.
 *
 * Requests are all-or-nothing: a request that does not fit is refused whole
 * and not counted, so after `consume(1)` runs out, `used === limit` exactly.
 * Once refused, a budget stays spent (every later non-zero request throws).
 *
 * This module must not load the native addon: the task worker imports it.
 *
 * @module
 */
import { InvalidArgTypeError, OutOfRangeError } from '../errors';
import { FuelExhaustedError, FuelMeteringError } from './errors';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
/** Largest grant between checkpoints. */
const MAX_GRANT = 4096;

/** Options of {@link Fuel}. */
export interface FuelOptions {
  /**
   * Units handed to the hot path between two checkpoints. Smaller grants
   * publish progress more often and cost a little more per unit.
   * @default min(4096, max(1, ceil(limit / 100))) — about 100 checkpoints over a finite budget
   */
  grant?: number;
  /** Called on the slow path with the units used so far. */
  onCheckpoint?: (used: number) => void;
  /** Called once, with the error, the first time a request is refused. */
  onExhausted?: (error: FuelExhaustedError) => void;
}

/** A fuel budget. One instance belongs to one thread. */
export class Fuel {
  /** The budget (`Infinity` for none: fuel is then only counted, and not metered). */
  #limit: number;
  /** Units left in the current grant. */
  #left = 0;
  /** Units accounted when the grant is used up: used = granted - left. */
  #granted = 0;
  readonly #grant: number;
  readonly #onCheckpoint: ((used: number) => void) | undefined;
  readonly #onExhausted: ((error: FuelExhaustedError) => void) | undefined;
  #exhausted = false;

  constructor(limit: number = Infinity, options: FuelOptions = {}) {
    if (typeof limit !== 'number') throw new InvalidArgTypeError('limit', 'of type number', limit);
    if (limit !== Infinity && !(Number.isInteger(limit) && limit >= 0 && limit <= MAX_SAFE)) {
      throw new OutOfRangeError('limit', `an integer >= 0 and <= ${MAX_SAFE}, or Infinity`, limit);
    }
    if (typeof options !== 'object' || options === null) throw new InvalidArgTypeError('options', 'of type object', options);
    const { grant, onCheckpoint, onExhausted } = options;
    if (grant !== undefined && (typeof grant !== 'number' || !Number.isInteger(grant) || grant < 1 || grant > 2 ** 30)) {
      if (typeof grant !== 'number') throw new InvalidArgTypeError('options.grant', 'of type number', grant);
      throw new OutOfRangeError('options.grant', `an integer >= 1 and <= ${2 ** 30}`, grant);
    }
    if (onCheckpoint !== undefined && typeof onCheckpoint !== 'function') {
      throw new InvalidArgTypeError('options.onCheckpoint', 'of type function', onCheckpoint);
    }
    if (onExhausted !== undefined && typeof onExhausted !== 'function') {
      throw new InvalidArgTypeError('options.onExhausted', 'of type function', onExhausted);
    }
    this.#limit = limit;
    this.#grant = grant ?? (limit === Infinity ? MAX_GRANT : Math.min(MAX_GRANT, Math.max(1, Math.ceil(limit / 100))));
    this.#onCheckpoint = onCheckpoint;
    this.#onExhausted = onExhausted;
  }

  /**
   * Spends `n` units (a whole number, default 1). Throws
   * {@link FuelExhaustedError} when fewer than `n` are left, spending none.
   */
  consume(n = 1): void {
    // Whole numbers 0..2^32-1 only: NaN, negatives, fractions and anything
    // that is not a number (a BigInt would throw in the arithmetic) take the
    // slow path, which validates. The type test folds away in optimised code.
    if (typeof n === 'number' && (n >>> 0) === n) {
      const left = this.#left - n;
      if (left >= 0) {
        this.#left = left;
        return;
      }
    }
    this.#refill(n);
  }

  /** The budget (`Infinity` when fuel is only counted, not metered). */
  get limit(): number {
    return this.#limit;
  }

  /** Whether fuel is metered (the budget is finite). */
  get metered(): boolean {
    return this.#limit !== Infinity;
  }

  /**
   * Adds `n` units to the budget. Refused with
   * {@link FuelMeteringError} (`ERR_FUEL_METERING_OFF`) when fuel is not
   * metered, and with `ERR_OUT_OF_RANGE` when the budget would pass 2^53 − 1;
   * nothing changes on a refusal. A budget that had refused a request takes
   * requests again once they fit.
   */
  add(n: number): void {
    checkUnits(n);
    if (this.#limit === Infinity) throw new FuelMeteringError('add');
    if (this.#limit + n > MAX_SAFE) throw new OutOfRangeError('n', `at most ${MAX_SAFE - this.#limit} (the budget may not pass ${MAX_SAFE})`, n);
    this.#limit += n;
    this.#exhausted = false;
  }

  /**
   * Starts the account again: nothing used, and the budget set to `limit`
   * (default: the current budget). Refused with {@link FuelMeteringError}
   * when fuel is not metered; a bad `limit` changes nothing.
   */
  reset(limit: number = this.#limit): void {
    if (this.#limit === Infinity) throw new FuelMeteringError('reset');
    checkUnits(limit);
    this.#limit = limit;
    this.#granted = 0;
    this.#left = 0;
    this.#exhausted = false;
    this.#onCheckpoint?.(0);
  }

  /** Whether `n` more units would be granted, without spending them. */
  has(n = 1): boolean {
    checkUnits(n);
    return this.used + n <= this.#limit;
  }

  /** Units spent so far. */
  get used(): number {
    return this.#granted - this.#left;
  }

  /** Units left (`Infinity` without a budget). */
  get remaining(): number {
    return this.#limit - this.used;
  }

  /** Whether a request has been refused. */
  get exhausted(): boolean {
    return this.#exhausted;
  }

  #refill(n: unknown): void {
    checkUnits(n);
    const used = this.#granted - this.#left;
    const next = used + n;
    if (next > this.#limit) {
      const err = new FuelExhaustedError(this.#limit, used, n);
      if (!this.#exhausted) {
        this.#exhausted = true;
        this.#onCheckpoint?.(used);
        this.#onExhausted?.(err);
      }
      throw err;
    }
    this.#granted = Math.min(this.#limit, next + this.#grant);
    this.#left = this.#granted - next;
    this.#onCheckpoint?.(next);
  }
}

function checkUnits(n: unknown): asserts n is number {
  if (typeof n !== 'number') throw new InvalidArgTypeError('n', 'of type number', n);
  if (!Number.isInteger(n) || n < 0 || n > MAX_SAFE) throw new OutOfRangeError('n', `an integer >= 0 and <= ${MAX_SAFE}`, n);
}
