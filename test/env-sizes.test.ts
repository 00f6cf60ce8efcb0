// One size language for environment variables: the canonical names take a
// size with a unit (MB is 10^6 bytes, MiB and Mi 2^20, as in every option);
// the legacy *_MB names keep counting a bare number in MiB; both at once
// is refused, naming both.
import { afterEach, describe, expect, test } from 'vitest';
import { LimitedAllocator } from '../src/allocator';
import { ResourceGuard } from '../src/guards';

const MiB = 2 ** 20;
const open: LimitedAllocator[] = [];
afterEach(() => {
  for (const a of open.splice(0)) a.close();
});

function thrown(fn: () => unknown): (Error & { code?: string }) | undefined {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  return undefined;
}

describe('ResourceGuard.optionsFromEnv sizes', () => {
  test('canonical names take the size language', () => {
    const o = ResourceGuard.optionsFromEnv({
      RESOURCE_GUARD_MEMORY_LIMIT: '512MiB',
      RESOURCE_GUARD_MEMORY_SOFT_LIMIT: '400Mi',
      RESOURCE_GUARD_MEMORY_GROWTH: '50MB',
      RESOURCE_GUARD_DISK_MIN_FREE: '1GB',
      RESOURCE_GUARD_DISK_SOFT_FREE: '2Gi',
      RESOURCE_GUARD_DISK_RESERVE: '4096B',
    });
    expect(o.memory).toEqual({ hardLimit: 512 * MiB, softLimit: 400 * MiB, growthRateThreshold: 50_000_000 });
    expect(o.disk).toEqual({ minFree: 1e9, softFree: 2 * 1024 * MiB, reserve: 4096 });
  });

  test('a bare number under a canonical name is refused with a message that suggests a unit', () => {
    const err = thrown(() => ResourceGuard.optionsFromEnv({ RESOURCE_GUARD_MEMORY_LIMIT: '512' }));
    expect(err?.code).toBe('ERR_INVALID_ARG_VALUE');
    expect(err?.message).toContain('RESOURCE_GUARD_MEMORY_LIMIT');
    expect(err?.message).toMatch(/'512MiB'/);
    expect(err?.message).not.toMatch(/pass the number/);
  });

  test('legacy *_MB names: a bare number is MiB, a unit is honoured', () => {
    const o = ResourceGuard.optionsFromEnv({ RESOURCE_GUARD_MEMORY_LIMIT_MB: '512', RESOURCE_GUARD_DISK_MIN_FREE_MB: '500MB' });
    expect(o.memory).toEqual({ hardLimit: 512 * MiB });
    expect(o.disk).toEqual({ minFree: 500_000_000 });
  });

  test('a canonical name and its legacy name together are refused, naming both', () => {
    const err = thrown(() => ResourceGuard.optionsFromEnv({ RESOURCE_GUARD_DISK_RESERVE: '1MiB', RESOURCE_GUARD_DISK_RESERVE_MB: '1' }));
    expect(err?.code).toBe('ERR_INVALID_ARG_VALUE');
    expect(err?.message).toContain('RESOURCE_GUARD_DISK_RESERVE_MB');
    expect(err?.message).toContain('RESOURCE_GUARD_DISK_RESERVE ');
    // An empty value counts as unset.
    expect(ResourceGuard.optionsFromEnv({ RESOURCE_GUARD_DISK_RESERVE: '1MiB', RESOURCE_GUARD_DISK_RESERVE_MB: ' ' }).disk).toEqual({ reserve: MiB });
  });
});

describe('LimitedAllocator.fromEnv sizes', () => {
  test('RESOURCE_GUARD_MEMORY_LIMIT takes a size with a unit', () => {
    const a = LimitedAllocator.fromEnv({ env: { RESOURCE_GUARD_MEMORY_LIMIT: '64MiB' } });
    open.push(a);
    expect(a.limit).toBe(64 * MiB);
    const b = LimitedAllocator.fromEnv({ env: { RESOURCE_GUARD_MEMORY_LIMIT: '64MB' } });
    open.push(b);
    expect(b.limit).toBe(64_000_000);
  });

  test('the legacy RESOURCE_GUARD_MEMORY_LIMIT_MB counts MiB; both set is refused', () => {
    const a = LimitedAllocator.fromEnv({ env: { RESOURCE_GUARD_MEMORY_LIMIT_MB: '3' } });
    open.push(a);
    expect(a.limit).toBe(3 * MiB);
    const err = thrown(() => LimitedAllocator.fromEnv({ env: { RESOURCE_GUARD_MEMORY_LIMIT: '3MiB', RESOURCE_GUARD_MEMORY_LIMIT_MB: '3' } }));
    expect(err?.code).toBe('ERR_INVALID_ARG_VALUE');
    expect(err?.message).toContain('RESOURCE_GUARD_MEMORY_LIMIT_MB');
  });

  test("naming either of the library's variables reads the pair, each in its own way", () => {
    const a = LimitedAllocator.fromEnv({ variable: 'RESOURCE_GUARD_MEMORY_LIMIT', env: { RESOURCE_GUARD_MEMORY_LIMIT: '512MiB' } });
    open.push(a);
    expect(a.limit).toBe(512 * MiB);
    const b = LimitedAllocator.fromEnv({ variable: 'RESOURCE_GUARD_MEMORY_LIMIT_MB', env: { RESOURCE_GUARD_MEMORY_LIMIT: '8MiB' } });
    open.push(b);
    expect(b.limit).toBe(8 * MiB);
    expect(thrown(() => LimitedAllocator.fromEnv({ variable: 'RESOURCE_GUARD_MEMORY_LIMIT', env: { RESOURCE_GUARD_MEMORY_LIMIT: '512' } }))?.code).toBe(
      'ERR_INVALID_ARG_VALUE',
    );
  });

  test('an explicit variable is read alone, as MiB', () => {
    const a = LimitedAllocator.fromEnv({ variable: 'APP_LIMIT_MB', env: { APP_LIMIT_MB: '2', RESOURCE_GUARD_MEMORY_LIMIT: '64MiB' } });
    open.push(a);
    expect(a.limit).toBe(2 * MiB);
  });

  test('a bare number under RESOURCE_GUARD_MEMORY_LIMIT is refused before any budget is made', () => {
    const before = LimitedAllocator.fromEnv({ env: {} });
    open.push(before);
    expect(before.limit).toBe(512 * MiB);
    expect(thrown(() => LimitedAllocator.fromEnv({ env: { RESOURCE_GUARD_MEMORY_LIMIT: '64' } }))?.code).toBe('ERR_INVALID_ARG_VALUE');
  });
});
