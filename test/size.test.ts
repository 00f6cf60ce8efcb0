// The size language, table-driven: every accepted form with its byte count,
// every refused form with its error code and message.
import { describe, expect, it } from 'vitest';
import { parseSize } from '../src/size';
import { parseSize as viaValidate } from '../src/validate';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

const accepted: Array<[number | string, number]> = [
  [0, 0],
  [1048576, MiB],
  [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  ['0B', 0],
  ['512B', 512],
  ['512 b', 512],
  // SI, any case: powers of 1000
  ['1kB', 1e3],
  ['1KB', 1e3],
  ['1kb', 1e3],
  ['512MB', 512e6],
  ['512mb', 512e6],
  ['2GB', 2e9],
  ['1TB', 1e12],
  ['1PB', 1e15],
  ['1.5GB', 1.5e9],
  // IEC, any case: powers of 1024
  ['1KiB', KiB],
  ['1.5 kib', 1536],
  ['512MiB', 512 * MiB],
  ['2GiB', 2 * GiB],
  ['1TiB', 1024 ** 4],
  ['1PiB', 1024 ** 5],
  ['0.5MiB', MiB / 2],
  // Kubernetes binary (exact case)
  ['1Ki', KiB],
  ['512Mi', 512 * MiB],
  ['1Gi', GiB],
  ['2Ti', 2 * 1024 ** 4],
  ['1Pi', 1024 ** 5],
  ['1.5Gi', 1.5 * GiB],
  // Kubernetes decimal (exact case)
  ['1k', 1e3],
  ['512M', 512e6],
  ['1G', 1e9],
  ['3T', 3e12],
  ['1P', 1e15],
  ['  256Mi  ', 256 * MiB],
  // rounded down to whole bytes
  ['1.0001kB', 1000],
];

const refused: Array<[unknown, string, RegExp]> = [
  ['95', 'ERR_INVALID_ARG_VALUE', /has no unit: write '95B' for bytes, or '95MiB' \/ '95Mi' \(2\^20 bytes each\) or '95MB' \(10\^6 bytes each\), or pass the number 95/],
  ['1.5', 'ERR_INVALID_ARG_VALUE', /has no unit: write '1.5B'/],
  ['500m', 'ERR_INVALID_ARG_VALUE', /'m' \(milli\): a byte count has no thousandths/],
  ['5K', 'ERR_INVALID_ARG_VALUE', /'K', which is not a Kubernetes suffix; write 'k' or 'kB'/],
  ['5mi', 'ERR_INVALID_ARG_VALUE', /unknown unit \(use B; kB, MB, GB, TB, PB or k, M, G, T, P, E for powers of 1000; KiB, MiB/],
  ['5XB', 'ERR_INVALID_ARG_VALUE', /unknown unit/],
  ['12 parsecs', 'ERR_INVALID_ARG_VALUE', /unknown unit/],
  ['1e6', 'ERR_INVALID_ARG_VALUE', /must be a size such as/],
  ['-5MB', 'ERR_INVALID_ARG_VALUE', /must be a size such as 1048576, '512MiB', '512Mi' or '2GB'/],
  ['', 'ERR_INVALID_ARG_VALUE', /must be a size such as/],
  ['MB', 'ERR_INVALID_ARG_VALUE', /must be a size such as/],
  ['1,5GB', 'ERR_INVALID_ARG_VALUE', /must be a size such as/],
  ['0x10', 'ERR_INVALID_ARG_VALUE', /must be a size such as/],
  ['1.GB', 'ERR_INVALID_ARG_VALUE', /must be a size such as/],
  ['10000PB', 'ERR_OUT_OF_RANGE', /at most 9007199254740991 bytes/],
  ['1E', 'ERR_OUT_OF_RANGE', /at most 9007199254740991 bytes/],
  [-5, 'ERR_OUT_OF_RANGE', /an integer >= 0 and <= 9007199254740991/],
  [1.5, 'ERR_OUT_OF_RANGE', /an integer >= 0/],
  [NaN, 'ERR_OUT_OF_RANGE', /an integer >= 0/],
  [Infinity, 'ERR_OUT_OF_RANGE', /an integer >= 0/],
  [2 ** 53, 'ERR_OUT_OF_RANGE', /an integer >= 0/],
  [null, 'ERR_INVALID_ARG_TYPE', /of type number or string/],
  [undefined, 'ERR_INVALID_ARG_TYPE', /of type number or string/],
  [10n, 'ERR_INVALID_ARG_TYPE', /of type number or string/],
  [{}, 'ERR_INVALID_ARG_TYPE', /of type number or string/],
];

describe('parseSize: accepted forms', () => {
  it.each(accepted)('%j → %d bytes', (input, bytes) => {
    expect(parseSize(input, 'size')).toBe(bytes);
    expect(viaValidate(input, 'size')).toBe(bytes);
  });
});

describe('parseSize: refused forms', () => {
  it.each(refused.map(([i, c, m]) => [typeof i === 'bigint' ? `${i}n` : i, c, m, i] as const))('%s → %s', (_label, code, message, input) => {
    let err: unknown;
    try {
      parseSize(input, 'options.memoryLimit');
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code });
    expect((err as Error).message).toMatch(/options\.memoryLimit/);
    expect((err as Error).message).toMatch(message);
  });
});
