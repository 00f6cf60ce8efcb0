/**
 * Graceful degradation: a four-level state machine (normal, reduced, minimal,
 * emergency) driven by resource readings, with hysteresis.
 *
 * The worst input wins and escalation is immediate, skipping levels when the
 * reading jumps. Recovery is deliberately slower: one level per step, and a
 * step only when every input has fallen below the level's threshold by a
 * margin and the level has been held for a minimum dwell time. The margin
 * stops a reading that oscillates around a threshold from flapping the level;
 * the dwell time stops one good sample after a bad spell from doing so.
 *
 * Timestamps come from an injectable clock, so every boundary (margin, dwell)
 * is tested deterministically.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { InvalidArgTypeError, InvalidArgValueError, OutOfRangeError } from './errors';
import {
  validateBoolean,
  validateFunction,
  validateNumber,
  validateObject,
  validateOneOf,
} from './validate';
import { parseSize, type Size } from './size';

// ---- levels and inputs --------------------------------------------------------------

/** A degradation level, from least to most severe. */
export type DegradationLevel = 'normal' | 'reduced' | 'minimal' | 'emergency';

/** The levels in order of severity (index = severity). */
export const DEGRADATION_LEVELS: readonly DegradationLevel[] = Object.freeze([
  'normal',
  'reduced',
  'minimal',
  'emergency',
] as const);

/** The readings a controller takes, in the order they are evaluated. */
export type DegradationInput =
  | 'memory'
  | 'diskAvailable'
  | 'cpu'
  | 'eventLoopLagMs'
  | 'psi'
  | 'eventLoopUtilization'
  | 'heap'
  | 'containerMemory'
  | 'hostCpu';

export const DEGRADATION_INPUTS: readonly DegradationInput[] = Object.freeze([
  'memory',
  'diskAvailable',
  'cpu',
  'eventLoopLagMs',
  'psi',
  'eventLoopUtilization',
  'heap',
  'containerMemory',
  'hostCpu',
] as const);

/** Severity index of a level: normal 0, reduced 1, minimal 2, emergency 3. */
export function levelIndex(level: DegradationLevel): number {
  return DEGRADATION_LEVELS.indexOf(validateOneOf(level, 'level', DEGRADATION_LEVELS));
}

/** Whether `value` is one of the four level names. */
export function isDegradationLevel(value: unknown): value is DegradationLevel {
  return typeof value === 'string' && (DEGRADATION_LEVELS as readonly string[]).includes(value);
}

/**
 * One set of readings. Every field is optional, and `null` is the same as
 * absent: an input that could not be measured now is unknown, not zero, so
 * the controller keeps its last reading of it. {@link DegradationController.forget}
 * drops a reading for good.
 */
export interface DegradationStatus {
  /** Memory in use as a fraction of its limit (0.9 = 90 %). May exceed 1. */
  memory?: number | null;
  /** Bytes available on the watched file system. */
  diskAvailable?: number | null;
  /**
   * CPU load of this process (or of its container, see docs/shedding.md
   * "The CPU rule") against the CPUs it may use, 0..1.
   */
  cpu?: number | null;
  /** Event-loop delay in milliseconds (e.g. the p99 over the last window). */
  eventLoopLagMs?: number | null;
  /** Memory pressure stall: `some avg10` of `/proc/pressure/memory`, a percentage 0..100. */
  psi?: number | null;
  /** Event-loop utilization over the last window (`performance.eventLoopUtilization`), 0..1. */
  eventLoopUtilization?: number | null;
  /** V8 heap used as a fraction of the heap size limit (`v8.getHeapStatistics().heap_size_limit`). */
  heap?: number | null;
  /** The cgroup's working set (`memory.current` less inactive file cache) as a fraction of the cgroup limit. */
  containerMemory?: number | null;
  /** Host-wide CPU load 0..1 (`/proc/stat`). No threshold by default: opt in explicitly. */
  hostCpu?: number | null;
}

/** Result of {@link DegradationController.update}, `force`, `release` and `reset`. */
export interface DegradationResult {
  /** The level after the call. */
  readonly level: DegradationLevel;
  /** Whether this call changed the level. */
  readonly changed: boolean;
}

/** What caused a change: a reading, or an explicit call. */
export type DegradationCause = DegradationInput | 'force' | 'reset';

/** Payload of the `change` event (and of the event named after the new level). */
export interface DegradationChange {
  readonly from: DegradationLevel;
  readonly to: DegradationLevel;
  readonly direction: 'escalate' | 'recover';
  /**
   * The input that drove the change: on escalation the worst input, on
   * recovery the input that had been holding the level left. `force` or
   * `reset` for explicit calls.
   */
  readonly input: DegradationCause;
  /** That input's reading (bytes for disk), or null for force/reset or a forgotten input. */
  readonly value: number | null;
  /** The threshold crossed: the level's threshold on escalation, threshold minus margin on recovery. */
  readonly threshold: number | null;
  /** The clock's time of the change (ms). */
  readonly timestamp: number;
}

// ---- configuration ------------------------------------------------------------------

/**
 * Thresholds of one input for each level above normal. For usage inputs the
 * level starts when the reading is >= its threshold; for `diskAvailable` when
 * the bytes available are <= its threshold. `null` means the input never
 * drives that level by itself.
 */
export interface LevelThresholds<T = number> {
  reduced?: T | null;
  minimal?: T | null;
  emergency?: T | null;
}

/** Thresholds per input; `null` for an input ignores it entirely. */
export interface DegradationThresholds {
  /** Fraction of the memory limit. @default { reduced: 0.70, minimal: 0.85, emergency: 0.95 } */
  memory?: LevelThresholds | null;
  /** Bytes available (or a size string such as '500MB'). @default { reduced: 1e9, minimal: 5e8, emergency: 1e8 } */
  diskAvailable?: LevelThresholds<Size> | null;
  /** CPU load. CPU alone never causes emergency by default. @default { reduced: 0.80, minimal: 0.90, emergency: null } */
  cpu?: LevelThresholds | null;
  /** Event-loop lag in ms. @default { reduced: 100, minimal: 500, emergency: null } */
  eventLoopLagMs?: LevelThresholds | null;
  /** PSI memory `some avg10`, percent. @default { reduced: 10, minimal: 25, emergency: null } */
  psi?: LevelThresholds | null;
  /** Event-loop utilization 0..1. @default { reduced: 0.9, minimal: 0.98, emergency: null } */
  eventLoopUtilization?: LevelThresholds | null;
  /** V8 heap used / heap size limit. @default { reduced: 0.7, minimal: 0.85, emergency: 0.95 } */
  heap?: LevelThresholds | null;
  /** cgroup memory usage / cgroup limit. @default { reduced: 0.7, minimal: 0.85, emergency: 0.95 } */
  containerMemory?: LevelThresholds | null;
  /** Host CPU load 0..1. @default { reduced: null, minimal: null, emergency: null } (off) */
  hostCpu?: LevelThresholds | null;
}

/**
 * Recovery margin per input. For the fraction inputs (`memory`, `cpu`,
 * `eventLoopUtilization`, `heap`, `containerMemory`, `hostCpu`) it is absolute, in the
 * reading's own fraction units (0.05: recover from minimal at 0.85 only below
 * 0.80). For `diskAvailable`, `eventLoopLagMs` and `psi` it is relative to the
 * threshold (0.05: recover from reduced at 1 GB only above 1.05 GB
 * available; from 100 ms lag only below 95 ms).
 */
export type DegradationMargins = Partial<Record<DegradationInput, number>>;

/** Built-in actions of one level. */
export interface LevelActions {
  /** Multiply batch sizes by this factor (0..1). */
  batchSizeFactor?: number;
  /** Flush buffered output now rather than later. */
  flush?: boolean;
  /** Stop accepting work, flush and shut down gracefully. */
  terminate?: boolean;
}

/** Named presets; `conservative` degrades earlier, `aggressive` later. */
export type DegradationPreset = 'default' | 'conservative' | 'aggressive';

export interface DegradationOptions {
  /** Starting thresholds; `thresholds`, `margin` and `minDwellMs` override them. @default 'default' */
  preset?: DegradationPreset;
  /** Per-input thresholds, merged over the preset's level by level. */
  thresholds?: DegradationThresholds;
  /** One margin for every input, or margins per input. @default 0.05 */
  margin?: number | DegradationMargins;
  /** Minimum time a level is held before a recovery step, ms. Escalation never waits. @default 1000 */
  minDwellMs?: number;
  /**
   * Recover one level per step (each step after its own dwell). With `false`
   * a recovery goes straight to the level the readings still hold (below
   * every margin, after the dwell): emergency to normal in one change.
   * @default true
   */
  stepwiseRecovery?: boolean;
  /** Built-in actions per level, merged over the defaults (factor 1 / 0.5 / 0.25 / 0, flush at minimal and emergency, terminate at emergency). */
  actions?: Partial<Record<DegradationLevel, LevelActions>>;
  /**
   * User-defined flags, merged over the defaults (`skipOptional` from
   * reduced, `essentialOnly` from minimal). A level name turns the flag on at
   * that level and every worse one; an array lists exactly the levels.
   */
  flags?: Record<string, DegradationLevel | readonly DegradationLevel[]>;
  /** Time source in ms; inject one to test dwell times. @default performance.timeOrigin + performance.now() */
  clock?: () => number;
}

/** What a level asks of the application (see {@link DegradationController.actionsFor}). */
export interface DegradationActions {
  readonly level: DegradationLevel;
  readonly batchSizeFactor: number;
  readonly flush: boolean;
  readonly terminate: boolean;
  readonly flags: Readonly<Record<string, boolean>>;
}

/** Fully resolved thresholds: every level present, null where disabled. */
export type ResolvedThresholds = {
  readonly [K in DegradationInput]: Readonly<Required<LevelThresholds<number>>>;
};

/** What a preset sets: thresholds, recovery margins and the minimum dwell time. */
export interface DegradationPresetSettings {
  readonly thresholds: ResolvedThresholds;
  readonly margin: Readonly<Record<DegradationInput, number>>;
  readonly minDwellMs: number;
}

const MB = 1e6;
const GB = 1e9;

function preset(
  memory: [number, number, number],
  disk: [number, number, number],
  cpu: [number, number],
  lag: [number, number],
  psi: [number, number],
  elu: [number, number],
  heap: [number, number, number],
): DegradationPresetSettings {
  const t = (r: number, m: number, e: number | null) => Object.freeze({ reduced: r, minimal: m, emergency: e });
  return Object.freeze({
    thresholds: Object.freeze({
      memory: t(...memory),
      diskAvailable: t(...disk),
      cpu: t(cpu[0], cpu[1], null),
      eventLoopLagMs: t(lag[0], lag[1], null),
      psi: t(psi[0], psi[1], null),
      eventLoopUtilization: t(elu[0], elu[1], null),
      heap: t(...heap),
      containerMemory: t(...memory),
      hostCpu: Object.freeze({ reduced: null, minimal: null, emergency: null }),
    }),
    margin: Object.freeze({
      memory: 0.05,
      diskAvailable: 0.05,
      cpu: 0.05,
      eventLoopLagMs: 0.05,
      psi: 0.05,
      eventLoopUtilization: 0.05,
      heap: 0.05,
      containerMemory: 0.05,
      hostCpu: 0.05,
    }),
    minDwellMs: 1000,
  });
}

/**
 * The presets. `default` is the table of the design: memory 70/85/95 %, disk
 * 1 GB / 500 MB / 100 MB available, CPU 80/90 %. "MB" and "GB" are decimal
 * (1 GB = 10^9 bytes), as everywhere in the size language (see `size.ts`).
 */
export const DEGRADATION_PRESETS: Readonly<Record<DegradationPreset, DegradationPresetSettings>> = Object.freeze({
  default: preset([0.7, 0.85, 0.95], [1 * GB, 500 * MB, 100 * MB], [0.8, 0.9], [100, 500], [10, 25], [0.9, 0.98], [0.7, 0.85, 0.95]),
  conservative: preset([0.6, 0.75, 0.9], [2 * GB, 1 * GB, 500 * MB], [0.7, 0.85], [50, 250], [5, 15], [0.8, 0.95], [0.6, 0.75, 0.9]),
  aggressive: preset([0.8, 0.9, 0.98], [500 * MB, 200 * MB, 50 * MB], [0.9, 0.95], [200, 1000], [20, 40], [0.95, 0.99], [0.8, 0.9, 0.98]),
});

const DEFAULT_ACTIONS: Readonly<Record<DegradationLevel, Required<LevelActions>>> = Object.freeze({
  normal: Object.freeze({ batchSizeFactor: 1, flush: false, terminate: false }),
  reduced: Object.freeze({ batchSizeFactor: 0.5, flush: false, terminate: false }),
  minimal: Object.freeze({ batchSizeFactor: 0.25, flush: true, terminate: false }),
  emergency: Object.freeze({ batchSizeFactor: 0, flush: true, terminate: true }),
});

const DEFAULT_FLAGS: Readonly<Record<string, DegradationLevel>> = Object.freeze({
  skipOptional: 'reduced',
  essentialOnly: 'minimal',
});

// Inputs whose reading grows with trouble; disk available shrinks with it.
// Internally disk readings and thresholds are negated so that one comparison
// (reading >= threshold) serves every input.
const INPUT_COUNT = 9;
const DISK = 1;
/** Inputs whose margin is absolute (fraction units); the others are relative. */
const ABSOLUTE_MARGIN: readonly boolean[] = [true, false, true, false, false, true, true, true, true];
/** Upper bound of each input's thresholds. */
const THRESHOLD_MAX: readonly number[] = [Infinity, Number.MAX_SAFE_INTEGER, Infinity, Infinity, 100, 1, Infinity, Infinity, 1];

const FORCE = -2;
const RESET = -3;

// Results are shared, frozen and allocated once, so update() allocates nothing.
const SAME: readonly DegradationResult[] = DEGRADATION_LEVELS.map((level) => Object.freeze({ level, changed: false }));
const CHANGED: readonly DegradationResult[] = DEGRADATION_LEVELS.map((level) => Object.freeze({ level, changed: true }));

const defaultClock = (): number => performance.timeOrigin + performance.now();

/** Events of a {@link DegradationController}. */
export type DegradationEvents = {
  change: [DegradationChange];
  normal: [DegradationChange];
  reduced: [DegradationChange];
  minimal: [DegradationChange];
  emergency: [DegradationChange];
};

/** Counters of a controller since it was created. */
export interface DegradationStats {
  level: DegradationLevel;
  forced: boolean;
  /** Clock time at which the current level was entered (or forced / reset). */
  since: number;
  updates: number;
  changes: number;
  escalations: number;
  recoveries: number;
  /** Last reading of each input, null where unknown (disk in bytes). */
  inputs: Record<DegradationInput, number | null>;
}

/**
 * Decides the degradation level from resource readings, with hysteresis.
 *
 * ```ts
 * const controller = new DegradationController({ minDwellMs: 2000 });
 * controller.on('change', (e) => log.warn(`degradation ${e.from} -> ${e.to} (${e.input})`));
 * const { level, changed } = controller.update({ memory: rss / limit, diskAvailable: free });
 * const batch = controller.batchSize(10_000);
 * ```
 *
 * Events: `change` for every change, and one named after the new level
 * (`'emergency'`, …). Listeners run synchronously inside the call that made
 * the change; a change made by a listener is announced after the current one
 * has reached every listener, so events always arrive in order. An exception
 * from a listener propagates out of that call once every listener has run;
 * the change itself stands.
 */
export class DegradationController extends EventEmitter<DegradationEvents> {
  readonly #enter = new Float64Array(INPUT_COUNT * 3);
  readonly #exit = new Float64Array(INPUT_COUNT * 3);
  readonly #values = new Float64Array(INPUT_COUNT).fill(NaN);
  /** The readings before the current update(), to put back when its evaluation fails. */
  readonly #undo = new Float64Array(INPUT_COUNT);
  readonly #dwell: number;
  readonly #clock: () => number;
  readonly #actions: readonly DegradationActions[];
  readonly #thresholds: ResolvedThresholds;
  readonly #margins: Readonly<Record<DegradationInput, number>>;
  #level = 0;
  #since: number;
  #forced = false;
  /** Input that holds the current level (index), FORCE, or -1 at normal. */
  #driver = -1;
  #updates = 0;
  #changes = 0;
  #escalations = 0;
  #recoveries = 0;
  readonly #stepwise: boolean;
  #emitting = false;
  readonly #queue: DegradationChange[] = [];

  constructor(options: DegradationOptions = {}) {
    super();
    validateObject(options, 'options');
    const presetName =
      options.preset === undefined
        ? 'default'
        : validateOneOf(options.preset, 'options.preset', Object.keys(DEGRADATION_PRESETS) as DegradationPreset[]);
    const base = DEGRADATION_PRESETS[presetName];
    this.#clock = options.clock === undefined ? defaultClock : validateFunction<() => number>(options.clock, 'options.clock');
    this.#dwell = options.minDwellMs === undefined ? base.minDwellMs : validateNumber(options.minDwellMs, 'options.minDwellMs', 0);
    this.#stepwise = options.stepwiseRecovery === undefined ? true : validateBoolean(options.stepwiseRecovery, 'options.stepwiseRecovery');
    this.#thresholds = resolveThresholds(base.thresholds, options.thresholds);
    this.#margins = resolveMargins(base.margin, options.margin);
    checkMarginsFit(this.#thresholds, this.#margins);
    this.#fillTables();
    this.#actions = resolveActions(options.actions, options.flags);
    this.#since = this.#now();
  }

  // ---- reading the state ------------------------------------------------------------

  /** The current level. */
  get level(): DegradationLevel {
    return DEGRADATION_LEVELS[this.#level]!;
  }

  /** Severity of the current level, 0 (normal) to 3 (emergency). */
  get levelIndex(): number {
    return this.#level;
  }

  /** Whether the level is above normal. */
  get degraded(): boolean {
    return this.#level > 0;
  }

  /** Whether a recovery moves one level per step (the default) or straight to the level the readings hold. */
  get stepwiseRecovery(): boolean {
    return this.#stepwise;
  }

  /** Whether {@link force} pinned the level (until {@link release} or {@link reset}). */
  get forced(): boolean {
    return this.#forced;
  }

  /** Number of level changes so far (each one a `changed: true` result). */
  get changes(): number {
    return this.#changes;
  }

  /** Clock time at which the current level was entered. */
  get since(): number {
    return this.#since;
  }

  /** The thresholds in effect (disk in bytes), null where an input never drives a level. */
  get thresholds(): ResolvedThresholds {
    return this.#thresholds;
  }

  /** The recovery margins in effect. */
  get margins(): Readonly<Record<DegradationInput, number>> {
    return this.#margins;
  }

  /** The minimum dwell time in effect, ms. */
  get minDwellMs(): number {
    return this.#dwell;
  }

  /** Actions of the current level. */
  get actions(): DegradationActions {
    return this.#actions[this.#level]!;
  }

  /** Actions of any level (frozen, shared). */
  actionsFor(level: DegradationLevel): DegradationActions {
    return this.#actions[levelIndex(level)]!;
  }

  /**
   * `base` scaled by the current level's batch size factor, rounded down, and
   * at least 1 while the factor is above 0 (a batch never stalls at 0 before
   * emergency says so).
   */
  batchSize(base: number): number {
    validateNumber(base, 'base', 0);
    const f = this.#actions[this.#level]!.batchSizeFactor;
    if (f === 0 || base === 0) return 0;
    return Math.max(1, Math.floor(base * f));
  }

  /** Last reading of each input (null where unknown). */
  get inputs(): Record<DegradationInput, number | null> {
    const v = this.#values;
    const out = {} as Record<DegradationInput, number | null>;
    for (let i = 0; i < INPUT_COUNT; i++) out[DEGRADATION_INPUTS[i]!] = readingOf(i, v[i]!);
    return out;
  }

  /** Counters and state. */
  stats(): DegradationStats {
    return {
      level: this.level,
      forced: this.#forced,
      since: this.#since,
      updates: this.#updates,
      changes: this.#changes,
      escalations: this.#escalations,
      recoveries: this.#recoveries,
      inputs: this.inputs,
    };
  }

  // ---- driving it -------------------------------------------------------------------

  /**
   * Takes a set of readings and returns the level. Every reading must be a
   * finite number >= 0; null or absent keeps the last reading of that input.
   * On a bad reading the call throws an argument error before anything
   * changes.
   *
   * The result is one of eight frozen objects shared by every controller, so
   * the call allocates nothing unless the level changes; keep it as long as
   * you like, it never mutates.
   */
  update(status: DegradationStatus): DegradationResult {
    if (typeof status !== 'object' || status === null) throw new InvalidArgTypeError('status', 'of type object', status);
    const v = this.#values;
    storeReadings(v, this.#undo, status);
    let result: DegradationResult;
    try {
      result = this.#evaluate();
    } catch (err) {
      // Only the clock can fail here (before the level or any counter
      // changed): the readings go back, so the call changed nothing.
      v.set(this.#undo);
      throw err;
    }
    this.#updates++;
    return result;
  }

  /**
   * Drops the last reading of `input` (an input no longer watched), so that
   * it no longer holds the level. The level is re-evaluated at once; a
   * recovery it allows follows the usual rules (one step, after the dwell).
   */
  forget(input: DegradationInput): DegradationResult {
    const i = DEGRADATION_INPUTS.indexOf(validateOneOf(input, 'input', DEGRADATION_INPUTS));
    const v = this.#values;
    const old = v[i]!;
    v[i] = NaN;
    try {
      return this.#evaluate();
    } catch (err) {
      v[i] = old; // the clock failed: nothing changed
      throw err;
    }
  }

  /**
   * Pins the level: it changes now (up or down) and stays until
   * {@link release} or {@link reset}, whatever the readings say. Readings
   * given meanwhile are still recorded.
   */
  force(level: DegradationLevel): DegradationResult {
    const to = levelIndex(level);
    if (to === this.#level) {
      this.#forced = true;
      return SAME[to]!;
    }
    const now = this.#now(); // before anything changes: a failing clock changes nothing
    this.#forced = true;
    this.#driver = FORCE;
    return this.#change(to, FORCE, NaN, NaN, now);
  }

  /**
   * Ends a {@link force}. The level follows the readings again: a worse
   * reading escalates at once; recovery follows the usual rules, with the
   * dwell time counted from when the level was forced.
   */
  release(): DegradationResult {
    if (!this.#forced) return SAME[this.#level]!;
    this.#forced = false;
    try {
      return this.#evaluate();
    } catch (err) {
      this.#forced = true; // the clock failed: nothing changed
      throw err;
    }
  }

  /** Back to normal: forgets every reading and any {@link force}. */
  reset(): DegradationResult {
    const now = this.#now(); // before anything changes: a failing clock changes nothing
    this.#values.fill(NaN);
    this.#forced = false;
    this.#driver = -1;
    if (this.#level === 0) {
      this.#since = now;
      return SAME[0]!;
    }
    return this.#change(0, RESET, NaN, NaN, now);
  }

  // ---- internals --------------------------------------------------------------------

  #evaluate(): DegradationResult {
    const cur = this.#level;
    if (this.#forced) return SAME[cur]!;
    const v = this.#values;
    const e = this.#enter;
    let target = 0;
    let driver = -1;
    // Bounded by the array's length rather than INPUT_COUNT (the same
    // number): V8 keeps a module constant in a context slot, and the loop
    // over it ran at about half the speed.
    for (let i = 0; i < v.length; i++) {
      const x = v[i]!;
      const b = i * 3;
      const lvl = x >= e[b + 2]! ? 3 : x >= e[b + 1]! ? 2 : x >= e[b]! ? 1 : 0;
      if (lvl > target) {
        target = lvl;
        driver = i;
      }
    }
    if (target === cur) return SAME[cur]!;
    if (target > cur) {
      const now = this.#now(); // before anything changes
      this.#driver = driver;
      return this.#change(target, driver, v[driver]!, e[driver * 3 + target - 1]!, now);
    }
    // A recovery candidate: every reading clear of the margin, and the level
    // held long enough? The margin is checked first because it needs no
    // clock read, and a reading hovering in the band fails it on every call.
    const x3 = this.#exit;
    let held = 0;
    let holder = -1;
    for (let i = 0; i < v.length; i++) {
      const x = v[i]!;
      const b = i * 3;
      const lvl = x >= x3[b + 2]! ? 3 : x >= x3[b + 1]! ? 2 : x >= x3[b]! ? 1 : 0;
      if (lvl > held) {
        held = lvl;
        holder = i;
      }
    }
    if (held >= cur) return SAME[cur]!;
    const now = this.#now();
    if (now - this.#since < this.#dwell) return SAME[cur]!;
    const left = this.#driver;
    const next = this.#stepwise ? cur - 1 : held;
    // The input named is the one that held the level being left; afterwards
    // the input still inside the band of the new level (if any) holds it.
    if (held === next) this.#driver = holder;
    // `left` is an input, or FORCE when the level being left was forced.
    return left >= 0
      ? this.#change(next, left, v[left]!, x3[left * 3 + cur - 1]!, now)
      : this.#change(next, left, NaN, NaN, now);
  }

  #change(to: number, cause: number, value: number, threshold: number, now: number): DegradationResult {
    const from = this.#level;
    this.#level = to;
    this.#since = now;
    this.#changes++;
    if (to > from) this.#escalations++;
    else this.#recoveries++;
    if (this.listenerCount('change') + this.listenerCount(DEGRADATION_LEVELS[to]!) > 0) {
      this.#announce({
        from: DEGRADATION_LEVELS[from]!,
        to: DEGRADATION_LEVELS[to]!,
        direction: to > from ? 'escalate' : 'recover',
        input: cause >= 0 ? DEGRADATION_INPUTS[cause]! : cause === FORCE ? 'force' : 'reset',
        value: cause >= 0 ? readingOf(cause, value) : null,
        threshold: cause >= 0 ? readingOf(cause, threshold) : null,
        timestamp: now,
      });
    }
    return CHANGED[to]!;
  }

  #announce(event: DegradationChange): void {
    this.#queue.push(event);
    if (this.#emitting) return;
    this.#emitting = true;
    // Listeners are called one by one (not through emit(), which stops at the
    // first exception) so that one failing listener cannot starve the others.
    let failed = false;
    let error: unknown;
    try {
      for (let i = 0; i < this.#queue.length; i++) {
        const ev = this.#queue[i]!;
        for (const name of ['change', ev.to] as const) {
          for (const fn of this.rawListeners(name) as Array<(e: DegradationChange) => void>) {
            try {
              fn.call(this, ev);
            } catch (err) {
              if (!failed) [failed, error] = [true, err];
            }
          }
        }
      }
    } finally {
      this.#queue.length = 0;
      this.#emitting = false;
    }
    if (failed) throw error;
  }

  #now(): number {
    const t = this.#clock();
    if (typeof t !== 'number' || Number.isNaN(t)) throw new InvalidArgValueError('options.clock', t, 'must return a number');
    return t;
  }

  #fillTables(): void {
    for (let i = 0; i < INPUT_COUNT; i++) {
      const key = DEGRADATION_INPUTS[i]!;
      const t = this.#thresholds[key];
      const m = this.#margins[key];
      const levels = [t.reduced, t.minimal, t.emergency];
      for (let k = 0; k < 3; k++) {
        const th = levels[k];
        const b = i * 3 + k;
        if (th === null || th === undefined) {
          this.#enter[b] = Infinity;
          this.#exit[b] = Infinity;
        } else if (i === DISK) {
          this.#enter[b] = -th;
          this.#exit[b] = -round(th * (1 + m));
        } else {
          this.#enter[b] = th;
          this.#exit[b] = round(ABSOLUTE_MARGIN[i] ? th - m : th * (1 - m));
        }
      }
    }
  }
}

/**
 * The level a fresh controller with these options would report for
 * `status`: thresholds only, no hysteresis. For one-off classification (a
 * health report without a controller); drive a {@link DegradationController}
 * for decisions over time.
 */
export function degradationLevelFor(status: DegradationStatus, options?: DegradationOptions): DegradationLevel {
  return new DegradationController(options).update(status).level;
}

// ---- helpers -------------------------------------------------------------------------

// Thresholds minus margins are rounded to 12 significant digits so that
// 0.85 - 0.05 is 0.8, not 0.7999999999999999: a reading of exactly 0.80
// stays in the band, as documented.
function round(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(12)) : x;
}

function readingOf(i: number, x: number): number | null {
  if (Number.isNaN(x)) return null;
  return i === DISK ? -x : x;
}

/**
 * Stores the readings of `status` into `v` (indexed as DEGRADATION_INPUTS,
 * disk negated), after copying `v` as it was into `undo`. Kept out of update() so that update() stays small enough
 * to be inlined where it is called.
 */
function storeReadings(v: Float64Array, undo: Float64Array, status: DegradationStatus): void {
  // Each field is read once, by name (a getter cannot pass the check with
  // one value and be stored with another; named loads stay cached per
  // shape, where a loop over the names went through a generic lookup), and
  // every one is checked before any is stored, so a rejected call changes
  // nothing. The order is that of DEGRADATION_INPUTS.
  const memory = status.memory;
  const disk = status.diskAvailable;
  const cpu = status.cpu;
  const lag = status.eventLoopLagMs;
  const psi = status.psi;
  const elu = status.eventLoopUtilization;
  const heap = status.heap;
  const container = status.containerMemory;
  const hostCpu = status.hostCpu;
  if (memory != null && !isReading(memory)) badReading('memory', memory);
  if (disk != null && !isReading(disk)) badReading('diskAvailable', disk);
  if (cpu != null && !isReading(cpu)) badReading('cpu', cpu);
  if (lag != null && !isReading(lag)) badReading('eventLoopLagMs', lag);
  if (psi != null && !isReading(psi)) badReading('psi', psi);
  if (elu != null && !isReading(elu)) badReading('eventLoopUtilization', elu);
  if (heap != null && !isReading(heap)) badReading('heap', heap);
  if (container != null && !isReading(container)) badReading('containerMemory', container);
  if (hostCpu != null && !isReading(hostCpu)) badReading('hostCpu', hostCpu);
  for (let i = 0; i < v.length; i++) undo[i] = v[i]!;
  if (memory != null) v[0] = memory;
  if (disk != null) v[DISK] = -disk; // stored negated: less available is worse
  if (cpu != null) v[2] = cpu;
  if (lag != null) v[3] = lag;
  if (psi != null) v[4] = psi;
  if (elu != null) v[5] = elu;
  if (heap != null) v[6] = heap;
  if (container != null) v[7] = container;
  if (hostCpu != null) v[8] = hostCpu;
}

/** A finite number >= 0 (typeof first: a string such as '0.5' would pass the comparisons). */
function isReading(x: unknown): x is number {
  return typeof x === 'number' && x >= 0 && x < Infinity;
}

function badReading(name: DegradationInput, value: unknown): never {
  if (typeof value !== 'number') throw new InvalidArgTypeError(`status.${name}`, 'of type number or null', value);
  throw new OutOfRangeError(`status.${name}`, 'a finite number >= 0', value);
}

function resolveThresholds(base: ResolvedThresholds, given: DegradationThresholds | undefined): ResolvedThresholds {
  if (given === undefined) return base;
  validateObject(given, 'options.thresholds');
  const out = {} as Record<DegradationInput, Readonly<Required<LevelThresholds<number>>>>;
  for (const key of Object.keys(given)) {
    if (!(DEGRADATION_INPUTS as readonly string[]).includes(key)) {
      throw new InvalidArgValueError(`options.thresholds.${key}`, key, `is not an input (use ${DEGRADATION_INPUTS.join(', ')})`);
    }
  }
  for (let i = 0; i < INPUT_COUNT; i++) {
    const key = DEGRADATION_INPUTS[i]!;
    const g = (given as Record<string, unknown>)[key];
    const name = `options.thresholds.${key}`;
    if (g === undefined) {
      out[key] = base[key];
      continue;
    }
    if (g === null) {
      out[key] = Object.freeze({ reduced: null, minimal: null, emergency: null });
      continue;
    }
    validateObject(g, name);
    const b = base[key];
    const levels = (['reduced', 'minimal', 'emergency'] as const).map((lv) => {
      const raw = (g as Record<string, unknown>)[lv];
      if (raw === undefined) return b[lv];
      if (raw === null) return null;
      return thresholdValue(i, raw, `${name}.${lv}`);
    });
    // Ordered: each enabled level strictly worse than the enabled level below it.
    let prev: number | null = null;
    let prevName = '';
    for (let k = 0; k < 3; k++) {
      const t = levels[k];
      if (t === null || t === undefined) continue;
      const lvName = DEGRADATION_LEVELS[k + 1]!;
      if (prev !== null && (i === DISK ? t >= prev : t <= prev)) {
        throw new OutOfRangeError(
          `${name}.${lvName}`,
          `${i === DISK ? 'less' : 'greater'} than ${name}.${prevName} (${prev}) (levels must be ordered)`,
          t,
        );
      }
      prev = t;
      prevName = lvName;
    }
    out[key] = Object.freeze({ reduced: levels[0] ?? null, minimal: levels[1] ?? null, emergency: levels[2] ?? null });
  }
  return Object.freeze(out);
}

function thresholdValue(i: number, raw: unknown, name: string): number {
  if (i === DISK) return parseSize(raw, name);
  if (typeof raw !== 'number') throw new InvalidArgTypeError(name, 'of type number or null', raw);
  const max = THRESHOLD_MAX[i]!;
  if (!(raw > 0 && raw <= max && Number.isFinite(raw))) {
    throw new OutOfRangeError(name, max === Infinity ? 'a finite number > 0' : `> 0 and <= ${max}`, raw);
  }
  return raw;
}

function resolveMargins(
  base: Readonly<Record<DegradationInput, number>>,
  given: number | DegradationMargins | undefined,
): Readonly<Record<DegradationInput, number>> {
  const out = { ...base };
  if (typeof given === 'number') {
    for (const key of DEGRADATION_INPUTS) out[key] = given;
  } else if (given !== undefined) {
    if (typeof given !== 'object' || given === null || Array.isArray(given)) {
      throw new InvalidArgTypeError('options.margin', 'of type number or object', given);
    }
    for (const key of Object.keys(given)) {
      if (!(DEGRADATION_INPUTS as readonly string[]).includes(key)) {
        throw new InvalidArgValueError(`options.margin.${key}`, key, `is not an input (use ${DEGRADATION_INPUTS.join(', ')})`);
      }
      const m = (given as Record<string, unknown>)[key];
      if (m !== undefined) out[key as DegradationInput] = m as number;
    }
  }
  for (let i = 0; i < INPUT_COUNT; i++) {
    const key = DEGRADATION_INPUTS[i]!;
    const name = typeof given === 'number' ? 'options.margin' : `options.margin.${key}`;
    const m = out[key];
    if (ABSOLUTE_MARGIN[i]) validateNumber(m, name, 0, 1);
    else if (i === DISK) validateNumber(m, name, 0);
    else validateNumber(m, name, 0, 0.99);
  }
  return Object.freeze(out);
}

function checkMarginsFit(thresholds: ResolvedThresholds, margins: Readonly<Record<DegradationInput, number>>): void {
  // An absolute margin as large as the lowest threshold would leave no reading
  // at which the input lets the level recover.
  for (let i = 0; i < INPUT_COUNT; i++) {
    if (!ABSOLUTE_MARGIN[i]) continue;
    const key = DEGRADATION_INPUTS[i]!;
    const t = thresholds[key];
    const lowest = [t.reduced, t.minimal, t.emergency].find((x) => x !== null);
    if (lowest !== undefined && lowest !== null && margins[key] >= lowest) {
      throw new OutOfRangeError(`options.margin.${key}`, `less than the lowest ${key} threshold (${lowest})`, margins[key]);
    }
  }
}

function resolveActions(
  given: Partial<Record<DegradationLevel, LevelActions>> | undefined,
  flagsGiven: Record<string, DegradationLevel | readonly DegradationLevel[]> | undefined,
): readonly DegradationActions[] {
  if (given !== undefined) {
    validateObject(given, 'options.actions');
    for (const key of Object.keys(given)) {
      if (!isDegradationLevel(key)) {
        throw new InvalidArgValueError(`options.actions.${key}`, key, `is not a level (use ${DEGRADATION_LEVELS.join(', ')})`);
      }
    }
  }
  const flagLevels: Record<string, readonly number[]> = {};
  const flags: Record<string, DegradationLevel | readonly DegradationLevel[]> = { ...DEFAULT_FLAGS };
  if (flagsGiven !== undefined) {
    validateObject(flagsGiven, 'options.flags');
    Object.assign(flags, flagsGiven);
  }
  for (const [name, spec] of Object.entries(flags)) {
    if (name === '') throw new InvalidArgValueError('options.flags', name, 'must not have an empty flag name');
    const label = `options.flags.${name}`;
    if (typeof spec === 'string') {
      const from = DEGRADATION_LEVELS.indexOf(validateOneOf(spec, label, DEGRADATION_LEVELS));
      flagLevels[name] = [0, 1, 2, 3].filter((k) => k >= from);
    } else if (Array.isArray(spec)) {
      flagLevels[name] = spec.map((s, j) => DEGRADATION_LEVELS.indexOf(validateOneOf(s, `${label}[${j}]`, DEGRADATION_LEVELS)));
    } else {
      throw new InvalidArgTypeError(label, 'a level name or an array of level names', spec);
    }
  }
  return DEGRADATION_LEVELS.map((level, k) => {
    const d = DEFAULT_ACTIONS[level];
    const g = given?.[level];
    let batchSizeFactor = d.batchSizeFactor;
    let flush = d.flush;
    let terminate = d.terminate;
    if (g !== undefined) {
      const name = `options.actions.${level}`;
      validateObject(g, name);
      if (g.batchSizeFactor !== undefined) batchSizeFactor = validateNumber(g.batchSizeFactor, `${name}.batchSizeFactor`, 0, 1);
      if (g.flush !== undefined) flush = validateBoolean(g.flush, `${name}.flush`);
      if (g.terminate !== undefined) terminate = validateBoolean(g.terminate, `${name}.terminate`);
    }
    const f: Record<string, boolean> = {};
    for (const [name, levels] of Object.entries(flagLevels)) f[name] = levels.includes(k);
    return Object.freeze({ level, batchSizeFactor, flush, terminate, flags: Object.freeze(f) });
  });
}
