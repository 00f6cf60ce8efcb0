/**
 * `resource-guard/budget`: process-wide byte budgets shared by worker threads, and the allocator over them.
 *
 * The same objects as the root entry (one instance of the library), without
 * loading the rest of it. Every name here is also exported by
 * `resource-guard`.
 *
 * @module
 */
export * from '../errors';
export { parseSize, sizeUnit, type Size } from '../size';
export { Budget, type BudgetStats, type BudgetOpenOptions } from '../budget';
export {
  MachineBudget,
  MACHINE_BUDGET_MAX_PROCESSES,
  MACHINE_BUDGET_RECLAIM_INTERVAL_MS,
  machineBudgetDirectory,
  type MachineBudgetStats,
} from '../machine-budget';
export {
  LimitedAllocator,
  Reservation,
  BufferLease,
  MemoryLimitExceededError,
  AlreadyReleasedError,
  type PressureThresholds,
  type PressureChange,
  type AllocatorOptions,
  type FromEnvOptions,
  type SharedAllocatorOptions,
  type AllocatorStats,
} from '../allocator';
