/**
 * Event-loop delay over windows, for CpuMonitor and the health figures.
 *
 * `perf_hooks.monitorEventLoopDelay()` records the time between runs of its
 * timer, but its `reset()` also forgets when the timer last ran: the first
 * interval after a reset is not recorded. A stall that begins right after a
 * window is reset, before the timer's next run (up to one resolution later),
 * is therefore missing from every window. Node's histogram gives no way
 * around that, so the interval is measured here: one unreferenced timer per
 * resolution in each thread records the time since its previous run into the
 * histogram of every open window. A window's `reset()` clears its histogram
 * only; the timer's last run is kept, so the interval that spans a reset is
 * recorded in the new window.
 *
 * The timer holds its windows weakly: a window that is collected without
 * `close()` stops being fed, and the timer stops with its last window.
 */
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
// From node:timers rather than the globals: a test suite that fakes the
// global timers (as sinon's and vitest's fake timers do) would otherwise stop
// the measurement, which Node's own histogram, on a native timer, never did.
import { clearInterval, setInterval } from 'node:timers';

interface Ticker {
  timer: NodeJS.Timeout | null;
  last: number;
  windows: Set<WeakRef<LoopDelayWindow>>;
}

const tickers = new Map<number, Ticker>();

function tick(resolutionMs: number, t: Ticker): void {
  const now = performance.now();
  const elapsed = now - t.last;
  t.last = now;
  // A histogram takes integers of at least 1; a clock that did not advance
  // records the smallest value rather than throw from a timer.
  const ns = elapsed >= 1e-6 ? Math.round(elapsed * 1e6) : 1;
  for (const ref of t.windows) {
    const w = ref.deref();
    if (w === undefined) t.windows.delete(ref);
    else w._record(ns);
  }
  if (t.windows.size === 0) stop(resolutionMs, t);
}

function stop(resolutionMs: number, t: Ticker): void {
  if (t.timer !== null) clearInterval(t.timer);
  t.timer = null;
  tickers.delete(resolutionMs);
}

/**
 * The event-loop delay of this thread since the window was opened or last
 * reset, in nanoseconds per run of a timer that asks to run every
 * `resolutionMs` (so an idle loop records about `resolutionMs`).
 */
export class LoopDelayWindow {
  readonly resolutionMs: number;
  #histogram: RecordableHistogram | null = createHistogram();
  #ref: WeakRef<LoopDelayWindow> = new WeakRef(this);

  /** `resolutionMs`: a positive integer number of milliseconds (validated by the caller). */
  constructor(resolutionMs: number) {
    this.resolutionMs = resolutionMs;
    let t = tickers.get(resolutionMs);
    if (t === undefined) {
      t = { timer: null, last: performance.now(), windows: new Set() };
      const ticker = t;
      t.timer = setInterval(() => tick(resolutionMs, ticker), resolutionMs);
      t.timer.unref();
      tickers.set(resolutionMs, t);
    }
    t.windows.add(this.#ref);
  }

  /** @internal Called by the timer. */
  _record(ns: number): void {
    this.#histogram?.record(ns);
  }

  /** Intervals recorded in this window. */
  get count(): number {
    return this.#histogram?.count ?? 0;
  }

  /** Mean interval, ns (NaN when none was recorded). */
  get mean(): number {
    const h = this.#histogram;
    return h === null || h.count === 0 ? NaN : h.mean;
  }

  /** Longest interval, ns (NaN when none was recorded). */
  get max(): number {
    const h = this.#histogram;
    return h === null || h.count === 0 ? NaN : h.max;
  }

  /** The interval at percentile `p` (0 < p <= 100), ns (NaN when none was recorded). */
  percentile(p: number): number {
    const h = this.#histogram;
    return h === null || h.count === 0 ? NaN : h.percentile(p);
  }

  /** Starts a new window; the interval running now counts in it. */
  reset(): void {
    this.#histogram?.reset();
  }

  /** Stops feeding this window (idempotent); the timer stops with its last window. */
  close(): void {
    if (this.#histogram === null) return;
    this.#histogram = null;
    const t = tickers.get(this.resolutionMs);
    if (t === undefined) return;
    t.windows.delete(this.#ref);
    if (t.windows.size === 0) stop(this.resolutionMs, t);
  }
}

/** Windows being fed in this thread (open, or not yet found collected). @internal For tests. */
export function liveLoopDelayWindows(): number {
  let n = 0;
  for (const t of tickers.values()) n += t.windows.size;
  return n;
}

/** Timers running in this thread (one per resolution in use). @internal For tests. */
export function loopDelayTimers(): number {
  return tickers.size;
}
