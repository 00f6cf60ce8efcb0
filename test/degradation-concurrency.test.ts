// Many async tasks driving one controller, interleaved at every kind of
// suspension point (microtask, immediate, timer), with listeners that drive
// it too: the change counter must equal the number of `changed: true`
// results, and every change must be announced exactly once, in order.
import { describe, expect, test } from 'vitest';
import { rng } from './helpers';
import { setImmediate as immediate, setTimeout as sleep } from 'node:timers/promises';
import {
  DEGRADATION_LEVELS,
  DegradationController,
  type DegradationChange,
  type DegradationResult,
} from '../src/degradation';


describe('concurrent update() from async tasks', () => {
  test('200 tasks × 250 updates: changes === changed results === events, transitions chain', async () => {
    let now = 0;
    const c = new DegradationController({ clock: () => now, minDwellMs: 50 });
    const events: DegradationChange[] = [];
    c.on('change', (e) => events.push(e));
    // A listener that reacts to emergency by feeding a reading back in, and
    // whose own results must be counted too.
    const results: DegradationResult[] = [];
    c.on('emergency', () => {
      results.push(c.update({ cpu: 0.1 }));
    });

    const task = async (seed: number) => {
      const r = rng(seed);
      for (let i = 0; i < 250; i++) {
        now += r() * 40;
        const pick = r();
        const status =
          pick < 0.4
            ? { memory: r() }
            : pick < 0.6
              ? { diskAvailable: r() * 2e9 }
              : pick < 0.8
                ? { cpu: r() }
                : { memory: r() * 0.7, diskAvailable: 2e9 + r() * 1e9, cpu: r() * 0.5 };
        results.push(c.update(status));
        const wait = r();
        if (wait < 0.5) await Promise.resolve();
        else if (wait < 0.8) await immediate();
        else if (wait < 0.95) await sleep(0);
        else {
          // A burst of force/release from the same task.
          if (r() < 0.5) results.push(c.force(DEGRADATION_LEVELS[Math.floor(r() * 4)]!));
          else results.push(c.release());
        }
      }
    };
    await Promise.all(Array.from({ length: 200 }, (_, k) => task(k + 1)));
    results.push(c.release());

    const changedResults = results.filter((r) => r.changed).length;
    expect(changedResults).toBeGreaterThan(100); // the run did exercise transitions
    expect(c.changes).toBe(changedResults);
    expect(events).toHaveLength(changedResults);
    const s = c.stats();
    expect(s.escalations + s.recoveries).toBe(s.changes);
    // Events chain: each starts where the previous ended, and the last one
    // ends at the current level.
    for (let i = 1; i < events.length; i++) expect(events[i]!.from).toBe(events[i - 1]!.to);
    expect(events.at(-1)!.to).toBe(c.level);
    // Recoveries never skip a level unless forced.
    for (const e of events) {
      if (e.direction === 'recover' && e.input !== 'force') {
        expect(DEGRADATION_LEVELS.indexOf(e.from) - DEGRADATION_LEVELS.indexOf(e.to)).toBe(1);
      }
    }
  });
});
