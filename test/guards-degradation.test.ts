// ResourceGuard drives a DegradationController: its figures feed the level,
// level changes are re-emitted, and checkAll() refuses at emergency.
import { describe, expect, test } from 'vitest';
import { DegradationController, DegradedError, MemoryGuard, ResourceGuard, type DegradationChange } from '../src/index';

function fakeMemory(rss: { value: number }, hardLimit: number): MemoryGuard {
  return new MemoryGuard({ hardLimit, source: { rss: () => rss.value } });
}

describe('ResourceGuard and degradation', () => {
  test('stats() and checkAll() feed the controller; level events; DegradedError at emergency', () => {
    const rss = { value: 500 };
    let now = 0;
    const controller = new DegradationController({ clock: () => now, minDwellMs: 0 });
    const guard = new ResourceGuard({ memory: fakeMemory(rss, 1000), degradation: controller });
    const changes: DegradationChange[] = [];
    guard.on('level', (c) => changes.push(c));
    expect(guard.level).toBe('normal');
    expect(guard.degradation).toBe(controller);

    rss.value = 700; // 0.70: reduced
    guard.stats();
    expect(guard.level).toBe('reduced');
    rss.value = 950; // 0.95: emergency, still under the hard limit
    expect(() => guard.checkAll()).toThrow(DegradedError);
    try {
      guard.checkAll();
    } catch (e) {
      expect(e).toMatchObject({ code: 'ERR_DEGRADED', level: 'emergency' });
    }
    expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual(['normal->reduced', 'reduced->emergency']);
    expect(changes[1]!.input).toBe('memory');

    // Recovery is one step at a time once below threshold - margin.
    now += 10;
    rss.value = 100;
    expect(guard.updateLevel()).toEqual({ level: 'minimal', changed: true });
    guard.checkAll();
    guard.close();
  });

  test('degradation: false means no controller; bad option is a typed error', () => {
    const guard = new ResourceGuard({ memory: fakeMemory({ value: 990 }, 1000), degradation: false });
    expect(guard.degradation).toBeNull();
    expect(guard.level).toBe('normal');
    guard.checkAll();
    expect(() => new ResourceGuard({ degradation: 5 as unknown as boolean })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    guard.close();
  });
});
