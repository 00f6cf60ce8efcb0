// Hostile paths of ResourceGuard: rejected options take nothing, impossible
// options are refused up front, nothing escapes from its timer into the
// event loop, builder steps compose in every order, and an unreadable disk
// reads as unknown with hot and full checks agreeing.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binding } from '../src/binding';
import { DegradationController } from '../src/degradation';
import { CpuMonitor, DiskSpaceGuard, DiskSpaceUnknownError, MemoryGuard, ResourceGuard, defaultMemoryLimit } from '../src/guards';
import { liveLoopDelayWindows } from '../src/loop-delay';
import { samplerStarted } from '../src/sampler';
import { codeOf } from './helpers';

const MiB = 1024 * 1024;
const run = promisify(execFile);
const linux = process.platform === 'linux';
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-hostile-res-'));
  dirs.push(d);
  return d;
}

function openFds(): number {
  return linux ? fs.readdirSync('/proc/self/fd').length : 0;
}

function snapshot() {
  return {
    fds: openFds(),
    handles: process.getActiveResourcesInfo().length,
    samplerUsers: binding.samplerUsers(),
    samplerStarted: samplerStarted(),
    // Event-loop delay windows (what a CpuMonitor opens) not closed.
    histograms: liveLoopDelayWindows(),
  };
}

describe('ResourceGuard: a rejected construction takes nothing (runs first in this file)', () => {
  it('1,000 rejected constructions leave fds, handles, sampler users and CPU monitors as they were', () => {
    const dir = tempDir();
    const before = snapshot();
    expect(before.samplerStarted).toBe(false); // nothing in this process has started it yet
    const bad: Array<[string, () => unknown]> = [
      ['degradation', () => new ResourceGuard({ cpu: true, disk: dir, degradation: { preset: 'nope' as never } })],
      ['degradation type', () => new ResourceGuard({ cpu: { highThreshold: 0.5 }, degradation: 42 as never })],
      ['cpu after memory', () => new ResourceGuard({ memory: { hardLimit: '1GiB' }, cpu: { highThreshold: 2 } })],
      ['disk after cpu', () => new ResourceGuard({ cpu: true, disk: { path: dir, minFree: -1 } })],
      ['memory after cpu', () => new ResourceGuard({ cpu: true, memory: { hardLimit: 'lots' } })],
      ['memory order', () => new ResourceGuard({ cpu: true, memory: { hardLimit: 100, softLimit: 200 } })],
      ['hard limit 0', () => new ResourceGuard({ cpu: true, disk: dir, memory: { hardLimit: 0 } })],
      ['unknown option type', () => new ResourceGuard({ cpu: true, memory: 'yes' as never })],
    ];
    for (let i = 0; i < 1000; i++) {
      const [name, make] = bad[i % bad.length]!;
      const code = codeOf(make);
      expect(code, name).toMatch(/^ERR_/);
    }
    expect(snapshot()).toEqual(before);
  });

  it('a rejected builder step changes nothing and takes nothing', () => {
    const guard = new ResourceGuard({ memory: false, degradation: false });
    const before = snapshot();
    for (let i = 0; i < 200; i++) {
      expect(codeOf(() => guard.withCpuMonitoring({ criticalThreshold: 3 }))).toBe('ERR_OUT_OF_RANGE');
      expect(codeOf(() => guard.withMemoryLimit(0))).toBe('ERR_OUT_OF_RANGE');
      expect(codeOf(() => guard.withDisk({ minFree: 'x' }))).toBe('ERR_INVALID_ARG_VALUE');
      expect(codeOf(() => guard.withDegradation({ minDwellMs: -1 }))).toBe('ERR_OUT_OF_RANGE');
    }
    expect(snapshot()).toEqual(before);
    expect(guard.memory).toBeNull();
    expect(guard.cpu).toBeNull();
    expect(guard.disk).toBeNull();
    expect(guard.degradation).toBeNull();
    guard.close();
  });
});

describe('ResourceGuard: close() gives back what the guards it made hold', () => {
  it('the sampler holds of its memory guards (made, or replaced by a builder step) go back; a given guard stays open', () => {
    const before = binding.samplerUsers();
    for (let i = 0; i < 100; i++) {
      const g = new ResourceGuard({ memory: { hardLimit: '1GiB' }, degradation: false });
      g.withMemory({ growthRateThreshold: 1e6 }); // replaces the memory guard it made
      g.close();
    }
    expect(binding.samplerUsers()).toBe(before);
    const given = new MemoryGuard({ hardLimit: '1GiB' });
    const g = new ResourceGuard({ memory: given });
    g.close();
    expect(given.closed).toBe(false);
    expect(given.ok()).toBe(true);
    given.close();
    expect(binding.samplerUsers()).toBe(before);
  });

  it('a closed MemoryGuard passed in is refused (ERR_GUARD_CLOSED)', () => {
    const m = new MemoryGuard({ hardLimit: '1GiB' });
    m.close();
    expect(codeOf(() => new ResourceGuard({ memory: m }))).toBe('ERR_GUARD_CLOSED');
    const g = new ResourceGuard({ memory: false });
    expect(codeOf(() => g.withMemory(m))).toBe('ERR_GUARD_CLOSED');
    expect(g.memory).toBeNull();
    g.close();
  });
});

describe('ResourceGuard: a rejected construction takes nothing', () => {
  it('bad CPU options beside a custom CPU source are refused before the memory guard holds the sampler', () => {
    const before = binding.samplerUsers();
    const bad: Array<[unknown, string]> = [
      [{ source: { system: () => 0.2 }, highThreshold: 1.5 }, 'ERR_OUT_OF_RANGE'],
      [{ source: { system: 5 } }, 'ERR_INVALID_ARG_TYPE'],
      [{ source: { system: () => 0.2 }, criticalThreshold: 0.1, highThreshold: 0.5 }, 'ERR_OUT_OF_RANGE'],
    ];
    for (const [cpu, code] of bad) {
      expect(codeOf(() => new ResourceGuard({ memory: { hardLimit: '1GiB' }, cpu: cpu as never }))).toBe(code);
      expect(binding.samplerUsers()).toBe(before);
    }
  });
});

describe('ResourceGuard.fromEnv', () => {
  it('keeps the degradation choice of its defaults (false, options, or a controller)', () => {
    const off = ResourceGuard.fromEnv({}, { degradation: false });
    expect(off.degradation).toBeNull();
    off.close();
    const mine = new DegradationController();
    const given = ResourceGuard.fromEnv({}, { degradation: mine });
    expect(given.degradation).toBe(mine);
    given.close();
    const tuned = ResourceGuard.fromEnv({}, { degradation: { minDwellMs: 5 } });
    expect(tuned.degradation!.minDwellMs).toBe(5);
    tuned.close();
  });
});

describe('ResourceGuard: impossible options are refused up front', () => {
  it('memory.hardLimit 0 is a RangeError (ERR_OUT_OF_RANGE), as is a given MemoryGuard with a 0 limit', () => {
    const err = (() => {
      try {
        new ResourceGuard({ memory: { hardLimit: 0 } });
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(RangeError);
    expect((err as { code: string }).code).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new ResourceGuard({ memory: { hardLimit: '0MiB' } }))).toBe('ERR_OUT_OF_RANGE');
    const zero = new MemoryGuard({ hardLimit: 1 });
    let accepted = true;
    try {
      zero.setLimits({ hardLimit: 0 });
    } catch {
      accepted = false; // the memory guard refuses it itself
    }
    if (accepted) expect(codeOf(() => new ResourceGuard({ memory: zero }))).toBe('ERR_OUT_OF_RANGE');
  });

  it('a closed DiskSpaceGuard is refused (ERR_GUARD_CLOSED)', () => {
    const d = new DiskSpaceGuard({ path: os.tmpdir() });
    d.close();
    expect(codeOf(() => new ResourceGuard({ disk: d }))).toBe('ERR_GUARD_CLOSED');
  });

  it('stats() never throws when the memory limit later becomes 0', () => {
    const guard = new ResourceGuard({ memory: { hardLimit: '1GiB' } });
    let accepted = true;
    try {
      guard.memory!.setLimits({ hardLimit: 0 });
    } catch {
      accepted = false;
    }
    if (accepted) {
      const s = guard.stats();
      expect(Number.isFinite(s.memoryUsage)).toBe(true);
      expect(s.memoryUsage!).toBeGreaterThan(1);
      expect(guard.level).toBe('emergency');
    }
    guard.close();
  });
});

describe('ResourceGuard: unreadable CPU and event-loop figures read as null, and stats() does not throw', () => {
  it('a CPU source that returns NaN everywhere', () => {
    const cpu = new CpuMonitor({
      source: { system: () => NaN, process: () => NaN, eventLoop: () => ({ lagMs: NaN, utilization: NaN }) },
    });
    const guard = new ResourceGuard({ memory: false, cpu });
    const s = guard.stats();
    expect(s.cpuLoad).toBeNull();
    expect(s.eventLoopLagMs).toBeNull();
    expect(s.eventLoopUtilization).toBeNull();
    expect(() => guard.checkAll()).not.toThrow(); // CPU fails open: unknown load changes no state
    expect(guard.ok()).toBe(true);
    guard.close();
    cpu.close();
  });

  it('ok() is false at the emergency level, where checkAll() throws', () => {
    const guard = new ResourceGuard({ memory: false });
    expect(guard.ok()).toBe(true);
    guard.degradation!.force('emergency');
    expect(guard.ok()).toBe(false);
    expect(codeOf(() => guard.checkAll())).toBe('ERR_DEGRADED');
    guard.close();
  });
});

describe('ResourceGuard: nothing thrown from its timer reaches the event loop (child process, against dist/)', () => {
  beforeAll(() => {
    const src = path.join(__dirname, '..', 'src', 'guards', 'resource.ts');
    const out = path.join(__dirname, '..', 'dist', 'guards', 'resource.js');
    if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(src).mtimeMs) {
      throw new Error('dist/guards/resource.js is missing or older than src/guards/resource.ts: run `npm run build:ts` first');
    }
  });

  it("reports through 'error', else one process warning; the process survives", async () => {
    const script = `
      const { ResourceGuard } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'guards', 'index.js'))});
      const out = { uncaught: 0, warnings: [], errors: 0, ticksA: 0, ticksB: 0, zeroLimit: null };
      process.on('uncaughtException', () => { out.uncaught++; });
      process.on('warning', (w) => out.warnings.push(w.code || w.name));
      // A: a 'stats' listener that throws, and nobody listens for 'error'
      const a = new ResourceGuard({ memory: { hardLimit: '1GiB' } });
      a.on('stats', () => { out.ticksA++; throw new Error('listener failed'); });
      a.watch(2);
      // B: the memory limit set to 0 behind the guard's back, with an 'error' listener
      const b = new ResourceGuard({ memory: { hardLimit: '1GiB' } });
      try { b.memory.setLimits({ hardLimit: 0 }); out.zeroLimit = true; } catch { out.zeroLimit = false; }
      b.on('stats', () => { out.ticksB++; if (out.ticksB % 2) throw new Error('odd tick'); });
      b.on('error', () => { out.errors++; });
      b.watch(2);
      const deadline = Date.now() + 30000;
      const poll = setInterval(() => {
        if ((out.ticksA >= 5 && out.ticksB >= 6) || Date.now() > deadline) {
          clearInterval(poll);
          a.close(); b.close();
          setImmediate(() => console.log(JSON.stringify(out)));
        }
      }, 5);`;
    const { stdout } = await run(process.execPath, ['-e', script], { timeout: 60_000 });
    const out = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(out.uncaught).toBe(0);
    expect(out.ticksA).toBeGreaterThanOrEqual(5);
    expect(out.ticksB).toBeGreaterThanOrEqual(6);
    expect(out.errors).toBeGreaterThanOrEqual(3);
    // one warning for guard A however many ticks failed; B had a listener
    expect(out.warnings.filter((c: string) => c === 'RESOURCE_GUARD_WATCH_ERROR')).toHaveLength(1);
  });
});

describe('ResourceGuard: builder steps compose in every order', () => {
  const a = tempDir();
  const b = tempDir();
  const c = tempDir();
  type Model = {
    path?: string;
    minFree?: number;
    softFree?: number;
    reserve?: number;
    hard?: number;
    soft?: number;
    growth?: number;
    high?: number;
    delay?: number;
    dwell?: number;
    preset?: string;
  };
  type Step = { name: string; apply: (g: ResourceGuard) => unknown; model: (m: Model) => void };
  const steps: Step[] = [
    { name: 'withOutputPath(a)', apply: (g) => g.withOutputPath(a), model: (m) => void (m.path = a) },
    { name: 'withDisk({minFree})', apply: (g) => g.withDisk({ minFree: 12345 }), model: (m) => void (m.minFree = 12345) },
    {
      name: 'withOutputPath(b, {reserve})',
      apply: (g) => g.withOutputPath(b, { reserve: 777 }),
      model: (m) => void ((m.path = b), (m.reserve = 777)),
    },
    { name: 'withDisk(c)', apply: (g) => g.withDisk(c), model: (m) => void (m.path = c) },
    { name: 'withDisk({softFree})', apply: (g) => g.withDisk({ softFree: 200 * MiB }), model: (m) => void (m.softFree = 200 * MiB) },
    { name: 'withMemoryLimit(900MiB)', apply: (g) => g.withMemoryLimit('900MiB'), model: (m) => void (m.hard = 900 * MiB) },
    {
      name: 'withMemoryLimit(800MiB, 700MiB)',
      apply: (g) => g.withMemoryLimit('800MiB', '700MiB'),
      model: (m) => void ((m.hard = 800 * MiB), (m.soft = 700 * MiB)),
    },
    {
      name: 'withMemory({growthRateThreshold})',
      apply: (g) => g.withMemory({ growthRateThreshold: 5_000_000 }),
      model: (m) => void (m.growth = 5_000_000),
    },
    {
      name: 'withCpuMonitoring({highThreshold})',
      apply: (g) => g.withCpuMonitoring({ highThreshold: 0.5 }),
      model: (m) => void (m.high = 0.5),
    },
    {
      name: 'withCpuMonitoring({throttleDelayMs})',
      apply: (g) => g.withCpuMonitoring({ throttleDelayMs: 7 }),
      model: (m) => void (m.delay = 7),
    },
    { name: 'withDegradation({minDwellMs})', apply: (g) => g.withDegradation({ minDwellMs: 1234 }), model: (m) => void (m.dwell = 1234) },
    {
      name: 'withDegradation({preset})',
      apply: (g) => g.withDegradation({ preset: 'conservative' }),
      model: (m) => void (m.preset = 'conservative'),
    },
  ];

  function verify(g: ResourceGuard, m: Model, label: string): void {
    const diskTouched = m.path !== undefined || m.minFree !== undefined || m.softFree !== undefined || m.reserve !== undefined;
    if (diskTouched) {
      const d = g.disk!;
      expect(d, label).not.toBeNull();
      expect(d.path, label).toBe(m.path ?? process.cwd());
      const minFree = m.minFree ?? 100 * MiB;
      expect(d.limits.minFree, label).toBe(minFree);
      expect(d.limits.softFree, label).toBe(m.softFree ?? minFree * 5);
      expect(d.limits.reserve, label).toBe(m.reserve ?? 0);
    } else {
      expect(g.disk, label).toBeNull();
    }
    const mem = g.memory!.limits;
    const hard = m.hard ?? defaultMemoryLimit();
    expect(mem.hardLimit, label).toBe(hard);
    expect(mem.softLimit, label).toBe(m.soft ?? Math.floor(hard * 0.8));
    expect(mem.growthRateThreshold, label).toBe(m.growth ?? 100_000_000);
    if (m.high !== undefined || m.delay !== undefined) {
      const t = g.cpu!.thresholds;
      expect(t.high, label).toBe(m.high ?? 0.85);
      expect(t.throttleDelayMs, label).toBe(m.delay ?? 50);
    } else {
      expect(g.cpu, label).toBeNull();
    }
    const ctl = g.degradation!;
    expect(ctl.minDwellMs, label).toBe(m.dwell ?? (m.preset === undefined ? 1000 : new DegradationController({ preset: 'conservative' }).minDwellMs));
    const reduced = new DegradationController({ preset: (m.preset ?? 'default') as 'default' }).thresholds.memory.reduced;
    expect(ctl.thresholds.memory.reduced, label).toBe(reduced);
  }

  it('every ordered pair of steps keeps what the first named unless the second names it', () => {
    for (const s1 of steps) {
      for (const s2 of steps) {
        const g = new ResourceGuard();
        const m: Model = {};
        s1.apply(g);
        s1.model(m);
        s2.apply(g);
        s2.model(m);
        verify(g, m, `${s1.name} then ${s2.name}`);
        g.close();
      }
    }
  });

  it('every order of a six-step chain ends in the same guard', () => {
    const chain = [steps[0]!, steps[1]!, steps[2]!, steps[4]!, steps[5]!, steps[8]!];
    const perms: Step[][] = [];
    const permute = (rest: Step[], acc: Step[]) => {
      if (rest.length === 0) perms.push(acc);
      rest.forEach((s, i) => permute([...rest.slice(0, i), ...rest.slice(i + 1)], [...acc, s]));
    };
    permute(chain, []);
    expect(perms).toHaveLength(720);
    for (const order of perms) {
      const g = new ResourceGuard();
      const m: Model = {};
      for (const s of order) {
        s.apply(g);
        s.model(m);
      }
      verify(g, m, order.map((s) => s.name).join(' → '));
      g.close();
    }
  });

  it('the chain of the issue: withOutputPath(dir).withDisk({ minFree }) keeps dir', () => {
    const g = new ResourceGuard().withOutputPath(a).withDisk({ minFree: '1MiB' });
    expect(g.disk!.path).toBe(a);
    expect(g.disk!.limits.minFree).toBe(MiB);
    g.close();
  });

  it('a step over a guard the caller gave keeps that guard’s settings and leaves it open', () => {
    const given = new DiskSpaceGuard({ path: a, minFree: 4321, reserve: 5 });
    const g = new ResourceGuard({ disk: given }).withDisk({ softFree: 200 * MiB });
    expect(g.disk).not.toBe(given);
    expect(g.disk!.path).toBe(a);
    expect(g.disk!.limits).toMatchObject({ minFree: 4321, softFree: 200 * MiB, reserve: 5 });
    expect(given.closed).toBe(false);
    g.close();
    given.close();
    const cpu = new CpuMonitor({ highThreshold: 0.4, criticalThreshold: 0.6 });
    const g2 = new ResourceGuard({ cpu }).withCpuMonitoring({ throttleDelayMs: 9 });
    expect(g2.cpu!.thresholds).toMatchObject({ high: 0.4, critical: 0.6, throttleDelayMs: 9 });
    g2.close();
    cpu.close();
  });
});

describe.runIf(linux)('ResourceGuard: an unreadable disk reads as unknown; hot and full checks agree', () => {
  it('after the output directory is removed: stats() says null, checkAll() throws, ok() says false', () => {
    const dir = tempDir();
    let now = 0;
    const disk = new DiskSpaceGuard({ path: dir, minFree: 1, refreshMs: 100, clock: () => now });
    const guard = new ResourceGuard({ memory: false, degradation: false, disk });
    expect(guard.ok()).toBe(true);
    expect(guard.stats().diskAvailable).toBeGreaterThan(0);
    fs.rmdirSync(dir);
    const s = guard.stats();
    expect(s.diskAvailable).toBeNull();
    expect(s.diskAvailableMB).toBeNull();
    expect(() => guard.checkAll()).toThrow(DiskSpaceUnknownError);
    now += 100;
    let ok = true;
    for (let i = 0; i < 5000 && ok; i++) ok = guard.ok();
    expect(ok).toBe(false);
    guard.close();
    disk.close();
  });

  it('a closed ResourceGuard refuses to answer (ERR_GUARD_CLOSED) rather than say ok', () => {
    const guard = new ResourceGuard({ disk: tempDir() });
    guard.close();
    guard.close();
    expect(codeOf(() => guard.ok())).toBe('ERR_GUARD_CLOSED');
    expect(codeOf(() => guard.checkAll())).toBe('ERR_GUARD_CLOSED');
    expect(codeOf(() => guard.stats())).toBe('ERR_GUARD_CLOSED');
    expect(codeOf(() => guard.watch(10))).toBe('ERR_GUARD_CLOSED');
    expect(codeOf(() => guard.withOutputPath(os.tmpdir()))).toBe('ERR_GUARD_CLOSED');
  });
});

describe('docs/failure-semantics-disk.md: its example runs (against dist/)', () => {
  it('every js block runs and prints only true', async () => {
    const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'failure-semantics-disk.md'), 'utf8');
    const blocks = [...doc.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThan(0);
    const entry = JSON.stringify(path.join(__dirname, '..', 'dist', 'index.js'));
    for (const block of blocks) {
      const script = block.replace(/require\('resource-guard'\)/g, `require(${entry})`);
      const { stdout } = await run(process.execPath, ['-e', script], { timeout: 60_000 });
      expect(stdout.trim().split(/\s+/).every((w) => w === 'true'), stdout).toBe(true);
    }
  });
});
