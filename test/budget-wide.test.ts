// Wide budgets (a limit of 2^32 bytes or more, 64-bit counters): a handle
// keeps a guess of the counter, the limit as a BigInt and the highest usage
// it wrote to the peak. These tests show that none of those decides an
// outcome: a lowered limit, another handle's bytes, another handle's peak and
// many workers on one budget with a moving limit all give the exact answer.
// Workers run the compiled library.
import { beforeAll, describe, expect, test } from 'vitest';
import { Budget, LimitedAllocator } from '../src/index';
import type { PressureChange } from '../src/index';
import { assertDistCurrent, churnWithMonitor, total } from './budget-churn';

const G = 2 ** 32;

let counter = 0;
const unique = (p: string) => `${p}-${process.pid}-${++counter}`;

beforeAll(assertDistCurrent);

describe('a wide budget in one thread', () => {
  test('a lowered limit refuses the next reservation of a handle that reserved under the old one', () => {
    const b = Budget.open(unique('wide-lower'), 2 * G);
    expect(b.tryReserve(G + 10)).toBe(true);
    b.release(G + 10);
    b.setLimit(G + 5);
    expect(b.tryReserve(G + 10)).toBe(false);
    expect(b.tryReserve(G + 5)).toBe(true);
    expect(b.tryReserve(1)).toBe(false);
    b.release(G + 5);
    b.setLimit(4 * G);
    expect(b.tryReserve(3 * G)).toBe(true);
    expect(b.tryReserve(G)).toBe(true);
    expect(b.tryReserve(1)).toBe(false);
    expect(b.used).toBe(4 * G);
    b.release(4 * G);
    expect(b.stats()).toMatchObject({ used: 0, successes: 4, failures: 3, peak: 4 * G });
    b.close();
  });

  test("another handle's bytes are counted by a handle whose last view of the counter is older", () => {
    const name = unique('wide-two');
    const limit = 3 * G;
    const one = Budget.open(name, limit);
    const two = Budget.open(name);
    expect(one.tryReserve(G)).toBe(true);
    expect(two.tryReserve(G)).toBe(true);
    // `one` last saw G; the counter is 2G.
    expect(one.tryReserve(G + 1)).toBe(false);
    expect(one.tryReserve(G)).toBe(true);
    expect(two.tryReserve(1)).toBe(false);
    expect(one.used).toBe(limit);
    one.release(2 * G);
    // `two` last saw the counter at the limit; it is G now.
    expect(two.tryReserve(2 * G)).toBe(true);
    expect(one.tryReserve(1)).toBe(false);
    two.release(3 * G);
    expect(one.used).toBe(0);
    expect(one.held).toBe(0);
    expect(two.held).toBe(0);
    one.close();
    two.close();
  });

  test("the peak is the highest usage whichever handle reached it, never lowered by another's", () => {
    const name = unique('wide-peak');
    const one = Budget.open(name, 8 * G);
    const two = Budget.open(name);
    expect(one.tryReserve(G + 100)).toBe(true);
    one.release(G + 100);
    expect(one.peak).toBe(G + 100);
    expect(two.tryReserve(G + 200)).toBe(true);
    two.release(G + 200);
    expect(one.peak).toBe(G + 200);
    // `one` last wrote G + 100; a usage between the two must not lower the peak.
    expect(one.tryReserve(G + 150)).toBe(true);
    one.release(G + 150);
    expect(two.peak).toBe(G + 200);
    // `two` last wrote G + 200: a higher usage raises it, from either handle.
    expect(one.tryReserve(G + 300)).toBe(true);
    expect(two.tryReserve(7)).toBe(true);
    expect(one.peak).toBe(G + 307);
    one.release(G + 300);
    two.release(7);
    expect(two.stats()).toMatchObject({ used: 0, peak: G + 307, successes: 5 });
    one.close();
    two.close();
  });

  test('an allocator on a wide budget reports the exact usage in its pressure events', () => {
    const limit = 10 * G;
    const a = LimitedAllocator.shared(unique('wide-alloc'), limit);
    const changes: PressureChange[] = [];
    a.on('pressure', (c) => changes.push(c));
    expect(a.reserveBytes(6 * G + 1)).toBe(true);
    expect(a.reserveBytes(2 * G)).toBe(true);
    expect(a.reserveBytes(1.5 * G + 3)).toBe(true);
    expect(a.reserveBytes(G)).toBe(false);
    a.releaseBytes(9.5 * G + 4);
    // Each event carries the counter right after the operation that changed the level.
    expect(changes.map((c) => [c.level, c.used])).toEqual([
      ['medium', 6 * G + 1],
      ['high', 8 * G + 1],
      ['critical', 9.5 * G + 4],
      ['low', 0],
    ]);
    expect(a.allocatedBytes).toBe(0);
    a.close();
  });
});

describe('a wide budget shared by threads', () => {
  test('8 workers x 100,000 random operations across 2^32, a monitor and a moving limit: never above the limit, ends at 0', async () => {
    const hi = 2 * G;
    const lo = G + 12_345;
    const name = unique('wide-churn');
    const b = Budget.open(name, hi);
    // A worker keeping up to 64 reservations of up to 2^28 bytes holds about
    // 2^33 bytes on average, the higher limit, even with no other worker
    // running: the counter crosses 2^32 both ways all the time and reaches
    // the limit, so there are refusals however the workers are scheduled.
    const reports = await churnWithMonitor(b, { lo, hi, lease: false, wide: true, seed: 0x3a1de, maxSize: 2 ** 28 });
    const stats = b.stats();
    expect(stats.used).toBe(0);
    expect(stats.successes).toBe(total(reports, 'reserved'));
    expect(stats.failures).toBe(total(reports, 'refused'));
    expect(stats.failures).toBeGreaterThan(0);
    expect(stats.peak).toBeGreaterThan(G);
    expect(stats.peak).toBeLessThanOrEqual(hi);
    b.close();
  }, 120_000);
});
