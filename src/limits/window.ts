/**
 * A sliding-window allowance: at most `limit` units within any `windowMs`
 * milliseconds. A request that would pass the limit is refused whole and
 * does not consume the window; nothing blocks or waits.
 *
 * A unit taken at time t counts while `now < t + windowMs`: at exactly
 * `t + windowMs` it has left the window.
 *
 * This module must not load the native addon: task workers import it.
 *
 * @module
 */
import { InvalidArgTypeError, OutOfRangeError } from '../errors';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** A time source in milliseconds (monotonic). */
export type LimitClock = () => number;

export const defaultLimitClock: LimitClock = () => performance.now();

/** Validates an optional clock option. */
export function clockOption(value: unknown, name: string): LimitClock {
  if (value === undefined) return defaultLimitClock;
  if (typeof value !== 'function') throw new InvalidArgTypeError(name, 'of type function', value);
  return value as LimitClock;
}

/** Validates an amount: an integer 0..2^53 − 1. */
export function amountOf(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(name, 'of type number', value);
  if (!Number.isInteger(value) || value < 0 || value > MAX_SAFE) throw new OutOfRangeError(name, `an integer >= 0 and <= ${MAX_SAFE}`, value);
  return value;
}

/** Validates a window length in ms: finite, > 0. */
/** A time in milliseconds from the window's clock: a finite number. */
function timeOf(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(name, 'of type number', value);
  if (!Number.isFinite(value)) throw new OutOfRangeError(name, 'a finite number of milliseconds', value);
  return value;
}

export function windowOf(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(name, 'of type number', value);
  if (!Number.isFinite(value) || value <= 0) throw new OutOfRangeError(name, 'a finite number of milliseconds > 0', value);
  return value;
}

/** Units taken within a sliding window, refused whole above a limit. */
export class SlidingWindow {
  readonly limit: number;
  readonly windowMs: number;
  readonly #clock: LimitClock;
  /** Times and amounts, oldest first, from #head. */
  #times: number[] = [];
  #amounts: number[] = [];
  #head = 0;
  #sum = 0;

  constructor(limit: number, windowMs: number, clock?: LimitClock) {
    this.limit = amountOf(limit, 'limit');
    this.windowMs = windowOf(windowMs, 'windowMs');
    this.#clock = clockOption(clock, 'clock');
  }

  /** Units counted in the window now. */
  used(now: number = this.#clock()): number {
    this.#expire(timeOf(now, 'now'));
    return this.#sum;
  }

  /** Takes `amount` units if the window allows it; false (nothing taken) otherwise. */
  tryTake(amount: number, now: number = this.#clock()): boolean {
    amountOf(amount, 'amount');
    this.#expire(timeOf(now, 'now'));
    if (this.#sum + amount > this.limit) return false;
    if (amount === 0) return true;
    const last = this.#times.length - 1;
    if (last >= this.#head && this.#times[last] === now) this.#amounts[last]! += amount;
    else {
      this.#times.push(now);
      this.#amounts.push(amount);
    }
    this.#sum += amount;
    return true;
  }

  /** Entries kept (for leak checks). */
  get entries(): number {
    return this.#times.length - this.#head;
  }

  #expire(now: number): void {
    const edge = now - this.windowMs;
    while (this.#head < this.#times.length && this.#times[this.#head]! <= edge) {
      this.#sum -= this.#amounts[this.#head]!;
      this.#head++;
    }
    if (this.#head > 64 && this.#head * 2 > this.#times.length) {
      this.#times = this.#times.slice(this.#head);
      this.#amounts = this.#amounts.slice(this.#head);
      this.#head = 0;
    }
  }
}
