/**
 * Planning figures: how much memory a job needs held whole or streamed in
 * batches, and how many bytes its output will take on disk.
 *
 * @module
 */
import { InvalidArgValueError, OutOfRangeError, ResourceError, formatBytes } from '../errors';
import { parseSize, validateBoolean, validateInteger, validateNumber, validateObject } from '../validate';

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

// ---- entries × lines per entry ------------------------------------------------------

/** Options of {@link estimateEntryMemory} and {@link checkMemorySufficiency}. */
export interface EntryMemoryOptions {
  /** Entries held (e.g. journal entries). Integer ≥ 0. */
  entries: number;
  /** Lines per entry: a whole number, or an average such as 3.5. Finite, ≥ 0. */
  linesPerEntry: number;
  /** Bytes of one line in memory (a number or a size string). */
  bytesPerLine: number | string;
  /**
   * Bytes of one entry besides its lines (header, keys, object overhead).
   * @default 0
   */
  bytesPerEntry?: number | string;
  /** Bytes held whatever the number of entries (master data, indexes). @default 0 */
  fixedBytes?: number | string;
}

/** What {@link estimateEntryMemory} returns. */
export interface EntryMemoryEstimate {
  entries: number;
  /** Bytes of one entry with its lines: `bytesPerEntry + ⌈linesPerEntry × bytesPerLine⌉`. */
  bytesPerEntry: number;
  fixedBytes: number;
  /** `fixedBytes + entries × bytesPerEntry` (the per-entry figure above). */
  bytes: number;
}

interface EntryFigures {
  entries: number;
  perEntry: number;
  fixed: number;
}

function readEntryOptions(options: EntryMemoryOptions): EntryFigures {
  const o = validateObject<EntryMemoryOptions>(options, 'options');
  const entries = validateInteger(o.entries, 'options.entries');
  const lines = validateNumber(o.linesPerEntry, 'options.linesPerEntry', 0);
  const perLine = parseSize(o.bytesPerLine, 'options.bytesPerLine');
  const header = o.bytesPerEntry === undefined ? 0 : parseSize(o.bytesPerEntry, 'options.bytesPerEntry');
  const fixed = o.fixedBytes === undefined ? 0 : parseSize(o.fixedBytes, 'options.fixedBytes');
  const perEntry = safe(header + Math.ceil(lines * perLine), 'the estimated bytes per entry');
  if (perEntry === 0) {
    throw new InvalidArgValueError('options', options, 'must give each entry a size above 0 bytes (bytesPerLine × linesPerEntry + bytesPerEntry)');
  }
  return { entries, perEntry, fixed };
}

/**
 * Memory for `entries` entries of `linesPerEntry` lines each:
 * `fixedBytes + entries × (bytesPerEntry + ⌈linesPerEntry × bytesPerLine⌉)`.
 *
 * ```ts
 * estimateEntryMemory({ entries: 100_000, linesPerEntry: 4, bytesPerLine: 96, bytesPerEntry: 128 });
 * // { entries: 100000, bytesPerEntry: 512, fixedBytes: 0, bytes: 51200000 }
 * ```
 */
export function estimateEntryMemory(options: EntryMemoryOptions): EntryMemoryEstimate {
  const f = readEntryOptions(options);
  return { entries: f.entries, bytesPerEntry: f.perEntry, fixedBytes: f.fixed, bytes: safe(f.fixed + f.entries * f.perEntry, 'the estimated memory') };
}

/** Options of {@link checkMemorySufficiency}: the estimate's options and the limit. */
export interface MemorySufficiencyOptions extends EntryMemoryOptions {
  /** Bytes available (a number or a size string). */
  limit: number | string;
}

/** What {@link checkMemorySufficiency} returns. */
export interface MemorySufficiency {
  /** True when the estimate is at most the limit. */
  sufficient: boolean;
  /** The estimate, bytes. */
  required: number;
  limit: number;
  entries: number;
  bytesPerEntry: number;
  /** The largest entry count whose estimate is at most the limit (0 when not even the fixed bytes fit). */
  maxEntries: number;
  /** One sentence naming both figures and, when short, the largest count that fits. */
  message: string;
}

/** The estimated memory for a job is above the limit. */
export class InsufficientMemoryError extends ResourceError {
  constructor(
    /** The estimate, bytes. */
    readonly required: number,
    /** The limit, bytes. */
    readonly limit: number,
    /** Entries asked for. */
    readonly entries: number,
    /** The largest entry count that fits. */
    readonly maxEntries: number,
    message: string,
  ) {
    super('ERR_INSUFFICIENT_MEMORY', message);
  }
}

/**
 * Compares the memory `entries` need with `limit`. When the estimate is
 * above the limit, the answer names both figures and the largest entry count
 * that fits. An estimate exactly at the limit is sufficient.
 */
export function checkMemorySufficiency(options: MemorySufficiencyOptions): MemorySufficiency {
  const f = readEntryOptions(options);
  const limit = parseSize(options.limit, 'options.limit');
  const required = safe(f.fixed + f.entries * f.perEntry, 'the estimated memory');
  const maxEntries = limit < f.fixed ? 0 : Math.floor((limit - f.fixed) / f.perEntry);
  const sufficient = required <= limit;
  const message = sufficient
    ? `${f.entries} entries need an estimated ${formatBytes(required)} (${required} bytes), within the limit of ${formatBytes(limit)} (${limit} bytes)`
    : `${f.entries} entries need an estimated ${formatBytes(required)} (${required} bytes), above the limit of ${formatBytes(limit)} (${limit} bytes); ` +
      (maxEntries > 0
        ? `at most ${maxEntries} entries fit`
        : `not even one entry fits (${f.fixed} fixed bytes + ${f.perEntry} bytes per entry)`);
  return { sufficient, required, limit, entries: f.entries, bytesPerEntry: f.perEntry, maxEntries, message };
}

/** Like {@link checkMemorySufficiency}, but throws {@link InsufficientMemoryError} when the memory is short. */
export function assertMemorySufficient(options: MemorySufficiencyOptions): MemorySufficiency {
  const r = checkMemorySufficiency(options);
  if (!r.sufficient) throw new InsufficientMemoryError(r.required, r.limit, r.entries, r.maxEntries, r.message);
  return r;
}

// ---- output size by format --------------------------------------------------------------

/** Output formats {@link estimateFormatOutputSize} knows. */
export type OutputFormat = 'csv' | 'json' | 'parquet';

const FORMATS: readonly OutputFormat[] = ['csv', 'json', 'parquet'];

/**
 * Default bytes of one row (one line of an entry) per format, uncompressed:
 * a CSV row of about a dozen short fields, the same row as a JSON object
 * (keys repeated on every row, so larger), and its Parquet encoding
 * (columnar, dictionary and run-length encoded, so smaller). Measure your
 * own rows and pass `bytesPerRow` when these do not fit your data.
 */
export const DEFAULT_ROW_BYTES: Readonly<Record<OutputFormat, number>> = Object.freeze({ csv: 200, json: 400, parquet: 80 });

/**
 * Default ratio of uncompressed to compressed size per format, used when
 * `compressed` is true: text compresses well (CSV 4×, JSON with its repeated
 * keys 8×); Parquet pages are already encoded, so a further codec gains
 * little (1.25×).
 */
export const DEFAULT_COMPRESSION_RATIOS: Readonly<Record<OutputFormat, number>> = Object.freeze({ csv: 4, json: 8, parquet: 1.25 });

/** Options of {@link estimateFormatOutputSize}. */
export interface FormatOutputOptions {
  /** Entries written. Integer ≥ 0. */
  entries: number;
  /** Rows per entry (one per line). Finite, ≥ 0. @default 1 */
  linesPerEntry?: number;
  /** Formats written side by side; at least one, each once. */
  formats: OutputFormat | readonly OutputFormat[];
  /** Whether each output is compressed. @default false */
  compressed?: boolean;
  /** Bytes per uncompressed row, per format. @default DEFAULT_ROW_BYTES */
  bytesPerRow?: Partial<Record<OutputFormat, number | string>>;
  /** Uncompressed / compressed, per format (≥ 1), used when `compressed`. @default DEFAULT_COMPRESSION_RATIOS */
  compressionRatios?: Partial<Record<OutputFormat, number>>;
}

/** What {@link estimateFormatOutputSize} returns, bytes. */
export interface FormatOutputEstimate {
  /** `⌈entries × linesPerEntry⌉` rows written to each format. */
  rows: number;
  compressed: boolean;
  /** Bytes per format: `⌈rows × bytesPerRow / ratio⌉` (ratio 1 when not compressed). */
  byFormat: Partial<Record<OutputFormat, number>>;
  /** Sum over the formats. */
  total: number;
}

/**
 * Bytes the output of `entries` entries takes in each format, with or
 * without compression.
 *
 * ```ts
 * estimateFormatOutputSize({ entries: 100_000, formats: ['csv', 'parquet'], compressed: true });
 * // { rows: 100000, compressed: true, byFormat: { csv: 5000000, parquet: 6400000 }, total: 11400000 }
 * ```
 */
export function estimateFormatOutputSize(options: FormatOutputOptions): FormatOutputEstimate {
  const o = validateObject<FormatOutputOptions>(options, 'options');
  const entries = validateInteger(o.entries, 'options.entries');
  const lines = o.linesPerEntry === undefined ? 1 : validateNumber(o.linesPerEntry, 'options.linesPerEntry', 0);
  const list: readonly unknown[] = typeof o.formats === 'string' ? [o.formats] : Array.isArray(o.formats) ? o.formats : [];
  if (list.length === 0) throw new InvalidArgValueError('options.formats', o.formats, `must be one of ${FORMATS.join(', ')} or a non-empty array of them`);
  const formats: OutputFormat[] = [];
  for (const f of list) {
    if (!FORMATS.includes(f as OutputFormat)) throw new InvalidArgValueError('options.formats', f, `must name only ${FORMATS.join(', ')}`);
    if (formats.includes(f as OutputFormat)) throw new InvalidArgValueError('options.formats', f, 'must name each format once');
    formats.push(f as OutputFormat);
  }
  const compressed = o.compressed === undefined ? false : validateBoolean(o.compressed, 'options.compressed');
  const rowBytes = { ...DEFAULT_ROW_BYTES };
  if (o.bytesPerRow !== undefined) {
    validateObject(o.bytesPerRow, 'options.bytesPerRow');
    for (const f of FORMATS) {
      const v = o.bytesPerRow[f];
      if (v !== undefined) rowBytes[f] = parseSize(v, `options.bytesPerRow.${f}`);
    }
  }
  const ratios = { ...DEFAULT_COMPRESSION_RATIOS };
  if (o.compressionRatios !== undefined) {
    validateObject(o.compressionRatios, 'options.compressionRatios');
    for (const f of FORMATS) {
      const v = o.compressionRatios[f];
      if (v !== undefined) ratios[f] = validateNumber(v, `options.compressionRatios.${f}`, 1, 1e6);
    }
  }
  const rows = safe(Math.ceil(entries * lines), 'the number of rows');
  const byFormat: Partial<Record<OutputFormat, number>> = {};
  let total = 0;
  for (const f of formats) {
    const bytes = safe(Math.ceil((rows * rowBytes[f]) / (compressed ? ratios[f] : 1)), `the estimated ${f} output`);
    byFormat[f] = bytes;
    total = safe(total + bytes, 'the estimated output size');
  }
  return { rows, compressed, byFormat, total };
}

function safe(bytes: number, what: string): number {
  if (!Number.isSafeInteger(bytes)) throw new OutOfRangeError(what, `at most ${Number.MAX_SAFE_INTEGER} bytes`, bytes);
  return bytes;
}
