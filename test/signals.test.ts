// The signals added beside memory, disk, CPU, lag and PSI: event-loop
// utilization, V8 heap, cgroup memory and host CPU. Each is an input of the
// controller with documented default thresholds (hit exactly here), and each
// reaches health from injected figures.
import { describe, expect, it } from 'vitest';
import { DegradationController, degradationLevelFor } from '../src/degradation';
import { healthReport, statusFromFigures, type ResourceFigures } from '../src/health';

const BASE: ResourceFigures = {
  memory: { usage: 1e8, limit: 1e9, source: 'custom' },
  disk: { path: '/d', total: 1e12, available: 5e11 },
  cpu: { load: 0.1, basis: 'process', processLoad: 0.2, cpus: 2, cpusSource: 'affinity', host: 0.99 },
  eventLoop: { lagMs: 1, meanMs: 1, maxMs: 2, utilization: 0.2 },
  psi: 0,
  heap: { used: 1e8, limit: 4e9 },
  containerMemory: { usage: 2e8, limit: 1e9 },
};

describe('default thresholds of the new inputs: exactly at belongs to the higher level', () => {
  const table: Array<[string, number, string]> = [
    ['eventLoopUtilization', 0.9 - 1e-9, 'normal'],
    ['eventLoopUtilization', 0.9, 'reduced'],
    ['eventLoopUtilization', 0.98, 'minimal'],
    ['eventLoopUtilization', 1, 'minimal'],
    ['heap', 0.7 - 1e-9, 'normal'],
    ['heap', 0.7, 'reduced'],
    ['heap', 0.85, 'minimal'],
    ['heap', 0.95, 'emergency'],
    ['containerMemory', 0.7 - 1e-9, 'normal'],
    ['containerMemory', 0.7, 'reduced'],
    ['containerMemory', 0.85, 'minimal'],
    ['containerMemory', 0.95, 'emergency'],
    ['hostCpu', 1, 'normal'], // off unless given thresholds
  ];
  it.each(table)('%s = %f → %s', (input, value, level) => {
    expect(degradationLevelFor({ [input]: value })).toBe(level);
  });

  it('host CPU judges only when given thresholds', () => {
    const opts = { thresholds: { hostCpu: { reduced: 0.8, minimal: 0.95 } } };
    expect(degradationLevelFor({ hostCpu: 0.8 - 1e-9 }, opts)).toBe('normal');
    expect(degradationLevelFor({ hostCpu: 0.8 }, opts)).toBe('reduced');
    expect(degradationLevelFor({ hostCpu: 0.95 }, opts)).toBe('minimal');
  });

  it('recovery margins are absolute for the fraction inputs', () => {
    let t = 0;
    const c = new DegradationController({ clock: () => t, minDwellMs: 0 });
    c.update({ heap: 0.7 });
    expect(c.level).toBe('reduced');
    expect(c.update({ heap: 0.65 }).level).toBe('reduced'); // 0.7 - 0.05 is still in the band
    t = 1;
    expect(c.update({ heap: 0.65 - 1e-9 }).level).toBe('normal');
  });

  it('bad readings are refused before anything changes', () => {
    const c = new DegradationController();
    expect(() => c.update({ heap: 0.5, eventLoopUtilization: -1 })).toThrow(RangeError);
    expect(() => c.update({ containerMemory: '0.5' as unknown as number })).toThrow(TypeError);
    expect(c.inputs.heap).toBeNull();
  });

  it('a threshold above 1 is refused for utilization and host CPU', () => {
    expect(() => new DegradationController({ thresholds: { eventLoopUtilization: { reduced: 1.5 } } })).toThrow(RangeError);
    expect(() => new DegradationController({ thresholds: { hostCpu: { reduced: 2 } } })).toThrow(RangeError);
  });
});

describe('the new signals in health', () => {
  it('statusFromFigures maps every signal to its input', () => {
    expect(statusFromFigures(BASE)).toEqual({
      memory: 0.1,
      diskAvailable: 5e11,
      cpu: 0.1,
      hostCpu: 0.99,
      eventLoopLagMs: 1,
      eventLoopUtilization: 0.2,
      psi: 0,
      heap: 0.025,
      containerMemory: 0.2,
    });
  });

  it('a busy host alone keeps the report healthy; the heap, cgroup memory and utilization each degrade it', () => {
    expect(healthReport({ figures: () => BASE })).toMatchObject({
      status: 'healthy',
      cpu: { load: 0.1, basis: 'process', host_load: 0.99, cpus: 2, cpus_source: 'affinity' },
      heap: { used_bytes: 1e8, limit_bytes: 4e9, percent: 2.5 },
      container_memory: { usage_bytes: 2e8, limit_bytes: 1e9, percent: 20 },
      event_loop: { utilization: 0.2 },
    });
    const heap = healthReport({ figures: () => ({ ...BASE, heap: { used: 3.8e9, limit: 4e9 } }) });
    expect([heap.status, heap.level]).toEqual(['unhealthy', 'emergency']);
    const cg = healthReport({ figures: () => ({ ...BASE, containerMemory: { usage: 8.5e8, limit: 1e9 } }) });
    expect([cg.status, cg.level]).toEqual(['degraded', 'minimal']);
    const elu = healthReport({ figures: () => ({ ...BASE, eventLoop: { ...BASE.eventLoop!, utilization: 0.9 } }) });
    expect([elu.status, elu.level]).toEqual(['degraded', 'reduced']);
  });
});
