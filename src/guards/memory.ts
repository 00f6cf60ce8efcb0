/**
 * MemoryGuard: soft and hard limits on resident memory (RSS) and on the V8
 * heap, a growth-rate warning, and a hot check cheap enough for tight loops.
 *
 * The hot check {@link MemoryGuard.ok} reads the sampler's snapshot, which a
 * native thread rewrites every 10 ms, so it keeps seeing fresh RSS while the
 * event loop is blocked by the very loop that calls it. On the fast path it
 * is two array reads and two comparisons; everything else (the V8 heap, the
 * soft limit, growth, events, statistics) runs only when the sampler has
 * published a new sample (about every 10 ms) — or, once the heap is above its
 * soft limit, also every `heapCheckEvery` calls, because a loop that
 * allocates on the heap can cover a lot of ground in 10 ms.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import * as v8 from 'node:v8';
import { isMainThread, resourceLimits } from 'node:worker_threads';
import { MemoryLimitError, formatBytes } from '../errors';
import {
  SnapshotField,
  acquireSampler,
  readCgroup,
  readRss,
  readSystemMemory,
  refreshSnapshot,
  sharedMemory,
  snapshotView,
} from '../sampler';
import { parseSize, validateBoolean, validateInteger, validateNumber, validateObject } from '../validate';
import {
  GuardClosedError,
  MiB,
  type Clock,
  monotonicClock,
  optionalClock,
  optionalSize,
  operationInterval,
  optionsObject,
  requireOrder,
  sane,
  validateSource,
} from './internal';

const VIEW = snapshotView;
const SEQ = SnapshotField.seq;
const TIMESTAMP = SnapshotField.timestampMs;
const RSS = SnapshotField.rss;
const INTERVAL = SnapshotField.intervalMs;
const RUNNING = SnapshotField.running;

/** Gives back the sampler hold of a guard that was collected without close(). */
const samplerHolds = new FinalizationRegistry<() => void>((release) => release());

/** RSS read now, or NaN (unknown) when the kernel will not say. */
function freshRss(): number {
  try {
    return readRss();
  } catch {
    return NaN;
  }
}

/** The V8 heap as a {@link MemorySource} reports it. */
export interface HeapReading {
  /** Bytes in use (live objects and garbage not yet collected). */
  used: number;
  /** Bytes at which the isolate dies with "JavaScript heap out of memory". */
  limit: number;
  /** Bytes the heap has reserved from the OS. */
  total?: number;
}

/** Where a {@link MemoryGuard} reads memory. The native sampler is the default. */
export interface MemorySource {
  /** Resident set size in bytes. */
  rss(): number;
  /** The V8 heap. Without it, the guard watches RSS only. */
  heap?(): HeapReading;
}

/** Options of {@link MemoryGuard}. */
export interface MemoryGuardOptions {
  /**
   * Resident memory above which {@link MemoryGuard.ok} is false and
   * {@link MemoryGuard.assert} throws. Exactly at the limit passes.
   * @default the cgroup memory limit when one is set, else physical RAM
   */
  hardLimit?: number | string;
  /**
   * Resident memory above which the `soft` event fires.
   * @default 80 % of `hardLimit`
   */
  softLimit?: number | string;
  /**
   * Watch the V8 heap as well as RSS.
   * @default true
   */
  heap?: boolean;
  /**
   * Heap bytes in use above which the guard trips.
   * @default 90 % of the heap limit (the old-generation limit, see {@link HeapStatus.limit})
   */
  heapHardLimit?: number | string;
  /**
   * Heap bytes in use above which the `soft` event fires.
   * @default 80 % of `heapHardLimit`
   */
  heapSoftLimit?: number | string;
  /**
   * RSS growth in bytes per second above which the `growth` event fires.
   * A string is a size per second ('100MB').
   * @default 100_000_000 (100 MB/s)
   */
  growthRateThreshold?: number | string;
  /**
   * Window over which the growth rate is measured, in milliseconds.
   * @default 1000
   */
  growthWindowMs?: number;
  /**
   * With the heap above its soft limit (and in the fallback and injected
   * modes), the hot check also re-reads the heap every this many calls.
   * @default 1024
   */
  heapCheckEvery?: number;
  /**
   * {@link MemoryGuard.recordOperation} reads memory (and asserts) on every
   * this many calls: the seed's "check every N operations" mode, beside the
   * hot check. An integer from 1 to 2^31; 0 or less, which would never
   * check, is refused.
   * @default 100
   */
  checkInterval?: number;
  /**
   * Check five times as often: the operation interval becomes
   * `ceil(checkInterval / 5)` (at least 1).
   * @default false
   */
  aggressive?: boolean;
  /** Where to read memory. @default the native sampler and `v8.getHeapStatistics()` */
  source?: MemorySource;
  /** Monotonic milliseconds. @default the sampler's clock (CLOCK_MONOTONIC) */
  clock?: Clock;
}

/** The V8 heap part of a {@link MemoryGuardStatus}. */
export interface HeapStatus {
  /** Bytes in use. */
  used: number;
  /** Bytes reserved from the OS. */
  total: number;
  /**
   * The old-generation limit: the heap size at which V8 gives up with
   * "JavaScript heap out of memory". V8's `heap_size_limit` adds the young
   * generation to it (48 MiB by default), a total that is never reached.
   */
  limit: number;
  softLimit: number;
  hardLimit: number;
  /** `used > softLimit`. */
  exceedsSoft: boolean;
  /** `used > hardLimit`. */
  exceedsHard: boolean;
}

/** What {@link MemoryGuard.check} returns. */
export interface MemoryGuardStatus {
  /** Resident set size, bytes (NaN if the source returned no number). */
  current: number;
  softLimit: number;
  hardLimit: number;
  /** RSS or heap above its soft limit. */
  exceedsSoft: boolean;
  /** RSS or heap above its hard limit. */
  exceedsHard: boolean;
  /** Which hard limit is exceeded: RSS is reported first. */
  breach: 'rss' | 'heap' | null;
  /** RSS growth, bytes per second, over the growth window (0 until half a window of history exists). */
  growthRate: number;
  growthRateThreshold: number;
  /** `growthRate > growthRateThreshold`. */
  exceedsGrowthRate: boolean;
  /** null when the heap is not watched. */
  heap: HeapStatus | null;
  /** Clock reading of the figures, milliseconds. */
  timestamp: number;
}

/** Counters of a {@link MemoryGuard} since construction or {@link MemoryGuard.reset}. */
export interface MemoryGuardStats {
  /** Highest RSS seen by any check, bytes. */
  peak: number;
  /** Highest heap use seen, bytes (0 when the heap is not watched). */
  peakHeap: number;
  /** Calls of check() and assert() (including those recordOperation() made). */
  checks: number;
  /** Calls of recordOperation(). */
  operations: number;
  /** Times a soft limit was crossed upwards. */
  softWarnings: number;
  /** Times a hard limit was crossed upwards. */
  hardBreaches: number;
  /** Times the growth rate went above its threshold. */
  growthWarnings: number;
}

/** Limits in force, bytes (and bytes per second for growth). */
export interface MemoryGuardLimits {
  softLimit: number;
  hardLimit: number;
  heapSoftLimit: number;
  heapHardLimit: number;
  heapLimit: number;
  growthRateThreshold: number;
  growthWindowMs: number;
  /** Operations between the reads of {@link MemoryGuard.recordOperation} (after the aggressive division). */
  checkInterval: number;
}

/** Events of {@link MemoryGuard}; each fires when a limit is crossed upwards, not on every check. */
export type MemoryGuardEvents = {
  soft: [MemoryGuardStatus];
  hard: [MemoryGuardStatus];
  growth: [MemoryGuardStatus];
};

const MODE_SHARED = 0;
const MODE_FALLBACK = 1;
const MODE_INJECTED = 2;
const RING = 32;

/**
 * The heap size at which this isolate dies: the old-generation limit. In a
 * worker, `resourceLimits` states it; in the main thread it is
 * `--max-old-space-size` when given, else `heap_size_limit` less the young
 * generation (three semi-spaces).
 */
export function heapDeathLimit(heapSizeLimit = v8.getHeapStatistics().heap_size_limit): number {
  if (!isMainThread) {
    const old = resourceLimits.maxOldGenerationSizeMb;
    if (typeof old === 'number' && old > 0) return Math.min(old * MiB, heapSizeLimit);
  }
  let oldMb: number | undefined;
  let semiMb: number | undefined;
  for (const flag of [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)]) {
    const old = /^--max[-_]old[-_]space[-_]size=(\d+)$/.exec(flag);
    if (old) oldMb = Number(old[1]);
    const semi = /^--max[-_]semi[-_]space[-_]size=(\d+)$/.exec(flag);
    if (semi) semiMb = Number(semi[1]);
  }
  if (oldMb !== undefined && oldMb > 0) return Math.min(oldMb * MiB, heapSizeLimit);
  return Math.max(heapSizeLimit - 3 * (semiMb ?? 16) * MiB, Math.floor(heapSizeLimit / 2));
}

/** The default hard limit: the cgroup's memory limit if set (and below RAM), else physical RAM. */
export function defaultMemoryLimit(): number {
  const total = readSystemMemory().total;
  let cgroup: number | null = null;
  try {
    cgroup = readCgroup().memoryLimit;
  } catch {
    cgroup = null;
  }
  return cgroup !== null && cgroup > 0 && cgroup < total ? cgroup : total;
}

/** The V8 heap of this isolate now: bytes used, reserved, and the limit at which it dies. */
export function readHeap(): Required<HeapReading> {
  const h = v8.getHeapStatistics();
  return { used: h.used_heap_size, total: h.total_heap_size, limit: heapDeathLimit(h.heap_size_limit) };
}

/**
 * Soft and hard limits on RSS and the V8 heap, with a growth-rate warning.
 *
 * ```ts
 * const guard = new MemoryGuard({ hardLimit: '2GiB' });
 * guard.on('soft', (s) => cache.clear());
 * for (const row of rows) {
 *   if (!guard.ok()) guard.assert(); // throws MemoryLimitError if a fresh reading confirms it
 *   process(row);
 * }
 * ```
 */
export class MemoryGuard extends EventEmitter<MemoryGuardEvents> {
  // Hot path. `#seen` is the sampler sequence number last evaluated; NaN
  // makes every ok() call take the slow branch (fallback, injected source,
  // heap above its soft limit). `#limit` folds everything into one number
  // that the snapshot's RSS is compared with: the hard limit, -1 while the
  // heap is over its hard limit, or +/-Infinity with an injected source.
  #seen = NaN;
  #limit: number;
  /** Gives back this guard's hold on the sampler; null once closed (or with an injected source). */
  #release: (() => void) | null = null;
  #closed = false;

  readonly #mode: number;
  readonly #source: MemorySource | null;
  readonly #clock: Clock;
  readonly #heapOn: boolean;
  readonly #every: number;
  readonly #windowMs: number;
  readonly #opsInterval: number;
  #opsUntilCheck: number;
  #operations = 0;

  #hard: number;
  #soft: number;
  #softExplicit: boolean;
  #heapLimit: number;
  #heapHard: number;
  #heapSoft: number;
  #heapSoftExplicit: boolean;
  #growthThreshold: number;

  #n = 0;
  #lastSeq = NaN;
  #careful = false;
  #callsSinceHeap = 0;
  #heapAtRead = NaN;
  #refreshedAt = NaN;
  #refreshCalls = 1;

  #rss = NaN;
  #heapUsed = NaN;
  #heapTotal = NaN;
  #rate = 0;
  #time = NaN;

  #inSoft = false;
  #inHard = false;
  #inGrowth = false;

  #peak = 0;
  #peakHeap = 0;
  #checks = 0;
  #softWarnings = 0;
  #hardBreaches = 0;
  #growthWarnings = 0;

  readonly #ringT = new Float64Array(RING);
  readonly #ringV = new Float64Array(RING);
  #ringLen = 0;
  #ringHead = 0;

  constructor(options?: MemoryGuardOptions) {
    super();
    const o = optionsObject<MemoryGuardOptions>(options, 'options');
    const source = o.source === undefined ? null : validateSource<MemorySource>(o.source, 'options.source', ['rss']);
    const clock = optionalClock(o.clock, 'options.clock');
    const heapOn = o.heap === undefined ? true : validateBoolean(o.heap, 'options.heap');
    let hard = optionalSize(o.hardLimit, 'options.hardLimit');
    const soft = optionalSize(o.softLimit, 'options.softLimit');
    const heapHard = optionalSize(o.heapHardLimit, 'options.heapHardLimit');
    const heapSoft = optionalSize(o.heapSoftLimit, 'options.heapSoftLimit');
    const growth =
      o.growthRateThreshold === undefined ? 100_000_000 : parseSize(o.growthRateThreshold, 'options.growthRateThreshold');
    const windowMs =
      o.growthWindowMs === undefined ? 1000 : validateNumber(o.growthWindowMs, 'options.growthWindowMs', 1, 3_600_000);
    const every = o.heapCheckEvery === undefined ? 1024 : validateInteger(o.heapCheckEvery, 'options.heapCheckEvery', 1, 2 ** 30);
    const opsInterval = operationInterval(o.checkInterval, o.aggressive, 'options');
    if (source !== null && source.heap !== undefined) validateSource(source, 'options.source', ['rss', 'heap']);

    // Figures that need a reading come last, once every argument is valid.
    hard ??= defaultMemoryLimit();
    const softLimit = soft ?? Math.floor(hard * 0.8);
    requireOrder('options.softLimit', softLimit, 'options.hardLimit', hard);
    const watchHeap = heapOn && (source === null || typeof source.heap === 'function');
    let heapLimit = NaN;
    let heapHardLimit = NaN;
    let heapSoftLimit = NaN;
    if (watchHeap) {
      heapLimit = source === null ? heapDeathLimit() : sane(source.heap!().limit);
      heapHardLimit = heapHard ?? Math.floor(heapLimit * 0.9);
      heapSoftLimit = heapSoft ?? Math.floor(heapHardLimit * 0.8);
      if (heapHard !== undefined && heapLimit >= 0) requireOrder('options.heapHardLimit', heapHard, 'the heap limit', heapLimit);
      requireOrder('options.heapSoftLimit', heapSoftLimit, 'options.heapHardLimit', heapHardLimit);
    }

    this.#source = source;
    this.#clock = clock ?? monotonicClock;
    this.#heapOn = watchHeap;
    this.#every = every;
    this.#windowMs = windowMs;
    this.#opsInterval = opsInterval;
    this.#opsUntilCheck = opsInterval;
    this.#hard = hard;
    this.#soft = softLimit;
    this.#softExplicit = soft !== undefined;
    this.#heapLimit = heapLimit;
    this.#heapHard = heapHardLimit;
    this.#heapSoft = heapSoftLimit;
    this.#heapSoftExplicit = heapSoft !== undefined;
    this.#growthThreshold = growth;
    if (source !== null) {
      this.#mode = MODE_INJECTED;
    } else {
      // The guard's own hold: the sampler runs as long as the guard is open,
      // whatever other code does with stopSampler().
      this.#release = acquireSampler();
      samplerHolds.register(this, this.#release, this);
      this.#mode = sharedMemory ? MODE_SHARED : MODE_FALLBACK;
    }
    this.#limit = this.#mode === MODE_INJECTED ? Infinity : hard;
  }

  /**
   * The hot check: false when RSS or the heap is over its hard limit.
   * No native call and no allocation on the fast path; the figures are at
   * most one sampler interval (10 ms) old, also while the event loop is
   * blocked. Use it as `if (!guard.ok()) …` inside loops.
   */
  ok(): boolean {
    const v = VIEW;
    if (v[SEQ] !== this.#seen) this.#tick();
    return v[RSS]! <= this.#limit || this.#breach();
  }

  /**
   * Reads RSS and the heap now, updates events and statistics, and returns
   * the status. Never throws for a breach; see {@link MemoryGuard.assert}.
   */
  check(): MemoryGuardStatus {
    if (this.#closed) throw new GuardClosedError('MemoryGuard');
    this.#checks++;
    let rss: number;
    let heap: HeapReading | null = null;
    if (this.#source === null) {
      // Unreadable is unknown (NaN), which fails closed like a breach.
      rss = freshRss();
      if (this.#heapOn) {
        const h = v8.getHeapStatistics();
        heap = { used: h.used_heap_size, total: h.total_heap_size, limit: this.#heapLimit };
      }
    } else {
      rss = sane(this.#source.rss());
      if (this.#heapOn) heap = this.#source.heap!();
    }
    this.#evaluate(rss, heap, this.#clock());
    return this.#status();
  }

  /**
   * Like {@link MemoryGuard.check}, but throws {@link MemoryLimitError}
   * (`ERR_MEMORY_LIMIT`) when RSS or the heap is strictly above its hard
   * limit. Exactly at the limit passes.
   */
  assert(): MemoryGuardStatus {
    const status = this.check();
    const err = this.#error(status);
    if (err) throw err;
    return status;
  }

  /**
   * Counts one operation of the caller's loop; on every `checkInterval`-th
   * call it runs {@link MemoryGuard.assert}, so it throws
   * {@link MemoryLimitError} there when RSS or the heap is over its hard
   * limit or RSS is unknown. Between those calls it reads nothing. Throws
   * `ERR_GUARD_CLOSED` (counting nothing) once closed.
   */
  recordOperation(): void {
    if (this.#closed) throw new GuardClosedError('MemoryGuard');
    this.#operations++;
    if (--this.#opsUntilCheck <= 0) {
      this.#opsUntilCheck = this.#opsInterval;
      this.assert();
    }
  }

  /**
   * Gives back the guard's hold on the sampler (the thread stops once no
   * hold is left in the process). Idempotent. Afterwards `ok()` returns
   * false and `check()`/`assert()` throw `ERR_GUARD_CLOSED`. A guard that is
   * garbage-collected unclosed gives its hold back then.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#seen = NaN;
    this.#limit = -Infinity;
    samplerHolds.unregister(this);
    const release = this.#release;
    this.#release = null;
    release?.();
  }

  /** Whether {@link MemoryGuard.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** The limits in force. */
  get limits(): MemoryGuardLimits {
    return {
      softLimit: this.#soft,
      hardLimit: this.#hard,
      heapSoftLimit: this.#heapSoft,
      heapHardLimit: this.#heapHard,
      heapLimit: this.#heapLimit,
      growthRateThreshold: this.#growthThreshold,
      growthWindowMs: this.#windowMs,
      checkInterval: this.#opsInterval,
    };
  }

  /**
   * Changes limits. Validated as a whole before anything changes: on error
   * the guard keeps its previous limits. A soft limit that was never given
   * follows its hard limit (80 %).
   */
  setLimits(limits: {
    hardLimit?: number | string;
    softLimit?: number | string;
    heapHardLimit?: number | string;
    heapSoftLimit?: number | string;
    growthRateThreshold?: number | string;
  }): void {
    // A closed guard keeps failing its hot check: new limits would reopen it.
    if (this.#closed) throw new GuardClosedError('MemoryGuard');
    const o = validateObject<Partial<typeof limits>>(limits, 'limits');
    const hard = optionalSize(o.hardLimit, 'limits.hardLimit') ?? this.#hard;
    const softGiven = optionalSize(o.softLimit, 'limits.softLimit');
    const heapHardGiven = optionalSize(o.heapHardLimit, 'limits.heapHardLimit');
    const heapSoftGiven = optionalSize(o.heapSoftLimit, 'limits.heapSoftLimit');
    const growth =
      o.growthRateThreshold === undefined ? this.#growthThreshold : parseSize(o.growthRateThreshold, 'limits.growthRateThreshold');
    const soft = softGiven ?? (this.#softExplicit ? this.#soft : Math.floor(hard * 0.8));
    requireOrder('limits.softLimit', soft, 'limits.hardLimit', hard);
    let heapHard = this.#heapHard;
    let heapSoft = this.#heapSoft;
    if (this.#heapOn) {
      heapHard = heapHardGiven ?? this.#heapHard;
      if (heapHardGiven !== undefined) requireOrder('limits.heapHardLimit', heapHard, 'the heap limit', this.#heapLimit);
      heapSoft = heapSoftGiven ?? (this.#heapSoftExplicit ? this.#heapSoft : Math.floor(heapHard * 0.8));
      requireOrder('limits.heapSoftLimit', heapSoft, 'limits.heapHardLimit', heapHard);
    }
    this.#hard = hard;
    this.#soft = soft;
    if (softGiven !== undefined) this.#softExplicit = true;
    this.#heapHard = heapHard;
    this.#heapSoft = heapSoft;
    if (heapSoftGiven !== undefined) this.#heapSoftExplicit = true;
    this.#growthThreshold = growth;
    this.#seen = NaN;
    if (this.#mode !== MODE_INJECTED) this.#limit = this.#heapUsed > this.#heapHard ? -1 : hard;
  }

  /** Counters since construction or the last {@link MemoryGuard.reset}. */
  stats(): MemoryGuardStats {
    return {
      peak: this.#peak,
      peakHeap: this.#peakHeap,
      checks: this.#checks,
      operations: this.#operations,
      softWarnings: this.#softWarnings,
      hardBreaches: this.#hardBreaches,
      growthWarnings: this.#growthWarnings,
    };
  }

  /**
   * Clears the counters and the growth history. Limits that are still
   * exceeded fire their events again at the next check.
   */
  reset(): void {
    this.#peak = 0;
    this.#peakHeap = 0;
    this.#checks = 0;
    this.#operations = 0;
    this.#opsUntilCheck = this.#opsInterval;
    this.#softWarnings = 0;
    this.#hardBreaches = 0;
    this.#growthWarnings = 0;
    this.#inSoft = false;
    this.#inHard = false;
    this.#inGrowth = false;
    this.#ringLen = 0;
    this.#ringHead = 0;
    this.#rate = 0;
    this.#n = 0;
    this.#seen = NaN;
  }

  // ---- slow paths of ok() ------------------------------------------------------

  #tick(): void {
    if (this.#closed) return;
    if (this.#mode === MODE_SHARED) {
      const seq = VIEW[SEQ]!;
      this.#callsSinceHeap++;
      if (this.#careful && seq === this.#lastSeq && this.#n-- > 0) return;
      this.#lastSeq = seq;
      this.#evaluateSnapshot();
      this.#n = this.#heapCountdown();
      this.#seen = this.#careful ? NaN : seq;
      return;
    }
    if (this.#mode === MODE_FALLBACK) {
      this.#callsSinceHeap++;
      if (this.#n-- > 0) return;
      refreshSnapshot();
      this.#evaluateSnapshot();
      this.#n = Math.min(this.#heapCountdown(), this.#refreshCountdown());
      return;
    }
    const src = this.#source!;
    let heap: HeapReading | null = null;
    if (this.#heapOn) {
      if (this.#n-- <= 0 || Number.isNaN(this.#heapUsed)) {
        this.#n = this.#every - 1;
        heap = src.heap!();
      } else {
        heap = { used: this.#heapUsed, total: this.#heapTotal, limit: this.#heapLimit };
      }
    }
    this.#evaluate(sane(src.rss()), heap, this.#clock());
  }

  /**
   * Calls to let pass before the next heap reading while the heap is above
   * its soft limit: at most `heapCheckEvery`, fewer when the heap grows fast,
   * so that at the growth per call seen since the last reading, the next
   * reading comes before a quarter of the remaining headroom is used.
   */
  #heapCountdown(): number {
    const used = this.#heapUsed;
    const calls = this.#callsSinceHeap;
    const grown = used - this.#heapAtRead;
    this.#heapAtRead = used;
    this.#callsSinceHeap = 0;
    if (!this.#careful) return this.#every - 1;
    if (!(grown > 0) || calls <= 0) return this.#every - 1;
    const room = this.#heapHard - used;
    const k = Math.floor(room / ((4 * grown) / calls));
    return Math.max(0, Math.min(this.#every, k) - 1);
  }

  /**
   * Fallback mode has no thread writing into the view, so the hot check
   * copies the snapshot itself. To keep the copy about as fresh as the
   * shared view without reading a clock on every call, it counts calls and
   * rescales the count after each copy so that copies come about every
   * half sampler interval (at most every `heapCheckEvery` calls).
   */
  #refreshCountdown(): number {
    const now = monotonicClock();
    const elapsed = now - this.#refreshedAt;
    const target = (VIEW[INTERVAL]! || 10) / 2;
    let k = Number.isNaN(elapsed) ? 1 : elapsed > 0 ? Math.floor((this.#refreshCalls * target) / elapsed) : this.#every;
    k = Math.max(1, Math.min(this.#every, k));
    this.#refreshedAt = now;
    this.#refreshCalls = k;
    return k - 1;
  }

  #breach(): false {
    if (!this.#closed && !this.#inHard && this.#mode !== MODE_INJECTED) this.#evaluateSnapshot();
    return false;
  }

  #evaluateSnapshot(): void {
    const heap = this.#heapOn ? nativeHeapWith(this.#heapLimit) : null;
    if (VIEW[RUNNING] !== 1) {
      // The sampler is not running (only possible in a teardown, since this
      // guard holds it): read now, and again at every call until it runs.
      this.#seen = NaN;
      this.#evaluate(freshRss(), heap, this.#clock());
      return;
    }
    const now = this.#clock === monotonicClock ? VIEW[TIMESTAMP]! : this.#clock();
    this.#evaluate(VIEW[RSS]!, heap, now);
  }

  // ---- evaluation -----------------------------------------------------------------

  #evaluate(rss: number, heap: HeapReading | null, now: number): void {
    this.#rss = rss;
    this.#time = now;
    if (rss > this.#peak) this.#peak = rss;
    let heapUsed = NaN;
    if (heap !== null) {
      heapUsed = sane(heap.used);
      this.#heapUsed = heapUsed;
      this.#heapTotal = sane(heap.total ?? NaN);
      if (heapUsed > this.#peakHeap) this.#peakHeap = heapUsed;
    }
    this.#rate = this.#growth(now, rss);

    // NaN is "unknown", and unknown fails closed: it counts as over the limit.
    const rssHard = !(rss <= this.#hard);
    const heapHard = heap !== null && !(heapUsed <= this.#heapHard);
    const hardNow = rssHard || heapHard;
    const softNow = hardNow || !(rss <= this.#soft) || (heap !== null && !(heapUsed <= this.#heapSoft));
    const growNow = this.#rate > this.#growthThreshold;

    this.#careful = heap !== null && !(heapUsed <= this.#heapSoft);
    if (this.#careful) this.#seen = NaN;
    this.#limit = this.#mode === MODE_INJECTED ? (hardNow ? -Infinity : Infinity) : heapHard ? -1 : this.#hard;

    const fireSoft = softNow && !this.#inSoft;
    const fireHard = hardNow && !this.#inHard;
    const fireGrowth = growNow && !this.#inGrowth;
    this.#inSoft = softNow;
    this.#inHard = hardNow;
    this.#inGrowth = growNow;
    if (fireSoft) this.#softWarnings++;
    if (fireHard) this.#hardBreaches++;
    if (fireGrowth) this.#growthWarnings++;
    if (fireSoft || fireHard || fireGrowth) {
      const status = this.#status();
      if (fireSoft) this.emit('soft', status);
      if (fireHard) this.emit('hard', status);
      if (fireGrowth) this.emit('growth', status);
    }
  }

  /**
   * Bytes per second between now and the newest recorded reading at least a
   * window old (or the oldest one, if it is at least half a window old).
   */
  #growth(now: number, rss: number): number {
    if (!(rss >= 0) || !(now >= 0)) return this.#rate;
    const t = this.#ringT;
    const v = this.#ringV;
    let base = -1;
    for (let i = 0; i < this.#ringLen; i++) {
      const idx = (this.#ringHead - 1 - i + RING) % RING;
      base = idx;
      if (now - t[idx]! >= this.#windowMs) break;
    }
    let rate = 0;
    if (base >= 0 && now - t[base]! >= this.#windowMs / 2) rate = (rss - v[base]!) / ((now - t[base]!) / 1000);
    const last = (this.#ringHead - 1 + RING) % RING;
    if (this.#ringLen === 0 || now - t[last]! >= this.#windowMs / (RING / 2)) {
      t[this.#ringHead] = now;
      v[this.#ringHead] = rss;
      this.#ringHead = (this.#ringHead + 1) % RING;
      if (this.#ringLen < RING) this.#ringLen++;
    }
    return rate;
  }

  #status(): MemoryGuardStatus {
    const rss = this.#rss;
    const heapOn = this.#heapOn;
    const heapUsed = this.#heapUsed;
    const rssHard = !(rss <= this.#hard);
    const heapSoft = heapOn && !(heapUsed <= this.#heapSoft);
    const heapHard = heapOn && !(heapUsed <= this.#heapHard);
    return {
      current: rss,
      softLimit: this.#soft,
      hardLimit: this.#hard,
      exceedsSoft: !(rss <= this.#soft) || heapSoft,
      exceedsHard: rssHard || heapHard,
      breach: rssHard ? 'rss' : heapHard ? 'heap' : null,
      growthRate: this.#rate,
      growthRateThreshold: this.#growthThreshold,
      exceedsGrowthRate: this.#rate > this.#growthThreshold,
      heap: heapOn
        ? {
            used: heapUsed,
            total: this.#heapTotal,
            limit: this.#heapLimit,
            softLimit: this.#heapSoft,
            hardLimit: this.#heapHard,
            exceedsSoft: heapSoft,
            exceedsHard: heapHard,
          }
        : null,
      timestamp: this.#time,
    };
  }

  #error(status: MemoryGuardStatus): MemoryLimitError | null {
    if (status.breach === 'rss') {
      return Number.isNaN(status.current)
        ? new MemoryLimitError(
            NaN,
            status.hardLimit,
            'rss',
            `Resident memory could not be read; failing closed against the hard limit of ${formatBytes(status.hardLimit)}`,
          )
        : new MemoryLimitError(status.current, status.hardLimit, 'rss');
    }
    if (status.breach === 'heap' && status.heap !== null) {
      return Number.isNaN(status.heap.used)
        ? new MemoryLimitError(
            NaN,
            status.heap.hardLimit,
            'heap',
            `V8 heap use could not be read; failing closed against the hard limit of ${formatBytes(status.heap.hardLimit)}`,
          )
        : new MemoryLimitError(status.heap.used, status.heap.hardLimit, 'heap');
    }
    return null;
  }
}

function nativeHeapWith(limit: number): HeapReading {
  const h = v8.getHeapStatistics();
  return { used: h.used_heap_size, total: h.total_heap_size, limit };
}
