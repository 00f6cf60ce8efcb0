// Leasing budgets (Budget.open(name, limit, { lease: true })): exact figures
// in one thread, refusals only when the budget is really full (other
// threads' leases are taken back first), setLimit taking leases back, the
// option's validation, and many workers churning one budget while a monitor
// reads its counter and the limit moves. Workers run the compiled library.
import { beforeAll, describe, expect, test } from 'vitest';
import { Budget, LimitedAllocator } from '../src/index';
import { GO, assertDistCurrent, churnWithMonitor, startWorker as start, total } from './budget-churn';
import { codeOf } from './helpers';

let counter = 0;
const unique = (p: string) => `${p}-${process.pid}-${++counter}`;
/** The refill chunk for a limit (see leaseChunk in src/budget.ts). */
const chunkOf = (limit: number) => Math.min(65536, Math.floor(limit / 64));

beforeAll(assertDistCurrent);

describe('a leasing budget in one thread', () => {
  test('reserve and release give exact held and used; the lease shows as leased', () => {
    const limit = 1 << 20;
    const chunk = chunkOf(limit);
    const b = Budget.open(unique('lease-one'), limit, { lease: true });
    expect(b.tryReserve(100)).toBe(true);
    expect(b.used).toBe(100);
    expect(b.held).toBe(100);
    expect(b.stats()).toMatchObject({ used: 100, held: 100, leased: chunk, successes: 1, failures: 0, peak: 100 + chunk });
    // Served from the lease: the counter does not move.
    expect(b.tryReserve(50)).toBe(true);
    expect(b.stats()).toMatchObject({ used: 150, held: 150, leased: chunk - 50, successes: 2 });
    b.release(150);
    expect(b.used).toBe(0);
    expect(b.held).toBe(0);
    expect(b.stats()).toMatchObject({ used: 0, leased: chunk + 100 });
    // More than held is refused and changes nothing.
    expect(codeOf(() => b.release(1))).toBe('ERR_BUDGET_RELEASE_EXCEEDS_HELD');
    expect(b.stats()).toMatchObject({ used: 0, leased: chunk + 100 });
    // A reservation of the whole limit takes this thread's own lease back.
    expect(b.tryReserve(limit)).toBe(true);
    expect(b.stats()).toMatchObject({ used: limit, leased: 0, held: limit });
    expect(b.tryReserve(1)).toBe(false);
    expect(b.stats().failures).toBe(1);
    b.release(limit);
    const name = b.name;
    b.close();
    // The last handle gave everything back and freed the budget.
    expect(codeOf(() => Budget.open(name))).toBe('ERR_BUDGET_NOT_FOUND');
  });

  test('a release past two chunks gives the excess back to the counter', () => {
    const limit = 1 << 20;
    const chunk = chunkOf(limit);
    const b = Budget.open(unique('lease-give-back'), limit, { lease: true });
    expect(b.tryReserve(600_000)).toBe(true); // above half the limit: taken exactly, no lease
    expect(b.stats()).toMatchObject({ used: 600_000, leased: 0 });
    b.release(600_000);
    expect(b.stats()).toMatchObject({ used: 0, leased: chunk });
    b.close();
  });

  test('after setLimit, a release keeps at most two chunks of the new limit in the lease', () => {
    const b = Budget.open(unique('lease-give-back-new-limit'), 16 * 1024 * 1024, { lease: true });
    b.reserve(128 * 1024); // through the lease, in chunks of 64 KiB
    b.setLimit(128 * 1024); // the chunk is now 2 KiB
    b.release(128 * 1024);
    const s = b.stats();
    expect(s.used).toBe(0);
    expect(s.leased).toBeLessThanOrEqual(2 * chunkOf(128 * 1024));
    b.close();
  });

  test('near the limit, reservations take exactly their bytes (no lease)', () => {
    const limit = 10_000;
    const b = Budget.open(unique('lease-near'), limit, { lease: true });
    expect(b.tryReserve(6000)).toBe(true);
    expect(b.tryReserve(10)).toBe(true);
    expect(b.stats()).toMatchObject({ used: 6010, leased: 0 });
    expect(b.tryReserve(3990)).toBe(true);
    expect(b.tryReserve(1)).toBe(false);
    b.release(10_000);
    b.close();
  });

  test('a wide budget keeps its single counter', () => {
    const b = Budget.open(unique('lease-wide'), 2 ** 33, { lease: true });
    expect(b.tryReserve(100)).toBe(true);
    expect(b.stats()).toMatchObject({ used: 100, leased: 0 });
    b.release(100);
    b.close();
  });

  test('a bad lease option is a typed error and opens nothing', () => {
    const before = Budget.count();
    const name = unique('lease-bad');
    for (const bad of [1, 'yes', null, {}]) {
      expect(codeOf(() => Budget.open(name, 1000, { lease: bad as never }))).toBe('ERR_INVALID_ARG_TYPE');
    }
    expect(codeOf(() => Budget.open(name, 1000, { scope: 'machine', lease: true }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(codeOf(() => LimitedAllocator.shared(name, 1000, { scope: 'machine', lease: true }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(Budget.count()).toBe(before);
    expect(codeOf(() => Budget.open(name))).toBe('ERR_BUDGET_NOT_FOUND');
  });

  test('LimitedAllocator.shared passes the option on', () => {
    const name = unique('lease-alloc');
    const a = LimitedAllocator.shared(name, 1 << 20, { lease: true });
    expect(a.reserveBytes(100)).toBe(true);
    expect(a.budget.stats()).toMatchObject({ used: 100, leased: chunkOf(1 << 20) });
    a.releaseBytes(100);
    a.close();
  });
});

describe('a leasing budget shared by threads', () => {
  test("a reservation that fits only once another thread's lease is taken back succeeds", async () => {
    const limit = 1 << 20;
    const chunk = chunkOf(limit);
    for (const lease of [true, false]) {
      const name = unique('lease-reclaim');
      const b = Budget.open(name, limit, { lease });
      const sab = new SharedArrayBuffer(16);
      const w = start({ mode: 'hold', name, limit, size: 100, sab });
      expect(await w.message).toMatchObject({ ok: true, held: 100, used: 100, leased: chunk });
      // The worker's lease counts in the counter: limit - 100 fits only once it is back.
      expect(b.used).toBe(100);
      expect(b.tryReserve(limit - 100)).toBe(true);
      expect(b.stats()).toMatchObject({ used: limit, leased: 0, failures: 0 });
      expect(b.tryReserve(1)).toBe(false);
      b.release(limit - 100);
      Atomics.store(new Int32Array(sab), GO, 1);
      Atomics.notify(new Int32Array(sab), GO);
      await w.exit;
      // What is left leased is this thread's own lease: the release above
      // kept one chunk of it.
      expect(b.stats()).toMatchObject({ used: 0, leased: lease ? chunk : 0 });
      b.close();
    }
  });

  test('setLimit takes leases back before it compares usage', async () => {
    const limit = 1 << 20;
    const name = unique('lease-set-limit');
    const b = Budget.open(name, limit);
    const sab = new SharedArrayBuffer(16);
    const w = start({ mode: 'hold', name, limit, size: 100, sab });
    expect(await w.message).toMatchObject({ ok: true, leased: chunkOf(limit) });
    expect(codeOf(() => b.setLimit(99))).toBe('ERR_BUDGET_LIMIT_BELOW_USAGE');
    b.setLimit(100);
    expect(b.stats()).toMatchObject({ used: 100, leased: 0, limit: 100 });
    Atomics.store(new Int32Array(sab), GO, 1);
    Atomics.notify(new Int32Array(sab), GO);
    await w.exit;
    expect(b.used).toBe(0);
    b.close();
  });

  test('a worker that ends while it holds bytes and a lease gives back both', async () => {
    const limit = 1 << 20;
    const name = unique('lease-exit');
    const b = Budget.open(name, limit);
    const sab = new SharedArrayBuffer(16);
    const w = start({ mode: 'hold', name, limit, size: 777, sab });
    expect(await w.message).toMatchObject({ ok: true, held: 777 });
    await w.worker.terminate();
    await w.exit;
    expect(b.stats()).toMatchObject({ used: 0, leased: 0 });
    b.close();
  });

  test('8 workers x 100,000 random operations, a monitor and a moving limit: never above the limit, ends at 0', async () => {
    const hi = 1 << 20;
    const lo = hi / 2;
    const name = unique('lease-churn');
    const b = Budget.open(name, hi);
    // Lowerings fail while usage is above `lo`, and succeed (after taking
    // the leases back) when it is not.
    const reports = await churnWithMonitor(b, { lo, hi, lease: true, wide: false, seed: 0x1ea5e, maxSize: 4096 });
    // Every worker is gone, leases included.
    expect(b.stats()).toMatchObject({ used: 0, leased: 0 });
    expect(b.stats().successes).toBe(total(reports, 'reserved'));
    b.close();
  }, 120_000);
});
