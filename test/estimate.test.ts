// The estimators at their exact boundaries: memory for entries ×
// lines per entry, the sufficiency check (exactly at the limit is enough; one
// byte short names both figures and the largest count that fits), and the
// output size by format and compression.
import { describe, expect, test } from 'vitest';
import {
  DEFAULT_COMPRESSION_RATIOS,
  DEFAULT_ROW_BYTES,
  InsufficientMemoryError,
  assertMemorySufficient,
  checkMemorySufficiency,
  estimateEntryMemory,
  estimateFormatOutputSize,
} from '../src/index';
import { codeOf } from './helpers';

describe('estimateEntryMemory()', () => {
  test('fixed + entries × (per entry + lines × per line)', () => {
    expect(estimateEntryMemory({ entries: 100_000, linesPerEntry: 4, bytesPerLine: 96, bytesPerEntry: 128 })).toEqual({
      entries: 100_000,
      bytesPerEntry: 512,
      fixedBytes: 0,
      bytes: 51_200_000,
    });
    expect(estimateEntryMemory({ entries: 10, linesPerEntry: 2, bytesPerLine: '1KiB', fixedBytes: '1MiB' }).bytes).toBe(1_048_576 + 10 * 2048);
    expect(estimateEntryMemory({ entries: 0, linesPerEntry: 3, bytesPerLine: 10 }).bytes).toBe(0);
  });

  test('an average line count rounds each entry up to a whole byte', () => {
    // 3.5 × 33 = 115.5 → 116 bytes per entry
    expect(estimateEntryMemory({ entries: 2, linesPerEntry: 3.5, bytesPerLine: 33 })).toMatchObject({ bytesPerEntry: 116, bytes: 232 });
  });

  test('bad input is refused with a typed error', () => {
    expect(codeOf(() => estimateEntryMemory({ entries: -1, linesPerEntry: 1, bytesPerLine: 1 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => estimateEntryMemory({ entries: 1.5, linesPerEntry: 1, bytesPerLine: 1 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => estimateEntryMemory({ entries: 1, linesPerEntry: -1, bytesPerLine: 1 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => estimateEntryMemory({ entries: 1, linesPerEntry: NaN, bytesPerLine: 1 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => estimateEntryMemory({ entries: 1, linesPerEntry: 1, bytesPerLine: 'lots' }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => estimateEntryMemory({ entries: 1, linesPerEntry: 0, bytesPerLine: 8 }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => estimateEntryMemory({ entries: 2 ** 52, linesPerEntry: 4, bytesPerLine: 1024 }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => estimateEntryMemory(null as never))).toBe('ERR_INVALID_ARG_TYPE');
  });
});

describe('checkMemorySufficiency()', () => {
  const base = { linesPerEntry: 4, bytesPerLine: 100, bytesPerEntry: 100, fixedBytes: 1000 }; // 500 bytes per entry

  test('an estimate exactly at the limit is sufficient; one byte over is not', () => {
    const at = checkMemorySufficiency({ ...base, entries: 10, limit: 6000 });
    expect(at).toMatchObject({ sufficient: true, required: 6000, limit: 6000, maxEntries: 10 });
    const short = checkMemorySufficiency({ ...base, entries: 10, limit: 5999 });
    expect(short).toMatchObject({ sufficient: false, required: 6000, limit: 5999, maxEntries: 9 });
    expect(short.message).toContain('6000 bytes');
    expect(short.message).toContain('5999 bytes');
    expect(short.message).toContain('at most 9 entries fit');
  });

  test('the suggested count is the largest that fits', () => {
    for (const limit of [1000, 1499, 1500, 1501, 1999, 2000, 123_456]) {
      const r = checkMemorySufficiency({ ...base, entries: 1_000_000, limit });
      expect(1000 + r.maxEntries * 500).toBeLessThanOrEqual(limit);
      expect(1000 + (r.maxEntries + 1) * 500).toBeGreaterThan(limit);
      expect(checkMemorySufficiency({ ...base, entries: r.maxEntries, limit }).sufficient).toBe(true);
      expect(checkMemorySufficiency({ ...base, entries: r.maxEntries + 1, limit }).sufficient).toBe(false);
    }
  });

  test('a limit below the fixed bytes fits no entry and says so', () => {
    const r = checkMemorySufficiency({ ...base, entries: 1, limit: 999 });
    expect(r).toMatchObject({ sufficient: false, maxEntries: 0 });
    expect(r.message).toContain('not even one entry fits');
  });

  test('assertMemorySufficient throws InsufficientMemoryError with both figures and the suggestion', () => {
    expect(assertMemorySufficient({ ...base, entries: 10, limit: '6000B' }).sufficient).toBe(true);
    let err: unknown;
    try {
      assertMemorySufficient({ ...base, entries: 11, limit: 6000 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InsufficientMemoryError);
    expect(err).toMatchObject({ code: 'ERR_INSUFFICIENT_MEMORY', required: 6500, limit: 6000, entries: 11, maxEntries: 10 });
    expect(codeOf(() => checkMemorySufficiency({ ...base, entries: 1, limit: -1 }))).toBe('ERR_OUT_OF_RANGE');
  });
});

describe('estimateFormatOutputSize()', () => {
  test('rows × bytes per row per format, uncompressed', () => {
    const r = estimateFormatOutputSize({ entries: 1000, linesPerEntry: 3, formats: ['csv', 'json', 'parquet'] });
    expect(r).toEqual({
      rows: 3000,
      compressed: false,
      byFormat: { csv: 3000 * DEFAULT_ROW_BYTES.csv, json: 3000 * DEFAULT_ROW_BYTES.json, parquet: 3000 * DEFAULT_ROW_BYTES.parquet },
      total: 3000 * (200 + 400 + 80),
    });
  });

  test('compression divides by the format ratio and rounds up to a whole byte', () => {
    const r = estimateFormatOutputSize({ entries: 100_000, formats: ['csv', 'parquet'], compressed: true });
    expect(r.byFormat).toEqual({ csv: 100_000 * 200 / DEFAULT_COMPRESSION_RATIOS.csv, parquet: 6_400_000 });
    expect(r.total).toBe(11_400_000);
    // 1 row of 10 bytes at ratio 3: 3.33… → 4
    expect(estimateFormatOutputSize({ entries: 1, formats: 'json', compressed: true, bytesPerRow: { json: 10 }, compressionRatios: { json: 3 } }).total).toBe(4);
    // ratio 1 is the same as uncompressed
    expect(estimateFormatOutputSize({ entries: 7, formats: 'csv', compressed: true, compressionRatios: { csv: 1 } }).total).toBe(1400);
  });

  test('fractional rows round up; 0 entries write 0 bytes', () => {
    expect(estimateFormatOutputSize({ entries: 3, linesPerEntry: 0.5, formats: 'csv', bytesPerRow: { csv: '1KiB' } })).toMatchObject({ rows: 2, total: 2048 });
    expect(estimateFormatOutputSize({ entries: 0, formats: ['csv', 'json'] }).total).toBe(0);
  });

  test('unknown, repeated or missing formats and bad ratios are refused', () => {
    expect(codeOf(() => estimateFormatOutputSize({ entries: 1, formats: [] }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => estimateFormatOutputSize({ entries: 1, formats: ['xml' as never] }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => estimateFormatOutputSize({ entries: 1, formats: ['csv', 'csv'] }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => estimateFormatOutputSize({ entries: 1, formats: 'csv', compressed: 'yes' as never }))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => estimateFormatOutputSize({ entries: 1, formats: 'csv', compressionRatios: { csv: 0.5 } }))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => estimateFormatOutputSize({ entries: -1, formats: 'csv' }))).toBe('ERR_OUT_OF_RANGE');
  });
});
