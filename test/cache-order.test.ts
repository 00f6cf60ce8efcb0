// BudgetedCache against a reference model: 20,000 seeded random operations
// (set with random sizes, get, peek, has, delete, clear, and key iteration
// interrupted by a delete) on a cache capped by bytes and by entries. After
// every operation the keys in recency order, the byte count and the entry
// count equal the model's, so the recency list stays exact however its
// slots are freed and reused.
import { describe, expect, test } from 'vitest';
import { BudgetedCache } from '../src/index';
import { rng } from './helpers';

/** Least-recently-used order kept the obvious way: most recent first. */
class Model {
  order: string[] = [];
  sizes = new Map<string, number>();
  bytes = 0;
  constructor(
    readonly cap: number,
    readonly maxEntries: number,
  ) {}

  #drop(k: string): void {
    this.order.splice(this.order.indexOf(k), 1);
    this.bytes -= this.sizes.get(k)!;
    this.sizes.delete(k);
  }

  set(k: string, size: number): boolean {
    const old = this.sizes.get(k);
    if (old !== undefined) {
      const grow = size - old;
      if (grow <= 0 || this.bytes + grow <= this.cap) {
        this.bytes += grow;
        this.sizes.set(k, size);
        this.get(k);
        return true;
      }
      this.#drop(k);
    }
    if (size > this.cap) return false;
    while (this.bytes + size > this.cap || this.order.length >= this.maxEntries) this.#drop(this.order.at(-1)!);
    this.order.unshift(k);
    this.sizes.set(k, size);
    this.bytes += size;
    return true;
  }

  get(k: string): boolean {
    const i = this.order.indexOf(k);
    if (i < 0) return false;
    this.order.splice(i, 1);
    this.order.unshift(k);
    return true;
  }

  delete(k: string): boolean {
    if (!this.sizes.has(k)) return false;
    this.#drop(k);
    return true;
  }
}

describe('BudgetedCache recency order', () => {
  test.each([1, 2, 3])('20,000 random operations agree with a reference model (seed %i)', (seed) => {
    const random = rng(0xcac4e + seed * 7919);
    const cap = 400;
    const maxEntries = 20;
    const cache = new BudgetedCache<string, { size: number }>({ maxBytes: cap, maxEntries, sizeOf: (v) => v.size });
    const model = new Model(cap, maxEntries);
    const key = () => `k${Math.floor(random() * 40)}`;
    for (let i = 0; i < 20_000; i++) {
      const r = random();
      const k = key();
      if (r < 0.4) {
        const size = 1 + Math.floor(random() * 60);
        expect(cache.set(k, { size })).toBe(model.set(k, size));
      } else if (r < 0.7) {
        expect(cache.get(k) !== undefined).toBe(model.get(k));
      } else if (r < 0.8) {
        expect(cache.delete(k)).toBe(model.delete(k));
      } else if (r < 0.85) {
        expect(cache.peek(k) !== undefined).toBe(model.sizes.has(k));
        expect(cache.has(k)).toBe(model.sizes.has(k));
      } else if (r < 0.9995) {
        // Iteration that deletes the key it reached and sets another (which
        // may take the freed slot): it goes on over the keys live at the
        // call, in their order then, skipping none that is still there.
        const expected = [...model.order];
        const it = cache.keys();
        const first = it.next();
        if (!first.done) {
          expect(first.value).toBe(expected[0]);
          expect(cache.delete(first.value)).toBe(model.delete(first.value));
          expect(cache.set(k, { size: 1 })).toBe(model.set(k, 1));
          const rest = [...it];
          expect(rest).toEqual(expected.slice(1).filter((x) => model.sizes.has(x)));
        }
      } else {
        cache.clear();
        for (const k2 of [...model.order]) model.delete(k2);
      }
      expect([...cache.keys()]).toEqual(model.order);
      const s = cache.stats();
      expect(s.bytes).toBe(model.bytes);
      expect(s.entries).toBe(model.order.length);
    }
    cache.close();
  });

  test('the list grows past its first slots and reuses freed ones', () => {
    const cache = new BudgetedCache<number, number>({ maxBytes: 10_000, sizeOf: () => 1 });
    for (let i = 0; i < 1000; i++) cache.set(i, i);
    expect([...cache.keys()]).toEqual(Array.from({ length: 1000 }, (_, i) => 999 - i));
    for (let i = 0; i < 1000; i += 2) cache.delete(i);
    for (let i = 1000; i < 1250; i++) cache.set(i, i);
    for (let i = 1; i < 1000; i += 4) cache.get(i);
    const expected: number[] = [];
    for (let i = 1; i < 1000; i += 4) expected.unshift(i);
    for (let i = 1249; i >= 1000; i--) expected.push(i);
    for (let i = 999; i >= 1; i -= 2) if ((i - 1) % 4 !== 0) expected.push(i);
    expect([...cache.keys()]).toEqual(expected);
    cache.close();
  });
});
