/**
 * What a limited task receives as its second argument: its fuel, its IO
 * meter, its byte budget and its limits.
 *
 * This module must not load the native addon: the task worker imports it
 * (the budget module is loaded only when a run asks for a budget).
 *
 * @module
 */
import type { Budget } from '../budget';
import { BudgetError, BudgetExceededError } from '../errors';
import type { Fuel } from './fuel';
import type { IoMeter } from './io';
import type { ResolvedLimits } from './types';

/** The second argument of a limited task. */
export interface TaskContext {
  /** The run's fuel: call `fuel.consume(n)` in loops. Counted even without a fuel limit. */
  readonly fuel: Fuel;
  /** Writes and reads charged against the run's IO budgets. */
  readonly io: IoMeter;
  /** The run's process-wide byte budget (the `budget` option), or null. */
  readonly budget: TaskBudget | null;
  /** The run's limits. */
  readonly limits: ResolvedLimits;
}

/** A limited task: a function of the input and the context. */
export type TaskFunction<I = unknown, R = unknown> = (input: I, ctx: TaskContext) => R | Promise<R>;

/**
 * A task's handle on a process-wide byte budget ({@link Budget}). It counts
 * what the task reserved for the usage report; the bytes themselves are the
 * budget's, so they count against every other user of the same name, and
 * when the worker exits, however it exits, whatever it still holds is
 * returned to the budget.
 */
export class TaskBudget {
  readonly #budget: Budget;
  readonly #onChange: (reserved: number, held: number, peak: number) => void;
  #reserved = 0;
  #held = 0;
  #peak = 0;

  constructor(budget: Budget, onChange: (reserved: number, held: number, peak: number) => void) {
    this.#budget = budget;
    this.#onChange = onChange;
  }

  get name(): string {
    return this.#budget.name;
  }

  /** The budget's limit, bytes. */
  get limit(): number {
    return this.#budget.limit;
  }

  /** Bytes reserved by everyone, process-wide. */
  get used(): number {
    return this.#budget.used;
  }

  /** Bytes this task holds. */
  get held(): number {
    return this.#held;
  }

  /** Bytes this task has reserved in total. */
  get reserved(): number {
    return this.#reserved;
  }

  /** Reserves `bytes` if the budget allows it; false (and nothing reserved) otherwise. */
  tryReserve(bytes: number): boolean {
    if (!this.#budget.tryReserve(bytes)) return false;
    this.#reserved += bytes;
    this.#held += bytes;
    this.#changed();
    return true;
  }

  /** Like {@link tryReserve}, but throws `BudgetExceededError` when refused. */
  reserve(bytes: number): void {
    if (!this.tryReserve(bytes)) throw new BudgetExceededError(this.#budget.name, bytes, this.#budget.limit, this.#budget.used);
  }

  /** Returns `bytes` this task holds. */
  release(bytes: number): void {
    if (bytes > this.#held) {
      const b = this.#budget;
      throw new BudgetError(
        'ERR_BUDGET_RELEASE_EXCEEDS_HELD',
        `Cannot release ${bytes} bytes from budget ${JSON.stringify(b.name)}: this task holds ${this.#held}`,
        b.name,
        bytes,
        b.limit,
        b.used,
      );
    }
    this.#budget.release(bytes);
    this.#held -= bytes;
    this.#changed();
  }

  #changed(): void {
    if (this.#held > this.#peak) this.#peak = this.#held;
    this.#onChange(this.#reserved, this.#held, this.#peak);
  }
}
