// The degradation state machine at its exact boundaries: every default
// threshold (at and just short of it), worst input wins, level skipping on
// escalation, one-step recovery, the margin, the dwell time, force / release
// / reset, bad readings and bad configuration. Time comes from an injected
// clock, so nothing here depends on the speed of the machine.
import { describe, expect, test } from 'vitest';
import {
  DEGRADATION_INPUTS,
  DEGRADATION_LEVELS,
  DEGRADATION_PRESETS,
  DegradationController,
  degradationLevelFor,
  isDegradationLevel,
  levelIndex,
  type DegradationChange,
  type DegradationLevel,
  type DegradationOptions,
  type DegradationStatus,
} from '../src/degradation';
import { codeOf } from './helpers';

/** A controller on a hand-driven clock. */
function make(options: DegradationOptions = {}) {
  const clock = { now: 0 };
  const c = new DegradationController({ clock: () => clock.now, ...options });
  const events: DegradationChange[] = [];
  c.on('change', (e) => events.push(e));
  return { c, clock, events };
}

const level = (status: DegradationStatus, options?: DegradationOptions) => degradationLevelFor(status, options);

describe('default thresholds: exactly at belongs to the higher level, just short of it does not', () => {
  // [input, reading, expected level]
  const cases: Array<[keyof DegradationStatus, number, DegradationLevel]> = [
    ['memory', 0, 'normal'],
    ['memory', 0.6999999, 'normal'],
    ['memory', 0.7, 'reduced'],
    ['memory', 0.8499999, 'reduced'],
    ['memory', 0.85, 'minimal'],
    ['memory', 0.9499999, 'minimal'],
    ['memory', 0.95, 'emergency'],
    ['memory', 1.5, 'emergency'],
    ['diskAvailable', 1e12, 'normal'],
    ['diskAvailable', 1_000_000_001, 'normal'],
    ['diskAvailable', 1_000_000_000, 'reduced'],
    ['diskAvailable', 500_000_001, 'reduced'],
    ['diskAvailable', 500_000_000, 'minimal'],
    ['diskAvailable', 100_000_001, 'minimal'],
    ['diskAvailable', 100_000_000, 'emergency'],
    ['diskAvailable', 0, 'emergency'],
    ['cpu', 0.7999999, 'normal'],
    ['cpu', 0.8, 'reduced'],
    ['cpu', 0.8999999, 'reduced'],
    ['cpu', 0.9, 'minimal'],
    ['cpu', 1, 'minimal'], // CPU alone never causes emergency
    ['cpu', 64, 'minimal'],
    ['eventLoopLagMs', 99.999, 'normal'],
    ['eventLoopLagMs', 100, 'reduced'],
    ['eventLoopLagMs', 499.999, 'reduced'],
    ['eventLoopLagMs', 500, 'minimal'],
    ['eventLoopLagMs', 1e7, 'minimal'],
    ['psi', 9.99, 'normal'],
    ['psi', 10, 'reduced'],
    ['psi', 24.99, 'reduced'],
    ['psi', 25, 'minimal'],
    ['psi', 100, 'minimal'],
  ];
  test.each(cases)('%s = %d → %s', (input, reading, expected) => {
    const { c } = make();
    const r = c.update({ [input]: reading });
    expect(r.level).toBe(expected);
    expect(r.changed).toBe(expected !== 'normal');
    expect(c.level).toBe(expected);
  });

  test('the default thresholds are the documented table', () => {
    const { c } = make();
    expect(c.thresholds).toEqual({
      memory: { reduced: 0.7, minimal: 0.85, emergency: 0.95 },
      diskAvailable: { reduced: 1e9, minimal: 5e8, emergency: 1e8 },
      cpu: { reduced: 0.8, minimal: 0.9, emergency: null },
      eventLoopLagMs: { reduced: 100, minimal: 500, emergency: null },
      psi: { reduced: 10, minimal: 25, emergency: null },
      eventLoopUtilization: { reduced: 0.9, minimal: 0.98, emergency: null },
      heap: { reduced: 0.7, minimal: 0.85, emergency: 0.95 },
      containerMemory: { reduced: 0.7, minimal: 0.85, emergency: 0.95 },
      hostCpu: { reduced: null, minimal: null, emergency: null },
    });
    expect(c.margins).toEqual({
      memory: 0.05, diskAvailable: 0.05, cpu: 0.05, eventLoopLagMs: 0.05, psi: 0.05,
      eventLoopUtilization: 0.05, heap: 0.05, containerMemory: 0.05, hostCpu: 0.05,
    });
    expect(c.minDwellMs).toBe(1000);
    expect(c.level).toBe('normal');
  });
});

describe('worst input wins', () => {
  test('the highest level among the inputs is taken, and the event names that input', () => {
    const { c, events } = make();
    expect(c.update({ memory: 0.5, diskAvailable: 400e6, cpu: 0.85 }).level).toBe('minimal');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ from: 'normal', to: 'minimal', input: 'diskAvailable', value: 400e6, threshold: 5e8 });
  });

  test('a later input that is worse takes over; a better one does not lower the level', () => {
    const { c, clock, events } = make();
    c.update({ memory: 0.75 });
    expect(c.level).toBe('reduced');
    clock.now += 10_000;
    c.update({ cpu: 0.1 }); // memory is still 0.75: no recovery
    expect(c.level).toBe('reduced');
    c.update({ diskAvailable: 50e6 });
    expect(c.level).toBe('emergency');
    expect(events.map((e) => [e.from, e.to, e.input])).toEqual([
      ['normal', 'reduced', 'memory'],
      ['reduced', 'emergency', 'diskAvailable'],
    ]);
  });

  test('ties go to the first input in evaluation order (memory, disk, cpu, lag, psi)', () => {
    const { c, events } = make();
    c.update({ psi: 30, cpu: 0.95, memory: 0.9 });
    expect(events[0]!.input).toBe('memory');
  });
});

describe('escalation', () => {
  test('skips levels: normal straight to emergency in one change', () => {
    const { c, events } = make();
    const r = c.update({ memory: 0.97 });
    expect(r).toEqual({ level: 'emergency', changed: true });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ from: 'normal', to: 'emergency', direction: 'escalate', input: 'memory', value: 0.97, threshold: 0.95 });
    expect(c.changes).toBe(1);
  });

  test('is immediate: the dwell time never delays it', () => {
    const { c, clock } = make({ minDwellMs: 60_000 });
    c.update({ memory: 0.75 });
    clock.now += 1;
    expect(c.update({ memory: 0.9 })).toEqual({ level: 'minimal', changed: true });
    clock.now += 1;
    expect(c.update({ memory: 0.99 })).toEqual({ level: 'emergency', changed: true });
  });
});

describe('recovery', () => {
  test('steps down one level per step, each after the dwell time', () => {
    const { c, clock, events } = make();
    c.update({ memory: 0.99 });
    expect(c.level).toBe('emergency');
    clock.now += 1000;
    expect(c.update({ memory: 0.1 })).toEqual({ level: 'minimal', changed: true });
    // Same reading, same instant: the new level has not been held yet.
    expect(c.update({ memory: 0.1 })).toEqual({ level: 'minimal', changed: false });
    clock.now += 1000;
    expect(c.update({ memory: 0.1 })).toEqual({ level: 'reduced', changed: true });
    clock.now += 1000;
    expect(c.update({ memory: 0.1 })).toEqual({ level: 'normal', changed: true });
    clock.now += 1000;
    expect(c.update({ memory: 0.1 })).toEqual({ level: 'normal', changed: false });
    expect(events.map((e) => `${e.from}>${e.to}:${e.direction}`)).toEqual([
      'normal>emergency:escalate',
      'emergency>minimal:recover',
      'minimal>reduced:recover',
      'reduced>normal:recover',
    ]);
    expect(events[1]).toMatchObject({ input: 'memory', value: 0.1, threshold: 0.9, timestamp: 1000 });
    expect(c.stats()).toMatchObject({ changes: 4, escalations: 1, recoveries: 3, updates: 6 });
  });

  test('dwell: a level is held for minDwellMs before a step down (exactly minDwellMs suffices)', () => {
    const { c, clock } = make({ minDwellMs: 1000 });
    clock.now = 5000;
    c.update({ memory: 0.9 });
    clock.now = 5999;
    expect(c.update({ memory: 0.5 }).level).toBe('minimal');
    clock.now = 6000;
    expect(c.update({ memory: 0.5 })).toEqual({ level: 'reduced', changed: true });
    expect(c.since).toBe(6000);
    clock.now = 6999;
    expect(c.update({ memory: 0.5 }).level).toBe('reduced');
    clock.now = 7000;
    expect(c.update({ memory: 0.5 })).toEqual({ level: 'normal', changed: true });
  });

  test('dwell is counted from the last change, including an escalation within the bad spell', () => {
    const { c, clock } = make({ minDwellMs: 1000 });
    c.update({ memory: 0.75 }); // reduced at 0
    clock.now = 900;
    c.update({ memory: 0.9 }); // minimal at 900
    clock.now = 1500;
    expect(c.update({ memory: 0.1 }).level).toBe('minimal'); // only 600 ms at minimal
    clock.now = 1900;
    expect(c.update({ memory: 0.1 }).level).toBe('reduced');
  });

  test('minDwellMs 0: every update may step down one level, never more', () => {
    const { c } = make({ minDwellMs: 0 });
    c.update({ memory: 0.99 });
    expect(c.update({ memory: 0 }).level).toBe('minimal');
    expect(c.update({ memory: 0 }).level).toBe('reduced');
    expect(c.update({ memory: 0 }).level).toBe('normal');
  });

  describe('stepwiseRecovery: false recovers straight to the level the readings hold', () => {
    test('from emergency to normal in one change, after the dwell and below the margin', () => {
      const { c, clock, events } = make({ stepwiseRecovery: false });
      expect(c.update({ memory: 0.99 }).level).toBe('emergency');
      clock.now = 999;
      expect(c.update({ memory: 0 })).toEqual({ level: 'emergency', changed: false }); // dwell not over
      clock.now = 1000;
      expect(c.update({ memory: 0 })).toEqual({ level: 'normal', changed: true });
      expect(events.map((e) => [e.from, e.to, e.direction, e.input])).toEqual([
        ['normal', 'emergency', 'escalate', 'memory'],
        ['emergency', 'normal', 'recover', 'memory'],
      ]);
      expect(events[1]!.threshold).toBe(0.9); // emergency 0.95 - margin 0.05
      expect(c.stats()).toMatchObject({ escalations: 1, recoveries: 1 });
    });

    test('to the level a reading still holds: the margin decides, exactly at it holds the higher level', () => {
      const { c, clock } = make({ stepwiseRecovery: false, minDwellMs: 0 });
      c.update({ memory: 0.99 });
      // 0.80 is at minimal's exit threshold (0.85 - 0.05): minimal holds.
      expect(c.update({ memory: 0.8 })).toEqual({ level: 'minimal', changed: true });
      clock.now = 5;
      expect(c.update({ memory: 0.99 }).level).toBe('emergency');
      // 0.65 is at reduced's exit threshold: straight from emergency to reduced.
      expect(c.update({ memory: 0.65 })).toEqual({ level: 'reduced', changed: true });
      expect(c.update({ memory: 0.6499999 })).toEqual({ level: 'normal', changed: true });
    });

    test('the input that still holds a level drives the next change', () => {
      const { c, events } = make({ stepwiseRecovery: false, minDwellMs: 0 });
      c.update({ memory: 0.99, cpu: 0.96 }); // emergency (memory), cpu alone would be minimal
      c.update({ memory: 0, cpu: 0.96 }); // straight to minimal, held by cpu
      expect(c.level).toBe('minimal');
      c.update({ memory: 0, cpu: 0 });
      expect(c.level).toBe('normal');
      expect(events.map((e) => [e.to, e.input])).toEqual([
        ['emergency', 'memory'],
        ['minimal', 'memory'],
        ['normal', 'cpu'],
      ]);
    });

    test('the default is stepwise, and the option is reported', () => {
      expect(make().c.stepwiseRecovery).toBe(true);
      expect(make({ stepwiseRecovery: false }).c.stepwiseRecovery).toBe(false);
      const { c } = make({ stepwiseRecovery: true, minDwellMs: 0 });
      c.update({ memory: 0.99 });
      expect(c.update({ memory: 0 }).level).toBe('minimal');
    });

    test('a value that is not a boolean is refused with a typed error', () => {
      for (const bad of [0, 1, 'false', null, {}]) {
        expect(() => new DegradationController({ stepwiseRecovery: bad as never })).toThrow(
          expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
        );
      }
    });
  });

  describe('margin: a step down needs the reading below threshold - margin (at it is not enough)', () => {
    // [input, escalating reading, level reached, reading that stays, reading that recovers]
    const cases: Array<[keyof DegradationStatus, number, DegradationLevel, number, number]> = [
      ['memory', 0.72, 'reduced', 0.65, 0.6499999],
      ['memory', 0.86, 'minimal', 0.8, 0.7999999],
      ['memory', 0.96, 'emergency', 0.9, 0.8999999],
      ['cpu', 0.81, 'reduced', 0.75, 0.7499999],
      ['cpu', 0.95, 'minimal', 0.85, 0.8499999],
      ['diskAvailable', 900e6, 'reduced', 1_050_000_000, 1_050_000_001],
      ['diskAvailable', 400e6, 'minimal', 525_000_000, 525_000_001],
      ['diskAvailable', 50e6, 'emergency', 105_000_000, 105_000_001],
      ['eventLoopLagMs', 150, 'reduced', 95, 94.999],
      ['eventLoopLagMs', 600, 'minimal', 475, 474.999],
      ['psi', 12, 'reduced', 9.5, 9.499],
      ['psi', 30, 'minimal', 23.75, 23.749],
    ];
    test.each(cases)('%s: up at %d to %s; %d holds, %d steps down', (input, up, reached, holds, recovers) => {
      const { c, clock } = make();
      expect(c.update({ [input]: up }).level).toBe(reached);
      clock.now += 1_000_000;
      expect(c.update({ [input]: holds })).toEqual({ level: reached, changed: false });
      const below = DEGRADATION_LEVELS[levelIndex(reached) - 1]!;
      expect(c.update({ [input]: recovers })).toEqual({ level: below, changed: true });
    });

    test('between threshold - margin and the threshold nothing moves, however long', () => {
      const { c, clock } = make();
      c.update({ memory: 0.86 });
      for (let i = 0; i < 100; i++) {
        clock.now += 10_000;
        expect(c.update({ memory: 0.81 + (i % 4) / 100 }).changed).toBe(false);
      }
      expect(c.level).toBe('minimal');
    });

    test('a configured margin moves the recovery point', () => {
      const { c, clock } = make({ margin: { memory: 0.1 } });
      c.update({ memory: 0.86 });
      clock.now += 5000;
      expect(c.update({ memory: 0.76 }).level).toBe('minimal');
      expect(c.update({ memory: 0.75 }).level).toBe('minimal');
      expect(c.update({ memory: 0.7499 }).level).toBe('reduced');
    });

    test('margin 0 recovers just below the threshold', () => {
      const { c, clock } = make({ margin: 0 });
      c.update({ memory: 0.86 });
      clock.now += 5000;
      expect(c.update({ memory: 0.85 }).level).toBe('minimal');
      expect(c.update({ memory: 0.8499 }).level).toBe('reduced');
    });
  });

  test('every input must clear its margin: one that is still in its band holds the level', () => {
    const { c, clock, events } = make();
    c.update({ memory: 0.9, diskAvailable: 400e6 });
    expect(c.level).toBe('minimal');
    clock.now += 5000;
    c.update({ memory: 0.1 }); // disk still 400 MB
    expect(c.level).toBe('minimal');
    c.update({ diskAvailable: 520e6 }); // disk above its threshold, but inside the 5 % band
    expect(c.level).toBe('minimal');
    c.update({ diskAvailable: 600e6 });
    expect(c.level).toBe('reduced');
    // The step is reported against the input that drove the level up.
    expect(events.at(-1)).toMatchObject({ from: 'minimal', to: 'reduced', input: 'memory', value: 0.1 });
  });

  test('the input holding the next level is named in the following step', () => {
    const { c, clock, events } = make();
    c.update({ memory: 0.99, diskAvailable: 400e6 }); // emergency by memory, disk at minimal
    clock.now += 5000;
    c.update({ memory: 0.1 });
    expect(c.level).toBe('minimal');
    expect(events.at(-1)!.input).toBe('memory');
    clock.now += 5000;
    c.update({ diskAvailable: 2e9 });
    expect(c.level).toBe('reduced');
    expect(events.at(-1)).toMatchObject({ input: 'diskAvailable', value: 2e9, threshold: 525e6 });
  });
});

describe('unknown readings', () => {
  test('an absent field keeps the last reading (unknown is not zero)', () => {
    const { c, clock } = make();
    c.update({ memory: 0.9 });
    for (let i = 0; i < 10; i++) {
      clock.now += 10_000;
      c.update({ cpu: 0.1 });
      c.update({});
    }
    expect(c.level).toBe('minimal');
    expect(c.inputs).toEqual({ memory: 0.9, diskAvailable: null, cpu: 0.1, eventLoopLagMs: null, psi: null, eventLoopUtilization: null, heap: null, containerMemory: null, hostCpu: null });
  });

  test('null is unknown too: the last reading stays', () => {
    const { c, clock } = make();
    c.update({ memory: 0.9, diskAvailable: 50e6 });
    clock.now += 10_000;
    expect(c.update({ memory: null, diskAvailable: null, cpu: null, eventLoopLagMs: null, psi: null })).toEqual({
      level: 'emergency',
      changed: false,
    });
    expect(c.inputs).toMatchObject({ memory: 0.9, diskAvailable: 50e6 });
  });

  test('forget() drops a reading; recovery then follows the usual steps', () => {
    const { c, clock, events } = make();
    c.update({ memory: 0.9 });
    clock.now += 10_000;
    expect(c.forget('memory')).toEqual({ level: 'reduced', changed: true });
    expect(events.at(-1)).toMatchObject({ from: 'minimal', to: 'reduced', input: 'memory', value: null });
    expect(c.inputs.memory).toBeNull();
    expect(c.update({})).toEqual({ level: 'reduced', changed: false }); // dwell
    clock.now += 10_000;
    expect(c.update({})).toEqual({ level: 'normal', changed: true });
    expect(() => c.forget('gpu' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });

  test('with no readings at all the level is normal', () => {
    const { c } = make();
    expect(c.update({})).toEqual({ level: 'normal', changed: false });
  });
});

describe('bad readings are rejected and change nothing', () => {
  const BAD: Array<[unknown, string]> = [
    [NaN, 'ERR_OUT_OF_RANGE'],
    [-1, 'ERR_OUT_OF_RANGE'],
    [-0.0001, 'ERR_OUT_OF_RANGE'],
    [Infinity, 'ERR_OUT_OF_RANGE'],
    [-Infinity, 'ERR_OUT_OF_RANGE'],
    ['0.5', 'ERR_INVALID_ARG_TYPE'],
    [true, 'ERR_INVALID_ARG_TYPE'],
    [{}, 'ERR_INVALID_ARG_TYPE'],
    [[0.5], 'ERR_INVALID_ARG_TYPE'],
    [1n, 'ERR_INVALID_ARG_TYPE'],
  ];
  for (const input of DEGRADATION_INPUTS) {
    test.each(BAD)(`${input} = %s → %s`, (value, code) => {
      const { c, events } = make();
      c.update({ memory: 0.75, diskAvailable: 2e9, cpu: 0.1, eventLoopLagMs: 1, psi: 0 });
      const before = { level: c.level, inputs: c.inputs, stats: c.stats() };
      // A valid worse reading next to the bad one must not be stored either.
      const other = input === 'memory' ? { cpu: 0.99 } : { memory: 0.99 };
      let err: (Error & { code?: string }) | undefined;
      try {
        c.update({ ...other, [input]: value } as DegradationStatus);
      } catch (e) {
        err = e as Error & { code?: string };
      }
      expect(err).toBeDefined();
      expect(err!.code).toBe(code);
      expect(err!.message).toContain(`status.${input}`);
      expect(err).toBeInstanceOf(code === 'ERR_OUT_OF_RANGE' ? RangeError : TypeError);
      expect(c.level).toBe(before.level);
      expect(c.inputs).toEqual(before.inputs);
      expect(c.stats()).toEqual(before.stats);
      expect(events).toHaveLength(1);
    });
  }

  test('each reading is read once: a getter cannot pass the check with one value and be stored with another', () => {
    for (const input of DEGRADATION_INPUTS) {
      const { c } = make();
      const reads: Record<string, number> = {};
      const status = {};
      for (const name of DEGRADATION_INPUTS) {
        // The worst reading of each input on the first read; a bad one (or,
        // for disk, plenty) on any later read.
        const first = name === 'diskAvailable' ? 0 : name === 'eventLoopLagMs' ? 1e6 : name === 'psi' ? 100 : 1;
        Object.defineProperty(status, name, {
          enumerable: true,
          get: () => {
            reads[name] = (reads[name] ?? 0) + 1;
            if (name !== input) return null;
            return reads[name] === 1 ? first : name === 'diskAvailable' ? 1e15 : -1;
          },
        });
      }
      c.update(status as DegradationStatus);
      expect(reads).toEqual(Object.fromEntries(DEGRADATION_INPUTS.map((n) => [n, 1])));
      const stored = c.inputs[input];
      expect(stored, input).toBe(input === 'diskAvailable' ? 0 : input === 'eventLoopLagMs' ? 1e6 : input === 'psi' ? 100 : 1);
    }
  });

  test.each([null, undefined, 0.5, 'memory', true])('update(%s) is ERR_INVALID_ARG_TYPE', (status) => {
    const { c } = make();
    expect(() => c.update(status as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(c.level).toBe('normal');
  });

  test('a clock that stops returning a number fails the call before it changes anything', () => {
    type Step = [string, (c: DegradationController) => unknown];
    const steps: Step[] = [
      ['update, escalating', (c) => c.update({ memory: 0.97 })],
      ['update, recovering', (c) => c.update({ memory: 0.1, cpu: 0.1 })],
      ['forget', (c) => c.forget('cpu')],
      ['force', (c) => c.force('reduced')],
      ['reset', (c) => c.reset()],
    ];
    for (const [what, step] of steps) {
      let t: unknown = 0;
      const c = new DegradationController({ clock: () => t as number, minDwellMs: 0 });
      c.update({ memory: 0.5, cpu: 0.95 }); // minimal, held by cpu
      const before = JSON.stringify({ level: c.level, forced: c.forced, inputs: c.inputs, stats: c.stats() });
      t = 'not a number';
      expect(codeOf(() => step(c)), what).toBe('ERR_INVALID_ARG_VALUE');
      expect(JSON.stringify({ level: c.level, forced: c.forced, inputs: c.inputs, stats: c.stats() }), what).toBe(before);
    }
    // release: a forced level whose readings call for another one.
    let t: unknown = 0;
    const c = new DegradationController({ clock: () => t as number, minDwellMs: 0 });
    c.update({ memory: 0.97 });
    c.force('normal');
    const before = JSON.stringify({ level: c.level, forced: c.forced, inputs: c.inputs, stats: c.stats() });
    t = NaN;
    expect(codeOf(() => c.release())).toBe('ERR_INVALID_ARG_VALUE');
    expect(JSON.stringify({ level: c.level, forced: c.forced, inputs: c.inputs, stats: c.stats() })).toBe(before);
  });

  test('a clock that returns no number is reported, not turned into a silent NaN', () => {
    expect(() => new DegradationController({ clock: (() => 'x') as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    let t: number = 0;
    const c = new DegradationController({ clock: () => t, minDwellMs: 0 });
    t = NaN;
    expect(() => c.update({ memory: 0.99 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
});

describe('events', () => {
  test('change event: from, to, direction, input, value, threshold and the clock time', () => {
    const { c, clock, events } = make();
    clock.now = 1234;
    c.update({ diskAvailable: 80e6 });
    expect(events[0]).toEqual({
      from: 'normal',
      to: 'emergency',
      direction: 'escalate',
      input: 'diskAvailable',
      value: 80e6,
      threshold: 1e8,
      timestamp: 1234,
    });
  });

  test('an event named after the new level fires too', () => {
    const { c, clock } = make();
    const seen: string[] = [];
    for (const l of DEGRADATION_LEVELS) c.on(l, (e) => seen.push(`${l}:${e.from}`));
    c.update({ memory: 0.99 });
    clock.now += 1000;
    c.update({ memory: 0 });
    expect(seen).toEqual(['emergency:normal', 'minimal:emergency']);
  });

  test('a change made by a listener is announced after the current one, in order', () => {
    const { c, events } = make({ minDwellMs: 0 });
    const order: string[] = [];
    c.on('change', (e) => {
      order.push(`${e.from}>${e.to}`);
      if (e.to === 'emergency') c.update({ memory: 0.1 });
    });
    c.on('change', (e) => order.push(`second ${e.from}>${e.to}`));
    const r = c.update({ memory: 0.99 });
    expect(r).toEqual({ level: 'emergency', changed: true });
    expect(c.level).toBe('minimal');
    expect(order).toEqual(['normal>emergency', 'second normal>emergency', 'emergency>minimal', 'second emergency>minimal']);
    expect(events).toHaveLength(2);
    expect(c.changes).toBe(2);
  });

  test('a throwing listener: the change stands, other listeners run, the error reaches the caller', () => {
    const { c } = make();
    let second = 0;
    c.on('change', () => {
      throw new Error('listener failed');
    });
    c.on('change', () => second++);
    let once = 0;
    c.once('minimal', () => once++);
    expect(() => c.update({ memory: 0.9 })).toThrow('listener failed');
    expect(once).toBe(1);
    expect(c.listenerCount('minimal')).toBe(0);
    expect(c.level).toBe('minimal');
    expect(second).toBe(1);
    expect(c.changes).toBe(1);
    // The controller still works afterwards.
    expect(() => c.update({ memory: 0.99 })).toThrow('listener failed');
    expect(second).toBe(2);
  });
});

describe('force, release, reset', () => {
  test('force pins the level until release; readings are still recorded', () => {
    const { c, clock, events } = make();
    expect(c.force('emergency')).toEqual({ level: 'emergency', changed: true });
    expect(c.forced).toBe(true);
    expect(events[0]).toMatchObject({ from: 'normal', to: 'emergency', input: 'force', value: null, threshold: null });
    clock.now += 100_000;
    expect(c.update({ memory: 0.1 })).toEqual({ level: 'emergency', changed: false });
    expect(c.inputs.memory).toBe(0.1);
    expect(c.force('emergency')).toEqual({ level: 'emergency', changed: false });
    // Release: the readings are fine and the level was held long enough, so one step down.
    expect(c.release()).toEqual({ level: 'minimal', changed: true });
    expect(c.forced).toBe(false);
    expect(events.at(-1)).toMatchObject({ from: 'emergency', to: 'minimal', input: 'force', direction: 'recover' });
    expect(c.release()).toEqual({ level: 'minimal', changed: false });
  });

  test('force down is also pinned; release escalates at once if the readings say so', () => {
    const { c } = make();
    c.update({ memory: 0.99 });
    expect(c.force('normal')).toEqual({ level: 'normal', changed: true });
    expect(c.update({ memory: 0.99 })).toEqual({ level: 'normal', changed: false });
    expect(c.release()).toEqual({ level: 'emergency', changed: true });
  });

  test('release recovers with the dwell time counted from the force', () => {
    const { c, clock } = make({ minDwellMs: 1000 });
    clock.now = 100;
    c.force('minimal');
    clock.now = 600;
    expect(c.release()).toEqual({ level: 'minimal', changed: false });
    clock.now = 1100;
    expect(c.update({})).toEqual({ level: 'reduced', changed: true });
  });

  test('reset: back to normal, readings and force forgotten, counted as a change', () => {
    const { c, events } = make();
    c.update({ memory: 0.9 });
    c.force('emergency');
    expect(c.reset()).toEqual({ level: 'normal', changed: true });
    expect(c.forced).toBe(false);
    expect(c.inputs).toEqual({ memory: null, diskAvailable: null, cpu: null, eventLoopLagMs: null, psi: null, eventLoopUtilization: null, heap: null, containerMemory: null, hostCpu: null });
    expect(events.at(-1)).toMatchObject({ from: 'emergency', to: 'normal', input: 'reset' });
    expect(c.reset()).toEqual({ level: 'normal', changed: false });
    expect(c.changes).toBe(3);
  });

  test('force rejects a bad level without changing anything', () => {
    const { c } = make();
    for (const bad of ['Emergency', 'critical', '', 3, null, undefined]) {
      expect(() => c.force(bad as DegradationLevel)).toThrow(TypeError);
    }
    expect(c.level).toBe('normal');
    expect(c.forced).toBe(false);
  });
});

describe('actions', () => {
  test('the default table: batch factor, flush, terminate, flags', () => {
    const c = new DegradationController();
    const table = DEGRADATION_LEVELS.map((l) => {
      const a = c.actionsFor(l);
      return [a.level, a.batchSizeFactor, a.flush, a.terminate, a.flags.skipOptional, a.flags.essentialOnly];
    });
    expect(table).toEqual([
      ['normal', 1, false, false, false, false],
      ['reduced', 0.5, false, false, true, false],
      ['minimal', 0.25, true, false, true, true],
      ['emergency', 0, true, true, true, true],
    ]);
  });

  test('actions follow the level; they are frozen and shared', () => {
    const { c } = make();
    expect(c.actions).toBe(c.actionsFor('normal'));
    c.update({ memory: 0.9 });
    expect(c.actions).toBe(c.actionsFor('minimal'));
    expect(Object.isFrozen(c.actions)).toBe(true);
    expect(Object.isFrozen(c.actions.flags)).toBe(true);
  });

  test('user flags (from a level up, or listed levels) and overridden built-ins', () => {
    const c = new DegradationController({
      flags: { skipThumbnails: 'reduced', pauseImports: ['minimal'], skipOptional: 'minimal' },
      actions: { reduced: { batchSizeFactor: 0.8 }, minimal: { flush: false } },
    });
    expect(c.actionsFor('reduced')).toMatchObject({ batchSizeFactor: 0.8, flags: { skipThumbnails: true, pauseImports: false, skipOptional: false } });
    expect(c.actionsFor('minimal')).toMatchObject({ flush: false, flags: { skipThumbnails: true, pauseImports: true, skipOptional: true } });
    expect(c.actionsFor('emergency').flags).toEqual({ skipOptional: true, essentialOnly: true, skipThumbnails: true, pauseImports: false });
    expect(c.actionsFor('normal').flags.skipThumbnails).toBe(false);
  });

  test('batchSize scales by the factor, rounds down, never to 0 before emergency', () => {
    const { c, clock } = make();
    expect(c.batchSize(10_000)).toBe(10_000);
    c.update({ memory: 0.75 });
    expect(c.batchSize(10_000)).toBe(5000);
    expect(c.batchSize(1)).toBe(1);
    c.update({ memory: 0.9 });
    expect(c.batchSize(10_001)).toBe(2500);
    c.update({ memory: 0.96 });
    expect(c.batchSize(10_000)).toBe(0);
    clock.now += 1;
    expect(() => c.batchSize(-1)).toThrow(RangeError);
  });

  test.each<[unknown, string]>([
    [{ actions: { reduced: { batchSizeFactor: 1.5 } } }, 'ERR_OUT_OF_RANGE'],
    [{ actions: { reduced: { batchSizeFactor: NaN } } }, 'ERR_OUT_OF_RANGE'],
    [{ actions: { reduced: { flush: 'yes' } } }, 'ERR_INVALID_ARG_TYPE'],
    [{ actions: { severe: {} } }, 'ERR_INVALID_ARG_VALUE'],
    [{ flags: { x: 'severe' } }, 'ERR_INVALID_ARG_VALUE'],
    [{ flags: { x: ['reduced', 'nope'] } }, 'ERR_INVALID_ARG_VALUE'],
    [{ flags: { x: 3 } }, 'ERR_INVALID_ARG_TYPE'],
  ])('bad actions/flags %j → %s', (options, code) => {
    expect(() => new DegradationController(options as DegradationOptions)).toThrow(expect.objectContaining({ code }));
  });
});

describe('configuration', () => {
  test('presets: conservative degrades earlier, aggressive later', () => {
    expect(level({ memory: 0.65 }, { preset: 'conservative' })).toBe('reduced');
    expect(level({ memory: 0.65 })).toBe('normal');
    expect(level({ memory: 0.85 }, { preset: 'aggressive' })).toBe('reduced');
    expect(level({ memory: 0.97 }, { preset: 'aggressive' })).toBe('minimal');
    expect(level({ memory: 0.98 }, { preset: 'aggressive' })).toBe('emergency');
    expect(level({ diskAvailable: 1.5e9 }, { preset: 'conservative' })).toBe('reduced');
    expect(level({ diskAvailable: 500e6 }, { preset: 'conservative' })).toBe('emergency');
    expect(level({ diskAvailable: 60e6 }, { preset: 'aggressive' })).toBe('minimal');
    expect(new DegradationController({ preset: 'aggressive' }).thresholds).toEqual(DEGRADATION_PRESETS.aggressive.thresholds);
  });

  test('thresholds merge over the preset level by level; sizes may be strings', () => {
    const c = new DegradationController({
      preset: 'conservative',
      thresholds: { memory: { emergency: 0.99 }, diskAvailable: { reduced: '3GB', minimal: '1.5GB' } },
    });
    expect(c.thresholds.memory).toEqual({ reduced: 0.6, minimal: 0.75, emergency: 0.99 });
    expect(c.thresholds.diskAvailable).toEqual({ reduced: 3e9, minimal: 1.5e9, emergency: 5e8 });
  });

  test('null disables a level or a whole input; CPU can be given an emergency level', () => {
    expect(level({ cpu: 1 }, { thresholds: { cpu: null } })).toBe('normal');
    expect(level({ memory: 0.8 }, { thresholds: { memory: { reduced: null } } })).toBe('normal');
    expect(level({ memory: 0.9 }, { thresholds: { memory: { reduced: null } } })).toBe('minimal');
    expect(level({ cpu: 0.99 }, { thresholds: { cpu: { emergency: 0.98 } } })).toBe('emergency');
  });

  test('with a level disabled, escalation skips it and recovery steps through it', () => {
    const { c, clock } = make({ thresholds: { memory: { minimal: null } } });
    c.update({ memory: 0.96 });
    expect(c.level).toBe('emergency');
    clock.now += 5000;
    expect(c.update({ memory: 0.8 }).level).toBe('minimal');
    clock.now += 5000;
    expect(c.update({ memory: 0.8 }).level).toBe('reduced');
  });

  test.each<[DegradationOptions, string]>([
    [{ thresholds: { memory: { reduced: 0.9 } } }, 'ERR_OUT_OF_RANGE'], // above minimal 0.85
    [{ thresholds: { memory: { minimal: 0.95 } } }, 'ERR_OUT_OF_RANGE'], // equal to emergency
    [{ thresholds: { memory: { reduced: NaN } } }, 'ERR_OUT_OF_RANGE'],
    [{ thresholds: { memory: { reduced: Infinity } } }, 'ERR_OUT_OF_RANGE'],
    [{ thresholds: { memory: { reduced: 0 } } }, 'ERR_OUT_OF_RANGE'],
    [{ thresholds: { memory: { reduced: -0.5 } } }, 'ERR_OUT_OF_RANGE'],
    [{ thresholds: { memory: { reduced: '70%' as never } } }, 'ERR_INVALID_ARG_TYPE'],
    [{ thresholds: { diskAvailable: { reduced: 100 } } }, 'ERR_OUT_OF_RANGE'], // below minimal 500 MB
    [{ thresholds: { diskAvailable: { emergency: -1 } } }, 'ERR_OUT_OF_RANGE'],
    [{ thresholds: { diskAvailable: { emergency: '1 parsec' } } }, 'ERR_INVALID_ARG_VALUE'],
    [{ thresholds: { psi: { minimal: 101 } } }, 'ERR_OUT_OF_RANGE'],
    [{ thresholds: { gpu: {} } as never }, 'ERR_INVALID_ARG_VALUE'],
    [{ thresholds: { memory: 0.7 as never } }, 'ERR_INVALID_ARG_TYPE'],
    [{ margin: -0.01 }, 'ERR_OUT_OF_RANGE'],
    [{ margin: NaN }, 'ERR_OUT_OF_RANGE'],
    [{ margin: { memory: 0.7 } }, 'ERR_OUT_OF_RANGE'], // no memory reading could clear reduced
    [{ margin: { eventLoopLagMs: 1 } }, 'ERR_OUT_OF_RANGE'],
    [{ margin: { gpu: 0.1 } as never }, 'ERR_INVALID_ARG_VALUE'],
    [{ margin: '5%' as never }, 'ERR_INVALID_ARG_TYPE'],
    [{ minDwellMs: -1 }, 'ERR_OUT_OF_RANGE'],
    [{ minDwellMs: Infinity }, 'ERR_OUT_OF_RANGE'],
    [{ preset: 'relaxed' as never }, 'ERR_INVALID_ARG_VALUE'],
    [{ clock: 5 as never }, 'ERR_INVALID_ARG_TYPE'],
  ])('bad option %j → %s', (options, code) => {
    expect(() => new DegradationController(options)).toThrow(expect.objectContaining({ code }));
  });

  test('options must be an object', () => {
    expect(() => new DegradationController(null as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});

describe('results and helpers', () => {
  test('results are shared frozen objects: no allocation on the no-change path', () => {
    const { c } = make();
    const a = c.update({ memory: 0.5 });
    const b = c.update({ memory: 0.6 });
    expect(a).toBe(b);
    expect(Object.isFrozen(a)).toBe(true);
    expect(new DegradationController().update({ memory: 0.1 })).toBe(a);
  });

  test('levelIndex, isDegradationLevel, degraded', () => {
    expect(DEGRADATION_LEVELS.map(levelIndex)).toEqual([0, 1, 2, 3]);
    expect(isDegradationLevel('minimal')).toBe(true);
    expect(isDegradationLevel('Minimal')).toBe(false);
    const { c } = make();
    expect(c.degraded).toBe(false);
    c.update({ cpu: 0.85 });
    expect(c.degraded).toBe(true);
    expect(c.levelIndex).toBe(1);
  });
});
