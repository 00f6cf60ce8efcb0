// Hysteresis against a signal that oscillates around a threshold: with the
// default settings the level goes up once and does not come back until the
// signal falls below threshold - margin. The same signal against a
// controller with neither margin nor dwell time flaps on every sample, which
// shows the assertions can fail.
import { describe, expect, test } from 'vitest';
import { rng } from './helpers';
import { DegradationController, type DegradationChange, type DegradationOptions } from '../src/degradation';


function run(options: DegradationOptions, signal: (i: number) => number, count: number, stepMs: number) {
  let now = 0;
  const c = new DegradationController({ clock: () => now, ...options });
  // Settle at 'reduced', the level just below the 0.85 threshold.
  c.update({ memory: 0.75 });
  const events: DegradationChange[] = [];
  c.on('change', (e) => events.push(e));
  let changed = 0;
  for (let i = 0; i < count; i++) {
    now += stepMs;
    if (c.update({ memory: signal(i) }).changed) changed++;
  }
  return { c, events, changed, advance: (ms: number) => (now += ms) };
}

const alternating = (i: number) => (i % 2 === 0 ? 0.84 : 0.86);

describe('memory oscillating ±0.01 around 0.85 for 1000 updates (default settings)', () => {
  // 100 ms per update: the dwell time (1 s) is passed many times over, so
  // only the margin keeps the level steady.
  for (const [name, signal] of [
    ['alternating 0.84 / 0.86', alternating],
    ['uniform noise in [0.84, 0.86]', ((r) => () => 0.84 + r() * 0.02)(rng(0x5eed))],
    ['sine of amplitude 0.01', (i: number) => 0.85 + 0.01 * Math.sin(i / 3)],
  ] as const) {
    test(`${name}: one transition up, none back`, () => {
      const { c, events, changed } = run({}, signal, 1000, 100);
      const ups = events.filter((e) => e.direction === 'escalate');
      const downs = events.filter((e) => e.direction === 'recover');
      expect(ups.length).toBeLessThanOrEqual(1);
      expect(downs).toHaveLength(0);
      expect(ups[0]).toMatchObject({ from: 'reduced', to: 'minimal', input: 'memory' });
      expect(changed).toBe(events.length);
      expect(c.level).toBe('minimal');
    });
  }

  test('starting from normal, the first sample above 0.85 is the only change', () => {
    let now = 0;
    const c = new DegradationController({ clock: () => now });
    let changes = 0;
    for (let i = 0; i < 1000; i++) {
      now += 100;
      if (c.update({ memory: i % 2 === 0 ? 0.86 : 0.84 }).changed) changes++;
    }
    expect(changes).toBe(1);
    expect(c.level).toBe('minimal');
  });

  test('the level comes back only once the signal falls below 0.80 (at 0.80 it stays)', () => {
    const { c, events, advance } = run({}, alternating, 1000, 100);
    for (const x of [0.83, 0.82, 0.81, 0.8, 0.8]) {
      advance(5000);
      expect(c.update({ memory: x }).level).toBe('minimal');
    }
    advance(5000);
    expect(c.update({ memory: 0.79 })).toEqual({ level: 'reduced', changed: true });
    expect(events.filter((e) => e.direction === 'recover')).toHaveLength(1);
  });

  test('the margin alone holds even when every update is past the dwell time', () => {
    const { events } = run({}, alternating, 1000, 60_000);
    expect(events).toHaveLength(1);
  });

  test('the dwell time alone bounds the flapping rate when the margin is 0', () => {
    // 100 ms per update, 1 s dwell: at most one step down per second (10 updates).
    const { events } = run({ margin: 0 }, alternating, 1000, 100);
    const downs = events.filter((e) => e.direction === 'recover').length;
    expect(downs).toBeGreaterThan(0);
    expect(downs).toBeLessThanOrEqual(100);
  });

  test('without margin and dwell the same signal flaps on every sample', () => {
    const { events } = run({ margin: 0, minDwellMs: 0 }, alternating, 1000, 100);
    expect(events.length).toBeGreaterThanOrEqual(999);
  });
});
