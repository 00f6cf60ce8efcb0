// The CPU rule on real processes: busy neighbours do not make an idle
// process unhealthy, and inside a real cgroup with a CPU quota and a memory
// limit, health and degradation judge against the quota and the limit.
//
// Assertions are on the measured process's own figures (its CPU time, the
// quota and limit read back), never on how long anything took.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseMemoryStat, resolveMemoryStat, workingSet } from '../src/container-memory';
import { CpuUsageTracker, resolveCgroupCpu } from '../src/cpu-usage';

const CHILD = path.resolve(__dirname, 'fixtures/cpu-health-child.cjs');

interface ChildResult {
  figures: { cpu: { load: number; basis: string; cpus: number; cpusSource: string; host: number | null; processLoad: number }; memory: { usage: number; limit: number; source: string }; containerMemory: { usage: number; limit: number; current: number } | null };
  reading: { load: number; basis: string; cores: number; processCores: number; cpus: number; cpusSource: string; quota: number | null };
  cpuLevel: string;
  report: { status: string; level: string; cpu: { basis: string; load: number; host_load: number | null; cpus: number }; memory: { limit_bytes: number; source: string }; container_memory: { limit_bytes: number } | null };
  inputs: Record<string, number | null>;
  ownCpuUs: number;
  monitor: { basis: string; load: number; cpus: number; system: number; quota: number | null };
  guard: { cpuLoad: number | null; basis: string; cpus: number };
}

function run(cmd: string, args: string[]): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`child exited ${code}: ${err}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1)!) as ChildResult);
    });
  });
}

function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, USER_HZ 100
}

const neighbours: ChildProcess[] = [];
afterAll(() => {
  for (const n of neighbours) n.kill('SIGKILL');
});

const linux = process.platform === 'linux';

describe('busy neighbours', () => {
  // In a container without a quota the CPU rule counts the whole container,
  // and neighbours started here would be in it; the rule then (rightly)
  // counts them. This test is about a process whose CPU basis is its own.
  const ownBasis = !linux || resolveCgroupCpu().file === null;

  it.runIf(ownBasis)('two CPU-bound neighbours leave an idle process healthy / normal', async () => {
    for (let i = 0; i < 2; i++) {
      const n = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
      neighbours.push(n);
    }
    const r = await run(process.execPath, [CHILD]);
    const burnt = linux ? neighbours.map((n) => procCpuSeconds(n.pid!)) : [];
    for (const n of neighbours) n.kill('SIGKILL');

    // Its own figures: the CPU basis is its own process, and its load is
    // its own CPU time against the CPUs it may use.
    expect(r.figures.cpu.basis).toBe('process');
    expect(r.reading.cores).toBe(r.reading.processCores);
    expect(r.figures.cpu.load).toBeCloseTo(Math.min(1, r.reading.processCores / r.reading.cpus), 1);
    expect(r.figures.cpu.load).toBeLessThan(0.8);
    // The CPU input is normal and the report (disk and event-loop inputs
    // switched off: they depend on the machine, not on this rule) is healthy.
    expect(r.cpuLevel).toBe('normal');
    expect(r.report).toMatchObject({ status: 'healthy', level: 'normal' });
    expect(r.inputs.cpu).toBe(r.figures.cpu.load);
    // The host's load is reported beside it, as a separate input.
    expect(r.report.cpu.host_load).not.toBeNull();
    expect(r.inputs.hostCpu).toBe(r.figures.cpu.host);
    // CpuMonitor and ResourceGuard judge by the same rule.
    expect(r.monitor).toMatchObject({ basis: 'process', cpus: r.reading.cpus, high: false, throttling: false });
    expect(r.monitor.load).toBeLessThan(0.8);
    expect(r.guard.basis).toBe('process');
    expect(r.guard.cpuLoad).toBeLessThan(0.8);
    if (linux) expect(burnt.every((s) => s > 0)).toBe(true);
  }, 60_000);
});

// ---- a real cgroup ------------------------------------------------------------------

interface CgroupSetup {
  version: 1 | 2;
  dirs: string[];
  enter: string[]; // cgroup.procs files to write the child's pid into
}

/** What this machine allows: a writable cgroup v2 with cpu+memory, or v1 cpu, cpuacct and memory hierarchies. */
function cgroupSupport(): { ok: true; make: (name: string) => CgroupSetup } | { ok: false; reason: string } {
  if (!linux) return { ok: false, reason: 'not Linux' };
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { ok: false, reason: 'not running as root' };
  const v2 = '/sys/fs/cgroup';
  if (existsSync(`${v2}/cgroup.controllers`)) {
    const ctrls = readFileSync(`${v2}/cgroup.controllers`, 'utf8').split(/\s+/);
    if (!ctrls.includes('cpu') || !ctrls.includes('memory')) return { ok: false, reason: 'cgroup v2 without cpu and memory controllers' };
    return {
      ok: true,
      make: (name) => {
        const dir = `${v2}/${name}`;
        mkdirSync(dir);
        writeFileSync(`${dir}/cpu.max`, '50000 100000');
        writeFileSync(`${dir}/memory.max`, String(512 * 1024 * 1024));
        return { version: 2, dirs: [dir], enter: [`${dir}/cgroup.procs`] };
      },
    };
  }
  const cpu = `${v2}/cpu`;
  const acct = `${v2}/cpuacct`;
  const mem = `${v2}/memory`;
  if (!existsSync(`${cpu}/cpu.cfs_quota_us`) || !existsSync(`${mem}/memory.limit_in_bytes`)) {
    return { ok: false, reason: 'no cgroup v2 with controllers and no separate v1 cpu and memory hierarchies at /sys/fs/cgroup' };
  }
  return {
    ok: true,
    make: (name) => {
      const dirs = [`${cpu}/${name}`, `${mem}/${name}`];
      if (existsSync(`${acct}/cpuacct.usage`)) dirs.push(`${acct}/${name}`);
      for (const d of dirs) mkdirSync(d);
      writeFileSync(`${cpu}/${name}/cpu.cfs_period_us`, '100000');
      writeFileSync(`${cpu}/${name}/cpu.cfs_quota_us`, '50000');
      writeFileSync(`${mem}/${name}/memory.limit_in_bytes`, String(512 * 1024 * 1024));
      return { version: 1, dirs, enter: dirs.map((d) => `${d}/cgroup.procs`) };
    },
  };
}

function probe(): { ok: true; make: (name: string) => CgroupSetup } | { ok: false; reason: string } {
  const s = cgroupSupport();
  if (!s.ok) return s;
  // Check that creating one is really allowed (a read-only cgroupfs refuses mkdir).
  const name = `rg-probe-${process.pid}`;
  try {
    const setup = s.make(name);
    for (const d of setup.dirs.reverse()) rmdirSync(d);
    return s;
  } catch (err) {
    return { ok: false, reason: `cannot create a cgroup here: ${(err as Error).message}` };
  }
}

const support = probe();
if (!support.ok) console.log(`[cpu-container] real cgroup test skipped: ${support.reason}`);

describe('inside a real cgroup (0.5 CPU, 512 MiB)', () => {
  it.runIf(support.ok)('health and degradation judge CPU against the quota and memory against the cgroup limit', async () => {
    if (!support.ok) return;
    const name = `rg-test-${process.pid}`;
    const setup = support.make(name);
    try {
      // The shell moves itself into the cgroup, then becomes the node child.
      const enter = setup.enter.map((f) => `echo $$ > ${f}`).join(' && ');
      const r = await run('/bin/sh', ['-c', `${enter} && exec "${process.execPath}" "${CHILD}" burn`]);
      const limit = 512 * 1024 * 1024;

      // CPU: the quota is the CPUs it may use, the container's CPU time is counted.
      expect(r.reading).toMatchObject({ quota: 0.5, cpus: 0.5, cpusSource: 'quota', basis: 'container' });
      expect(r.reading.load).toBeCloseTo(Math.min(1, r.reading.cores / 0.5), 9);
      expect(r.report.cpu).toMatchObject({ basis: 'container', cpus: 0.5 });
      // Memory: the cgroup limit, for RSS and for the cgroup's own counter.
      expect(r.figures.memory).toMatchObject({ limit, source: 'cgroup' });
      expect(r.report.memory).toMatchObject({ limit_bytes: limit, source: 'cgroup' });
      expect(r.figures.containerMemory!.limit).toBe(limit);
      // The working set: the counter less reclaimable cache, never more than the counter.
      expect(r.figures.containerMemory!.usage).toBeGreaterThan(0);
      expect(r.figures.containerMemory!.usage).toBeLessThanOrEqual(r.figures.containerMemory!.current);
      expect(r.report.container_memory!.limit_bytes).toBe(limit);
      // CpuMonitor and ResourceGuard: the same rule, against the quota.
      expect(r.monitor).toMatchObject({ basis: 'container', cpus: 0.5, quota: 0.5 });
      expect(r.guard).toMatchObject({ basis: 'container', cpus: 0.5 });
      // Degradation takes the same figures.
      expect(r.inputs.cpu).toBe(r.figures.cpu.load);
      expect(r.inputs.memory).toBe(r.figures.memory.usage / limit);
      expect(r.inputs.containerMemory).toBe(r.figures.containerMemory!.usage / limit);
    } finally {
      for (const d of [...setup.dirs].reverse()) {
        for (let i = 0; i < 50; i++) {
          try {
            rmdirSync(d);
            break;
          } catch {
            await new Promise((res) => setTimeout(res, 100));
          }
        }
      }
    }
  }, 60_000);
});

describe('cgroup memory working set', () => {
  it('reads inactive_file (v2) or total_inactive_file (v1) from memory.stat and subtracts it', () => {
    const v2 = 'anon 1000\nfile 5000\ninactive_file 3000\nactive_file 2000\n';
    const v1 = 'cache 5000\ninactive_file 10\ntotal_inactive_file 3000\n';
    expect(parseMemoryStat(v2, 'inactive_file')).toBe(3000);
    expect(parseMemoryStat(v1, 'total_inactive_file')).toBe(3000);
    expect(parseMemoryStat(v1, 'missing')).toBeNull();
    expect(workingSet(8000, 3000)).toBe(5000);
    expect(workingSet(2000, 3000)).toBe(0);
    expect(workingSet(8000, null)).toBe(8000);
    expect(resolveMemoryStat('0::/\n', '/nonexistent').file).toBeNull();
  });
});

describe('CpuUsageTracker with injected sources', () => {
  it('container counter over a window, against the quota; the process stands in until two readings exist', () => {
    let t = 0;
    let usage = 1_000_000;
    const tracker = new CpuUsageTracker({
      windowMs: 1000,
      source: { containerUsageUs: () => usage, processCores: () => 0.1, quota: () => 0.5, affinity: () => 4, host: () => 0.99, now: () => t },
    });
    expect(tracker.read()).toMatchObject({ basis: 'process', cores: 0.1, load: 0.2, cpus: 0.5, cpusSource: 'quota', host: 0.99 });
    t = 999;
    usage += 400_000;
    expect(tracker.read().basis).toBe('process'); // the window is not complete
    t = 1000;
    expect(tracker.read()).toMatchObject({ basis: 'container', cores: 0.4, load: 0.8 });
    t = 2000;
    usage += 1_000_000; // over the quota (burst): capped at 1
    expect(tracker.read()).toMatchObject({ basis: 'container', cores: 1, load: 1 });
  });

  it('without a quota the affinity count is the CPUs it may use', () => {
    const tracker = new CpuUsageTracker({
      source: { containerUsageUs: () => null, processCores: () => 1, quota: () => null, affinity: () => 4, host: () => 0.5 },
    });
    expect(tracker.read()).toMatchObject({ basis: 'process', load: 0.25, cpus: 4, cpusSource: 'affinity', quota: null });
  });

  it('refuses bad options before reading anything', () => {
    expect(() => new CpuUsageTracker({ windowMs: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new CpuUsageTracker({ source: { quota: 2 as never } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new CpuUsageTracker(null as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('finds the cgroup CPU counter: v2 needs a non-root cgroup, v1 a cpuacct path other than /', () => {
    expect(resolveCgroupCpu('0::/\n', '/nonexistent').file).toBeNull();
    expect(resolveCgroupCpu('2:cpuacct:/\n0::/\n', '/nonexistent').file).toBeNull();
    expect(resolveCgroupCpu('', '/nonexistent').file).toBeNull();
  });
});
