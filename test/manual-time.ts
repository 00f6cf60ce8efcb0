// A clock and timers for tests that only move when the test moves them, for
// exact boundaries in anything that takes injectable clock and timers.
/** A clock and timers that only move when the test says so. */
export class ManualTime {
  now = 1000;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  clock = (): number => this.now;
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.now + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.#timers.delete(h as number);
  }
  get pending(): number {
    return this.#timers.size;
  }
  /** Moves time forward by ms, running every timer that falls due, in time order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.#timers].filter((t) => t[1].at <= end);
      if (due.length === 0) break;
      due.sort((a, b) => a[1].at - b[1].at || a[0] - b[0]);
      for (const [id, t] of due) {
        if (!this.#timers.has(id)) continue; // cleared by an earlier callback
        this.#timers.delete(id);
        this.now = Math.max(this.now, t.at);
        t.fn();
      }
    }
    this.now = end;
  }
}
