import { once } from 'node:events';
import * as os from 'node:os';
import { describe, expect, it } from 'vitest';
import { CpuOverloadError, DiskSpaceError, MemoryLimitError } from '../src/errors';
import { CpuMonitor, DiskSpaceGuard, DiskSpaceUnknownError, MemoryGuard, ResourceGuard } from '../src/guards';

const MiB = 1024 * 1024;

function fakes() {
  const state = { rss: 100, used: 100, available: 10_000, diskFail: false, load: 0.1, lag: 3 };
  const memory = new MemoryGuard({
    hardLimit: 1000,
    source: { rss: () => state.rss, heap: () => ({ used: state.used, limit: 2000 }) },
  });
  const disk = new DiskSpaceGuard({
    path: '/out',
    minFree: 1000,
    softFree: 2000,
    source: {
      read: () => {
        if (state.diskFail) throw new Error('EIO');
        return { available: state.available };
      },
    },
  });
  const cpu = new CpuMonitor({
    source: { system: () => state.load, eventLoop: () => ({ lagMs: state.lag, utilization: 0.5 }) },
  });
  return { state, memory, disk, cpu };
}

describe('ResourceGuard.checkAll()', () => {
  it('checks memory, then disk, then CPU, and throws the first failure', () => {
    const f = fakes();
    const guard = new ResourceGuard({ memory: f.memory, disk: f.disk, cpu: f.cpu, degradation: false });
    f.state.rss = 1001;
    f.state.available = 999;
    f.state.load = 0.95;
    expect(() => guard.checkAll()).toThrow(MemoryLimitError);
    f.state.rss = 1000;
    expect(() => guard.checkAll()).toThrow(DiskSpaceError);
    f.state.available = 1000;
    expect(() => guard.checkAll()).toThrow(CpuOverloadError);
    f.state.load = 0.9499;
    const all = guard.checkAll();
    expect(all.memory?.current).toBe(1000);
    expect(all.disk?.available).toBe(1000);
    expect(all.cpu?.load).toBe(0.9499);
    f.state.diskFail = true;
    expect(() => guard.checkAll()).toThrow(DiskSpaceUnknownError);
  });

  it('with the default controller, passing checks at 100 % of the memory limit are refused as emergency', () => {
    const f = fakes();
    const guard = new ResourceGuard({ memory: f.memory, disk: f.disk, cpu: f.cpu });
    f.state.rss = 1000;
    f.state.available = 1000;
    f.state.load = 0.5;
    expect(() => guard.checkAll()).toThrow(expect.objectContaining({ code: 'ERR_DEGRADED', level: 'emergency' }));
    expect(guard.level).toBe('emergency');
  });

  it('the heap counts as memory', () => {
    const f = fakes();
    const guard = new ResourceGuard({ memory: f.memory });
    f.state.used = 1801; // heap hard limit: 90 % of 2000
    expect(() => guard.checkAll()).toThrow(MemoryLimitError);
    expect(guard.ok()).toBe(false);
  });

  it('by default guards memory only', () => {
    const guard = new ResourceGuard();
    expect(guard.memory).toBeInstanceOf(MemoryGuard);
    expect(guard.disk).toBeNull();
    expect(guard.cpu).toBeNull();
    expect(guard.checkAll()).toMatchObject({ disk: null, cpu: null });
    expect(guard.ok()).toBe(true);
  });
});

describe('ResourceGuard.stats()', () => {
  it('returns what a degradation policy needs, and emits it', () => {
    const f = fakes();
    const guard = new ResourceGuard({ memory: f.memory, disk: f.disk, cpu: f.cpu });
    f.state.rss = 500;
    f.state.used = 1350; // 1350 / 1800 = 0.75 > 500 / 1000
    f.state.available = 5 * MiB;
    f.state.load = 0.42;
    const seen: unknown[] = [];
    guard.on('stats', (s) => seen.push(s));
    const s = guard.stats();
    expect(s).toMatchObject({
      memoryUsage: 0.75,
      memoryUsagePercent: 75,
      rss: 500,
      memoryLimit: 1000,
      heapUsed: 1350,
      heapLimit: 1800,
      diskPath: f.disk.path,
      diskAvailable: 5 * MiB,
      diskAvailableMB: 5,
      cpuLoad: 0.42,
      throttling: false,
      eventLoopLagMs: 3,
      eventLoopUtilization: 0.5,
    });
    expect(seen).toEqual([s]);
  });

  it('degradationInputs() maps the figures to the controller input names', () => {
    const f = fakes();
    const guard = new ResourceGuard({ memory: f.memory, disk: f.disk, cpu: f.cpu });
    f.state.rss = 250;
    f.state.used = 0;
    f.state.available = 4096;
    f.state.load = 0.3;
    const s = guard.stats();
    expect(guard.degradationInputs(s)).toEqual({
      memory: 0.25,
      diskAvailable: 4096,
      cpu: 0.3,
      eventLoopLagMs: 3,
      psi: s.memoryPressure,
    });
    f.state.diskFail = true;
    expect(guard.degradationInputs()).toMatchObject({ memory: 0.25, diskAvailable: null, cpu: 0.3 });
    expect(s.memoryPressure === null || (s.memoryPressure >= 0 && s.memoryPressure <= 100)).toBe(true);
  });

  it('unknown disk space is null, never 0; unwatched figures are null', () => {
    const f = fakes();
    f.state.diskFail = true;
    const guard = new ResourceGuard({ memory: false, disk: f.disk });
    expect(guard.stats()).toMatchObject({
      memoryUsage: null,
      rss: null,
      diskAvailable: null,
      diskAvailableMB: null,
      cpuLoad: null,
      eventLoopLagMs: null,
    });
  });

  it('watch() delivers stats on a timer', async () => {
    const f = fakes();
    const guard = new ResourceGuard({ memory: f.memory }).watch(5);
    const [s] = await once(guard, 'stats');
    expect(s.rss).toBe(100);
    guard.close();
  });
});

describe('ResourceGuard events', () => {
  it('re-emits the guards’ events with a prefix, once per crossing', () => {
    const f = fakes();
    const guard = new ResourceGuard({ memory: f.memory, disk: f.disk, cpu: f.cpu });
    const events: string[] = [];
    for (const name of [
      'memory:soft',
      'memory:hard',
      'disk:soft',
      'disk:hard',
      'disk:unknown',
      'cpu:high',
      'cpu:critical',
      'cpu:throttle',
      'cpu:unthrottle',
    ] as const) {
      guard.on(name, () => events.push(name));
    }
    f.state.rss = 900;
    f.state.available = 1500;
    f.state.load = 0.9;
    guard.stats();
    guard.stats();
    f.state.rss = 1100;
    f.state.available = 900;
    f.state.load = 0.99;
    guard.stats();
    f.state.load = 0.5;
    f.state.diskFail = true;
    guard.stats();
    expect(events).toEqual([
      'memory:soft',
      'disk:soft',
      'cpu:high',
      'memory:hard',
      'disk:hard',
      'cpu:critical',
      'cpu:throttle',
      'disk:unknown',
      'cpu:unthrottle',
    ]);
  });

  it('a replaced guard no longer reaches the listeners', () => {
    const f = fakes();
    const guard = new ResourceGuard({ memory: f.memory });
    const events: string[] = [];
    guard.on('memory:hard', () => events.push('hard'));
    guard.withMemory({ hardLimit: 1e15 });
    f.state.rss = 5000;
    f.memory.check();
    expect(events).toEqual([]);
  });
});

describe('ResourceGuard builder', () => {
  it('withMemoryLimit, withOutputPath, withCpuMonitoring', () => {
    const guard = new ResourceGuard({ memory: false })
      .withMemoryLimit('2GiB')
      .withOutputPath(os.tmpdir(), { minFree: '1MiB' })
      .withCpuMonitoring({ highThreshold: 0.7, criticalThreshold: 0.8 });
    expect(guard.memory!.limits).toMatchObject({ hardLimit: 2 * 1024 ** 3, softLimit: Math.floor(2 * 1024 ** 3 * 0.8) });
    expect(guard.disk!.path).toBe(os.tmpdir());
    expect(guard.disk!.limits.minFree).toBe(MiB);
    expect(guard.cpu!.thresholds).toMatchObject({ high: 0.7, critical: 0.8 });
    guard.withMemoryLimit(1e9, 5e8);
    expect(guard.memory!.limits).toMatchObject({ hardLimit: 1e9, softLimit: 5e8 });
    guard.withCpuMonitoring(false).withDisk(false);
    expect(guard.cpu).toBeNull();
    expect(guard.disk).toBeNull();
    guard.close();
  });

  it('a bad builder argument changes nothing', () => {
    const guard = new ResourceGuard({ memory: { hardLimit: 1e9 } }).withOutputPath(os.tmpdir());
    const disk = guard.disk;
    expect(() => guard.withMemoryLimit('12XB')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => guard.withMemoryLimit(2e9, 3e9)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(guard.memory!.limits.hardLimit).toBe(1e9);
    expect(() => guard.withOutputPath(os.tmpdir(), { minFree: -1 })).toThrow(RangeError);
    expect(guard.disk).toBe(disk);
    expect(() => guard.withCpuMonitoring({ highThreshold: 0.99 })).toThrow(RangeError);
    expect(guard.cpu).toBeNull();
  });
});

describe('ResourceGuard from environment variables', () => {
  it('reads the RESOURCE_GUARD_* variables; *_MB counts mebibytes unless a unit is given', () => {
    const options = ResourceGuard.optionsFromEnv({
      RESOURCE_GUARD_MEMORY_LIMIT_MB: '512',
      RESOURCE_GUARD_MEMORY_SOFT_LIMIT_MB: '400MB',
      RESOURCE_GUARD_MEMORY_GROWTH_MB: '50',
      RESOURCE_GUARD_OUTPUT_PATH: '/srv/out',
      RESOURCE_GUARD_DISK_MIN_FREE_MB: '100',
      RESOURCE_GUARD_DISK_SOFT_FREE_MB: '1GiB',
      RESOURCE_GUARD_DISK_RESERVE_MB: '10',
      RESOURCE_GUARD_DISK_CHECK_INTERVAL: '50',
      RESOURCE_GUARD_CPU_HIGH: '0.8',
      RESOURCE_GUARD_CPU_CRITICAL: '90%',
      RESOURCE_GUARD_CPU_THROTTLE_MS: '25',
      RESOURCE_GUARD_CPU_AUTO_THROTTLE: 'false',
      UNRELATED: 'x',
    });
    expect(options).toEqual({
      memory: { hardLimit: 512 * MiB, softLimit: 400_000_000, growthRateThreshold: 50 * MiB },
      disk: { path: '/srv/out', minFree: 100 * MiB, softFree: 1024 * MiB, reserve: 10 * MiB, checkInterval: 50 },
      cpu: { highThreshold: 0.8, criticalThreshold: 0.9, throttleDelayMs: 25, autoThrottle: false },
    });
  });

  it('switches: RESOURCE_GUARD_MEMORY=0, RESOURCE_GUARD_CPU=1; nothing set is nothing', () => {
    expect(ResourceGuard.optionsFromEnv({})).toEqual({});
    expect(ResourceGuard.optionsFromEnv({ RESOURCE_GUARD_MEMORY: '0', RESOURCE_GUARD_CPU: 'yes' })).toEqual({ memory: false, cpu: true });
    expect(ResourceGuard.optionsFromEnv({ RESOURCE_GUARD_CPU: 'off', RESOURCE_GUARD_CPU_HIGH: '0.5' })).toEqual({ cpu: false });
  });

  it('rejects malformed values, naming the variable', () => {
    const bad: Array<[Record<string, string>, string, RegExp]> = [
      [{ RESOURCE_GUARD_MEMORY_LIMIT_MB: 'lots' }, 'ERR_INVALID_ARG_VALUE', /RESOURCE_GUARD_MEMORY_LIMIT_MB/],
      [{ RESOURCE_GUARD_MEMORY_LIMIT_MB: '-5' }, 'ERR_INVALID_ARG_VALUE', /RESOURCE_GUARD_MEMORY_LIMIT_MB/],
      [{ RESOURCE_GUARD_MEMORY_LIMIT_MB: '5XB' }, 'ERR_INVALID_ARG_VALUE', /unknown unit/],
      [{ RESOURCE_GUARD_CPU_HIGH: '1.5' }, 'ERR_OUT_OF_RANGE', /RESOURCE_GUARD_CPU_HIGH/],
      [{ RESOURCE_GUARD_CPU_HIGH: '0' }, 'ERR_OUT_OF_RANGE', /RESOURCE_GUARD_CPU_HIGH/],
      [{ RESOURCE_GUARD_CPU_CRITICAL: 'high' }, 'ERR_INVALID_ARG_VALUE', /RESOURCE_GUARD_CPU_CRITICAL/],
      [{ RESOURCE_GUARD_CPU_THROTTLE_MS: '2.5' }, 'ERR_INVALID_ARG_VALUE', /RESOURCE_GUARD_CPU_THROTTLE_MS/],
      [{ RESOURCE_GUARD_DISK_CHECK_INTERVAL: '0' }, 'ERR_OUT_OF_RANGE', /RESOURCE_GUARD_DISK_CHECK_INTERVAL/],
      [{ RESOURCE_GUARD_CPU: 'maybe' }, 'ERR_INVALID_ARG_VALUE', /RESOURCE_GUARD_CPU/],
    ];
    for (const [env, code, text] of bad) {
      let err: any;
      try {
        ResourceGuard.optionsFromEnv(env);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(env)).toBeDefined();
      expect(err.code).toBe(code);
      expect(err.message).toMatch(text);
    }
  });

  it('fromEnv(): the environment wins over the defaults in code', () => {
    const guard = ResourceGuard.fromEnv(
      { RESOURCE_GUARD_MEMORY_LIMIT_MB: '256', RESOURCE_GUARD_CPU_CRITICAL: '0.99' },
      { memory: { hardLimit: 1e9, softLimit: 1e8 }, cpu: { highThreshold: 0.5 } },
    );
    expect(guard.memory!.limits).toMatchObject({ hardLimit: 256 * MiB, softLimit: 1e8 });
    expect(guard.cpu!.thresholds).toMatchObject({ high: 0.5, critical: 0.99 });
    expect(() => ResourceGuard.fromEnv({ RESOURCE_GUARD_CPU_HIGH: '0.99' }, { cpu: { criticalThreshold: 0.9 } })).toThrow(RangeError);
    guard.close();
  });
});
