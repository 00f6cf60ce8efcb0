/**
 * `resource-guard/guards`: memory, disk, CPU and resource guards, and the memory estimates.
 *
 * The same objects as the root entry (one instance of the library), without
 * loading the rest of it. Every name here is also exported by
 * `resource-guard`.
 *
 * @module
 */
export * from '../errors';
export { parseSize, sizeUnit, type Size } from '../size';
export * from '../guards';
export {
  estimateEntryMemory,
  checkMemorySufficiency,
  assertMemorySufficient,
  estimateFormatOutputSize,
  InsufficientMemoryError,
  DEFAULT_ROW_BYTES,
  DEFAULT_COMPRESSION_RATIOS,
  type EntryMemoryOptions,
  type EntryMemoryEstimate,
  type MemorySufficiencyOptions,
  type MemorySufficiency,
  type OutputFormat,
  type FormatOutputOptions,
  type FormatOutputEstimate,
} from '../guards/estimate';
