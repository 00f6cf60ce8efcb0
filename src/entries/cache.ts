/**
 * `resource-guard/cache`: the byte-budgeted cache.
 *
 * The same objects as the root entry (one instance of the library), without
 * loading the rest of it. Every name here is also exported by
 * `resource-guard`.
 *
 * @module
 */
export * from '../errors';
export { parseSize, sizeUnit, type Size } from '../size';
export {
  BudgetedCache,
  CacheLease,
  type BudgetedCacheOptions,
  type BudgetedCacheStats,
  type SetOptions,
  type CreateOptions,
  type DisposeReason,
  type CacheLevel,
} from '../cache';
