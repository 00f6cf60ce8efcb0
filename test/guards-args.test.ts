import { describe, expect, it } from 'vitest';
import {
  CpuMonitor,
  DiskSpaceGuard,
  MemoryBudget,
  MemoryGuard,
  ResourceGuard,
  checkpoint,
  configureCheckpoints,
  estimateMemory,
  estimateOutputSize,
} from '../src/guards';

const TYPE = 'ERR_INVALID_ARG_TYPE';
const VALUE = 'ERR_INVALID_ARG_VALUE';
const RANGE = 'ERR_OUT_OF_RANGE';

function codeOf(fn: () => unknown): { code: string | undefined; ctor: string } | null {
  try {
    fn();
  } catch (err) {
    const e = err as Error & { code?: string };
    return { code: e.code, ctor: e instanceof RangeError ? 'RangeError' : e instanceof TypeError ? 'TypeError' : e.constructor.name };
  }
  return null;
}

/** Every row must throw its code, as TypeError (type/value) or RangeError (range). */
function expectAll(rows: Array<[string, () => unknown, string]>) {
  for (const [label, fn, code] of rows) {
    const got = codeOf(fn);
    expect(got, label).not.toBeNull();
    expect(got!.code, label).toBe(code);
    expect(got!.ctor, label).toBe(code === RANGE ? 'RangeError' : 'TypeError');
  }
}

const memSource = { rss: () => 0, heap: () => ({ used: 0, limit: 1e9 }) };
const diskSource = { read: () => ({ available: 1e9 }) };
const cpuSource = { system: () => 0.1 };

describe('bad sizes are rejected the same way everywhere', () => {
  const sizes: Array<[string, unknown, string]> = [
    ['NaN', NaN, RANGE],
    ['negative', -1, RANGE],
    ['Infinity', Infinity, RANGE],
    ['fraction of a byte', 1.5, RANGE],
    ['beyond 2^53', 2 ** 53, RANGE],
    ['unknown unit', '12XB', VALUE],
    ['ambiguous unit', '5K', VALUE],
    ['not a size', 'lots', VALUE],
    ['negative string', '-5MB', VALUE],
    ['boolean', true, TYPE],
    ['null', null, TYPE],
    ['object', {}, TYPE],
    ['bigint', 5n, TYPE],
  ];
  it('MemoryGuard limits', () => {
    for (const key of ['hardLimit', 'softLimit', 'heapHardLimit', 'heapSoftLimit', 'growthRateThreshold']) {
      expectAll(sizes.map(([l, v, c]) => [`${key} ${l}`, () => new MemoryGuard({ hardLimit: 1e15, source: memSource, [key]: v }), c]));
    }
  });
  it('DiskSpaceGuard options and byte arguments', () => {
    for (const key of ['minFree', 'softFree', 'reserve']) {
      expectAll(sizes.map(([l, v, c]) => [`${key} ${l}`, () => new DiskSpaceGuard({ source: diskSource, [key]: v }), c]));
    }
    const guard = new DiskSpaceGuard({ source: diskSource });
    expectAll(sizes.map(([l, v, c]) => [`checkBeforeWrite ${l}`, () => guard.checkBeforeWrite(v as number), c]));
    expectAll(sizes.map(([l, v, c]) => [`canWrite ${l}`, () => guard.canWrite(v as number), c]));
    expectAll(
      sizes.filter(([, v]) => v !== undefined).map(([l, v, c]) => [`recordWrite ${l}`, () => guard.recordWrite(v as number), c]),
    );
  });
  it('MemoryBudget total and estimates', () => {
    expectAll(sizes.map(([l, v, c]) => [`total ${l}`, () => new MemoryBudget({ total: v as number }), c]));
    expectAll(sizes.map(([l, v, c]) => [`bytesPerItem ${l}`, () => estimateMemory({ items: 1, bytesPerItem: v as number }), c]));
    expectAll(sizes.map(([l, v, c]) => [`fixedBytes ${l}`, () => estimateMemory({ items: 1, bytesPerItem: 1, fixedBytes: v as number }), c]));
    expectAll(sizes.map(([l, v, c]) => [`bytesPerRecord ${l}`, () => estimateOutputSize({ records: 1, bytesPerRecord: v as number }), c]));
  });
});

describe('MemoryGuard arguments', () => {
  it('rejects bad options', () => {
    expectAll([
      ['options not an object', () => new MemoryGuard(5 as never), TYPE],
      ['options an array', () => new MemoryGuard([] as never), TYPE],
      ['soft > hard', () => new MemoryGuard({ hardLimit: 100, softLimit: 101, source: memSource }), RANGE],
      ['heap soft > heap hard', () => new MemoryGuard({ hardLimit: 100, heapHardLimit: 10, heapSoftLimit: 11, source: memSource }), RANGE],
      ['heap hard > heap limit', () => new MemoryGuard({ hardLimit: 100, heapHardLimit: 2e9, source: memSource }), RANGE],
      ['heap not boolean', () => new MemoryGuard({ hardLimit: 100, heap: 1 as never, source: memSource }), TYPE],
      ['growthWindowMs 0', () => new MemoryGuard({ hardLimit: 100, growthWindowMs: 0, source: memSource }), RANGE],
      ['growthWindowMs NaN', () => new MemoryGuard({ hardLimit: 100, growthWindowMs: NaN, source: memSource }), RANGE],
      ['growthWindowMs string', () => new MemoryGuard({ hardLimit: 100, growthWindowMs: '1s' as never, source: memSource }), TYPE],
      ['heapCheckEvery 0', () => new MemoryGuard({ hardLimit: 100, heapCheckEvery: 0, source: memSource }), RANGE],
      ['heapCheckEvery 1.5', () => new MemoryGuard({ hardLimit: 100, heapCheckEvery: 1.5, source: memSource }), RANGE],
      ['source without rss', () => new MemoryGuard({ hardLimit: 100, source: {} as never }), TYPE],
      ['source.heap not a function', () => new MemoryGuard({ hardLimit: 100, source: { rss: () => 0, heap: 5 } as never }), TYPE],
      ['source not an object', () => new MemoryGuard({ hardLimit: 100, source: 'native' as never }), TYPE],
      ['clock not a function', () => new MemoryGuard({ hardLimit: 100, clock: 5 as never, source: memSource }), TYPE],
    ]);
  });

  it('setLimits rejects bad limits and leaves the old ones in force', () => {
    const guard = new MemoryGuard({ hardLimit: 1000, softLimit: 800, source: memSource });
    const before = guard.limits;
    expectAll([
      ['not an object', () => guard.setLimits(undefined as never), TYPE],
      ['hard NaN', () => guard.setLimits({ hardLimit: NaN }), RANGE],
      ['hard below the explicit soft', () => guard.setLimits({ hardLimit: 700 }), RANGE],
      ['soft above hard', () => guard.setLimits({ softLimit: 1001 }), RANGE],
      ['valid hard, invalid soft', () => guard.setLimits({ hardLimit: 5000, softLimit: 'x' }), VALUE],
      ['valid hard, invalid growth', () => guard.setLimits({ hardLimit: 5000, growthRateThreshold: -1 }), RANGE],
      ['heap hard above the heap limit', () => guard.setLimits({ hardLimit: 5000, heapHardLimit: 2e9 }), RANGE],
    ]);
    expect(guard.limits).toEqual(before);
  });
});

describe('DiskSpaceGuard arguments', () => {
  it('rejects bad options', () => {
    expectAll([
      ['path number', () => new DiskSpaceGuard({ path: 5 as never }), TYPE],
      ['path empty', () => new DiskSpaceGuard({ path: '' }), VALUE],
      ['path with NUL', () => new DiskSpaceGuard({ path: 'a\0b' }), VALUE],
      ['minFree > softFree', () => new DiskSpaceGuard({ minFree: 10, softFree: 9, source: diskSource }), RANGE],
      ['checkInterval 0', () => new DiskSpaceGuard({ checkInterval: 0, source: diskSource }), RANGE],
      ['checkInterval NaN', () => new DiskSpaceGuard({ checkInterval: NaN, source: diskSource }), RANGE],
      ['checkInterval Infinity', () => new DiskSpaceGuard({ checkInterval: Infinity, source: diskSource }), RANGE],
      ['source without read', () => new DiskSpaceGuard({ source: { available: 5 } as never }), TYPE],
    ]);
  });

  it('a rejected recordWrite changes no counter', () => {
    const guard = new DiskSpaceGuard({ checkInterval: 1, source: diskSource });
    guard.recordWrite(10);
    const before = guard.stats();
    for (const v of [NaN, -1, Infinity, 0.5, '1 furlong', null]) expect(() => guard.recordWrite(v as number)).toThrow();
    expect(guard.stats()).toEqual(before);
  });

  it('estimateOutputSize rejects bad plans', () => {
    const guard = new DiskSpaceGuard({ source: diskSource });
    expectAll([
      ['no options', () => guard.estimateOutputSize(undefined as never), TYPE],
      ['records negative', () => guard.estimateOutputSize({ records: -1, bytesPerRecord: 1 }), RANGE],
      ['records NaN', () => estimateOutputSize({ records: NaN, bytesPerRecord: 1 }), RANGE],
      ['records string', () => estimateOutputSize({ records: '5' as never, bytesPerRecord: 1 }), TYPE],
      ['outputs 0', () => estimateOutputSize({ records: 1, bytesPerRecord: 1, outputs: 0 }), RANGE],
      ['compression below 1', () => estimateOutputSize({ records: 1, bytesPerRecord: 1, compressionRatio: 0.5 }), RANGE],
      ['compression Infinity', () => estimateOutputSize({ records: 1, bytesPerRecord: 1, compressionRatio: Infinity }), RANGE],
      ['overflow', () => estimateOutputSize({ records: 2 ** 40, bytesPerRecord: 2 ** 20 }), RANGE],
    ]);
  });
});

describe('CpuMonitor arguments', () => {
  it('rejects bad thresholds and options', () => {
    expectAll([
      ['high 0', () => new CpuMonitor({ highThreshold: 0, source: cpuSource }), RANGE],
      ['high negative', () => new CpuMonitor({ highThreshold: -0.1, source: cpuSource }), RANGE],
      ['high > 1', () => new CpuMonitor({ highThreshold: 1.01, criticalThreshold: 1, source: cpuSource }), RANGE],
      ['high NaN', () => new CpuMonitor({ highThreshold: NaN, source: cpuSource }), RANGE],
      ['high Infinity', () => new CpuMonitor({ highThreshold: Infinity, source: cpuSource }), RANGE],
      ['high string', () => new CpuMonitor({ highThreshold: '0.8' as never, source: cpuSource }), TYPE],
      ['critical 0', () => new CpuMonitor({ criticalThreshold: 0, source: cpuSource }), RANGE],
      ['critical > 1', () => new CpuMonitor({ criticalThreshold: 95, source: cpuSource }), RANGE],
      ['high > critical', () => new CpuMonitor({ highThreshold: 0.9, criticalThreshold: 0.8, source: cpuSource }), RANGE],
      ['high > default critical', () => new CpuMonitor({ highThreshold: 0.96, source: cpuSource }), RANGE],
      ['delay negative', () => new CpuMonitor({ throttleDelayMs: -1, source: cpuSource }), RANGE],
      ['delay NaN', () => new CpuMonitor({ throttleDelayMs: NaN, source: cpuSource }), RANGE],
      ['delay too long', () => new CpuMonitor({ throttleDelayMs: 60_001, source: cpuSource }), RANGE],
      ['interval 0', () => new CpuMonitor({ sampleIntervalMs: 0, source: cpuSource }), RANGE],
      ['autoThrottle string', () => new CpuMonitor({ autoThrottle: 'yes' as never, source: cpuSource }), TYPE],
      ['basis unknown', () => new CpuMonitor({ basis: 'host' as never, source: cpuSource }), VALUE],
      ['source without system', () => new CpuMonitor({ source: { process: () => 1 } as never }), TYPE],
      ['source.quota not a function', () => new CpuMonitor({ source: { system: () => 0, quota: 2 } as never }), TYPE],
      ['source.container not a function', () => new CpuMonitor({ source: { system: () => 0, container: 5 } as never }), TYPE],
    ]);
  });
});

describe('MemoryBudget arguments', () => {
  it('rejects bad options, and initialize() keeps the current budget', () => {
    const current = MemoryBudget.initialize({ total: '1GiB' });
    expectAll([
      ['fraction 0', () => MemoryBudget.initialize({ fraction: 0 }), RANGE],
      ['fraction > 1', () => MemoryBudget.initialize({ fraction: 1.1 }), RANGE],
      ['fraction NaN', () => MemoryBudget.initialize({ fraction: NaN }), RANGE],
      ['fraction string', () => MemoryBudget.initialize({ fraction: '80%' as never }), TYPE],
      ['cacheMs negative', () => MemoryBudget.initialize({ cacheMs: -1 }), RANGE],
      ['cacheMs Infinity', () => MemoryBudget.initialize({ cacheMs: Infinity }), RANGE],
      ['total 0', () => MemoryBudget.initialize({ total: 0 }), RANGE],
      ['source.usage not a function', () => MemoryBudget.initialize({ source: { usage: 5 } as never }), TYPE],
      ['clock not a function', () => MemoryBudget.initialize({ clock: 'now' as never }), TYPE],
      ['options not an object', () => MemoryBudget.initialize(7 as never), TYPE],
    ]);
    expect(MemoryBudget.get()).toBe(current);
  });
});

describe('estimateMemory arguments', () => {
  it('rejects bad plans', () => {
    expectAll([
      ['no options', () => estimateMemory(undefined as never), TYPE],
      ['items negative', () => estimateMemory({ items: -1, bytesPerItem: 1 }), RANGE],
      ['items fractional', () => estimateMemory({ items: 1.5, bytesPerItem: 1 }), RANGE],
      ['items Infinity', () => estimateMemory({ items: Infinity, bytesPerItem: 1 }), RANGE],
      ['batch 0', () => estimateMemory({ items: 1, bytesPerItem: 1, batchSize: 0 }), RANGE],
      ['headroom below 1', () => estimateMemory({ items: 1, bytesPerItem: 1, headroom: 0.5 }), RANGE],
      ['headroom NaN', () => estimateMemory({ items: 1, bytesPerItem: 1, headroom: NaN }), RANGE],
      ['overflow', () => estimateMemory({ items: 2 ** 40, bytesPerItem: 2 ** 20 }), RANGE],
    ]);
  });
});

describe('checkpoint arguments', () => {
  it('rejects bad labels and options; a bad configuration changes nothing', () => {
    const lines: string[] = [];
    configureCheckpoints({ enabled: true, sink: (l) => lines.push(l), rss: () => 0 });
    expectAll([
      ['label number', () => checkpoint(5 as never), TYPE],
      ['label missing', () => checkpoint(undefined as never), TYPE],
      ['detail number', () => checkpoint('a', 5 as never), TYPE],
      ['sink number', () => configureCheckpoints({ enabled: false, sink: 5 as never }), TYPE],
      ['sink object without write', () => configureCheckpoints({ enabled: false, sink: {} as never }), TYPE],
      ['enabled string', () => configureCheckpoints({ enabled: 'yes' as never }), TYPE],
      ['file number', () => configureCheckpoints({ enabled: false, file: 1 as never }), TYPE],
      ['clock string', () => configureCheckpoints({ enabled: false, clock: 'now' as never }), TYPE],
      ['options not an object', () => configureCheckpoints(3 as never), TYPE],
    ]);
    checkpoint('still-on');
    expect(lines).toHaveLength(1);
  });
});

describe('ResourceGuard arguments', () => {
  it('rejects bad options and builder arguments', () => {
    const guard = new ResourceGuard({ memory: { hardLimit: 1e12, source: memSource } });
    const memory = guard.memory;
    expectAll([
      ['options not an object', () => new ResourceGuard('all' as never), TYPE],
      ['memory number', () => new ResourceGuard({ memory: 5 as never }), TYPE],
      ['disk number', () => new ResourceGuard({ disk: 5 as never }), TYPE],
      ['cpu string', () => new ResourceGuard({ cpu: 'on' as never }), TYPE],
      ['nested memory option', () => new ResourceGuard({ memory: { hardLimit: -1 } }), RANGE],
      ['withMemoryLimit NaN', () => guard.withMemoryLimit(NaN), RANGE],
      ['withMemoryLimit unit', () => guard.withMemoryLimit('1 GB please'), VALUE],
      ['withMemory string', () => guard.withMemory('big' as never), TYPE],
      ['withOutputPath number', () => guard.withOutputPath(5 as never), TYPE],
      ['withDisk number', () => guard.withDisk(7 as never), TYPE],
      ['withCpuMonitoring number', () => guard.withCpuMonitoring(1 as never), TYPE],
      ['watch 0', () => guard.watch(0), RANGE],
      ['watch NaN', () => guard.watch(NaN), RANGE],
      ['watch string', () => guard.watch('1s' as never), TYPE],
      ['env not an object', () => ResourceGuard.optionsFromEnv('PATH' as never), TYPE],
      ['fromEnv defaults not an object', () => ResourceGuard.fromEnv({}, 5 as never), TYPE],
    ]);
    expect(guard.memory).toBe(memory);
    expect(guard.memory!.limits.hardLimit).toBe(1e12);
    guard.close();
  });
});
