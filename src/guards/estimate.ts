/**
 * Planning figures: how much memory a job needs held whole or streamed in
 * batches, and how many bytes its output will take on disk.
 *
 * @module
 */
import { OutOfRangeError } from '../errors';
import { parseSize, validateInteger, validateNumber, validateObject } from '../validate';

/** Options of {@link estimateMemory}. */
export interface MemoryEstimateOptions {
  /** Items the job produces or loads. */
  items: number;
  /** Bytes each item takes in memory (a number or a size such as '512B', '1KiB'). */
  bytesPerItem: number | string;
  /**
   * Items held at once when streaming.
   * @default 10_000
   */
  batchSize?: number;
  /**
   * Bytes held whatever the mode (master data, indexes, the runtime).
   * @default 0
   */
  fixedBytes?: number | string;
  /**
   * Multiplier from peak to recommended limit.
   * @default 2
   */
  headroom?: number;
}

/** What {@link estimateMemory} returns, bytes. */
export interface MemoryEstimate {
  /** Everything held at once: `fixedBytes + items × bytesPerItem`. */
  batchPeak: number;
  /** One batch held at a time: `fixedBytes + min(batchSize, items) × bytesPerItem`. */
  streamingPeak: number;
  /** `batchPeak × headroom`, rounded up: a hard limit that leaves room for garbage and copies. */
  recommendedLimit: number;
  /** `streamingPeak × headroom`, rounded up. */
  recommendedStreamingLimit: number;
}

/**
 * Estimates the memory a job needs, whole and streamed.
 *
 * ```ts
 * estimateMemory({ items: 1_000_000, bytesPerItem: 512, batchSize: 10_000, fixedBytes: '64MiB' });
 * // { batchPeak: 579108864, streamingPeak: 72228864, recommendedLimit: 1158217728, ... }
 * ```
 */
export function estimateMemory(options: MemoryEstimateOptions): MemoryEstimate {
  const o = validateObject<MemoryEstimateOptions>(options, 'options');
  const items = validateInteger(o.items, 'options.items');
  const per = parseSize(o.bytesPerItem, 'options.bytesPerItem');
  const batch = o.batchSize === undefined ? 10_000 : validateInteger(o.batchSize, 'options.batchSize', 1);
  const fixed = o.fixedBytes === undefined ? 0 : parseSize(o.fixedBytes, 'options.fixedBytes');
  const headroom = o.headroom === undefined ? 2 : validateNumber(o.headroom, 'options.headroom', 1, 1000);
  const batchPeak = safe(fixed + items * per, 'the estimated batch peak');
  const streamingPeak = safe(fixed + Math.min(batch, items) * per, 'the estimated streaming peak');
  return {
    batchPeak,
    streamingPeak,
    recommendedLimit: safe(Math.ceil(batchPeak * headroom), 'the recommended limit'),
    recommendedStreamingLimit: safe(Math.ceil(streamingPeak * headroom), 'the recommended limit'),
  };
}

/** Options of {@link estimateOutputSize}. */
export interface OutputSizeOptions {
  /** Records written. */
  records: number;
  /** Bytes of one record in one output, uncompressed (a number or a size string). */
  bytesPerRecord: number | string;
  /**
   * Outputs written per record (e.g. 2 for CSV and JSON side by side).
   * @default 1
   */
  outputs?: number;
  /**
   * Uncompressed size divided by compressed size (1 = uncompressed; text
   * formats under gzip typically reach 3 to 10).
   * @default 1
   */
  compressionRatio?: number;
  /**
   * Bytes written once (headers, schemas, manifests).
   * @default 0
   */
  fixedBytes?: number | string;
}

/**
 * Bytes a job's output will take: `fixedBytes + records × bytesPerRecord ×
 * outputs / compressionRatio`, rounded up to a whole byte.
 */
export function estimateOutputSize(options: OutputSizeOptions): number {
  const o = validateObject<OutputSizeOptions>(options, 'options');
  const records = validateInteger(o.records, 'options.records');
  const per = parseSize(o.bytesPerRecord, 'options.bytesPerRecord');
  const outputs = o.outputs === undefined ? 1 : validateInteger(o.outputs, 'options.outputs', 1, 1000);
  const ratio = o.compressionRatio === undefined ? 1 : validateNumber(o.compressionRatio, 'options.compressionRatio', 1, 1e6);
  const fixed = o.fixedBytes === undefined ? 0 : parseSize(o.fixedBytes, 'options.fixedBytes');
  return safe(Math.ceil(fixed + (records * per * outputs) / ratio), 'the estimated output size');
}

function safe(bytes: number, what: string): number {
  if (!Number.isSafeInteger(bytes)) throw new OutOfRangeError(what, `at most ${Number.MAX_SAFE_INTEGER} bytes`, bytes);
  return bytes;
}
