// Every sampler against an independent reading of the same quantity: another
// kernel interface, Node's own API or a command-line tool. Tolerances are
// stated per quantity; they cover what legitimately changes between the two
// reads (the test's own allocations, other processes' disk writes).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { describe, expect, test } from 'vitest';
import { binding } from '../src/binding';
import {
  cpuCount,
  cpuLoadBetween,
  DiskReader,
  readCgroup,
  readDisk,
  readPeakRss,
  readProcessCpu,
  readPsi,
  readRss,
  readSnapshot,
  readSystemCpu,
  readSystemMemory,
} from '../src/index';

const MiB = 1024 * 1024;
const linux = process.platform === 'linux';

function procStatusKiB(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/self/status`);
  return Number(m[1]);
}

describe('process memory', () => {
  test('RSS matches /proc/self/status VmRSS and process.memoryUsage.rss() within 4 MiB', () => {
    const ours = readRss();
    const node = process.memoryUsage.rss();
    expect(Math.abs(ours - node)).toBeLessThan(4 * MiB);
    if (linux) expect(Math.abs(ours - procStatusKiB('VmRSS') * 1024)).toBeLessThan(4 * MiB);
  });

  test('RSS follows a 64 MiB allocation that is touched', () => {
    const before = readRss();
    const block = Buffer.alloc(64 * MiB, 1);
    const after = readRss();
    expect(after - before).toBeGreaterThan(56 * MiB);
    expect(block[block.length - 1]).toBe(1);
  });

  test('peak RSS lies between VmHWM read just before and just after, and is at least the RSS read before it', () => {
    // Ordered reads, so that growth between them (other threads, GC) cannot
    // break the comparison: the high-water mark only rises. The slack covers
    // the kernel's approximate per-CPU RSS counters.
    const rss = readRss();
    const hwm1 = linux ? procStatusKiB('VmHWM') * 1024 : 0;
    const peak = readPeakRss();
    const hwm2 = linux ? procStatusKiB('VmHWM') * 1024 : Infinity;
    expect(peak).toBeGreaterThanOrEqual(rss - 4 * MiB);
    expect(peak).toBeGreaterThanOrEqual(hwm1 - 4 * MiB);
    expect(peak).toBeLessThanOrEqual(hwm2 + 4 * MiB);
  });

  test('the snapshot RSS lies between fresh reads taken just before and just after its sample', () => {
    // Bracketed, so that nothing depends on how old the snapshot is or on
    // the machine's load: r1, a sample (taken now on this thread, or a newer
    // one by the sampler thread), r2. RSS may move between the reads (GC and
    // other threads), so look for a bracket where it held still within a
    // page range; then the sample must sit inside it.
    let checked = 0;
    for (let attempt = 0; attempt < 200 && checked === 0; attempt++) {
      const r1 = readRss();
      binding.sampleNow();
      const s = readSnapshot().rss;
      const r2 = readRss();
      if (Math.abs(r2 - r1) > MiB) continue;
      expect(s).toBeGreaterThanOrEqual(Math.min(r1, r2) - MiB);
      expect(s).toBeLessThanOrEqual(Math.max(r1, r2) + MiB);
      checked++;
    }
    expect(checked).toBe(1);
  });
});

describe('CPU', () => {
  test('process CPU time matches process.cpuUsage() within 50 ms', () => {
    const end = Date.now() + 100;
    while (Date.now() < end) {
      /* burn CPU so the figures are not all zero */
    }
    const ours = readProcessCpu();
    const node = process.cpuUsage();
    expect(Math.abs(ours.userUs - node.user)).toBeLessThan(50_000);
    expect(Math.abs(ours.systemUs - node.system)).toBeLessThan(50_000);
    expect(ours.userUs).toBeGreaterThan(50_000);
  });

  test('system CPU time matches the sum over os.cpus() within 2 % (and /proc/stat)', () => {
    const ours = readSystemCpu();
    let busy = 0;
    let idle = 0;
    for (const c of os.cpus()) {
      busy += c.times.user + c.times.nice + c.times.sys + c.times.irq;
      idle += c.times.idle;
    }
    // os.cpus() reports milliseconds and leaves out iowait, softirq and steal.
    expect(Math.abs(ours.idleUs / 1000 - idle) / idle).toBeLessThan(0.02);
    expect(ours.busyUs / 1000).toBeGreaterThanOrEqual(busy * 0.98);
    if (linux) {
      const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
      const hz = 100;
      const procIdle = ((f[3]! + f[4]!) * 1e6) / hz;
      expect(Math.abs(ours.idleUs - procIdle) / procIdle).toBeLessThan(0.01);
    }
  });

  test('load between two readings is in [0, 1] and the snapshot load is real from the start', () => {
    const a = readSystemCpu();
    const end = Date.now() + 60;
    while (Date.now() < end) {
      /* busy */
    }
    const b = readSystemCpu();
    const load = cpuLoadBetween(a, b);
    expect(load).toBeGreaterThan(0);
    expect(load).toBeLessThanOrEqual(1);
    const s = readSnapshot();
    expect(s.sysLoad).toBeGreaterThan(0);
    expect(s.sysLoad).toBeLessThanOrEqual(1);
  });

  test('CPU count equals os.availableParallelism() / os.cpus().length', () => {
    expect(cpuCount()).toBe(os.cpus().length);
    expect(readSnapshot().cpuCount).toBe(cpuCount());
  });
});

describe('system memory and cgroup', () => {
  test('total equals os.totalmem(); available is within 256 MiB of os.freemem() and /proc/meminfo', () => {
    const m = readSystemMemory();
    expect(m.total).toBe(os.totalmem());
    expect(Math.abs(m.available - os.freemem())).toBeLessThan(256 * MiB);
    expect(m.available).toBeLessThanOrEqual(m.total);
  });

  test.runIf(linux)('cgroup figures match the files read independently', () => {
    const cg = readCgroup();
    const lines = fs.readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
    const v1mem = lines.map((l) => l.split(':')).find((p) => p[1]?.split(',').includes('memory'));
    if (cg.version === 1 && v1mem) {
      const candidates = [`/sys/fs/cgroup/memory${v1mem[2] === '/' ? '' : v1mem[2]}`, '/sys/fs/cgroup/memory'];
      const dir = candidates.find((d) => fs.existsSync(`${d}/memory.limit_in_bytes`))!;
      const raw = BigInt(fs.readFileSync(`${dir}/memory.limit_in_bytes`, 'utf8').trim());
      if (raw >= 1n << 62n) expect(cg.memoryLimit).toBeNull();
      else expect(cg.memoryLimit).toBe(Number(raw));
      const usage = Number(fs.readFileSync(`${dir}/memory.usage_in_bytes`, 'utf8').trim());
      expect(Math.abs(cg.memoryUsage! - usage)).toBeLessThan(64 * MiB);
    } else if (cg.version === 2) {
      const rel = lines.find((l) => l.startsWith('0::'))!.slice(3);
      const dir = fs.existsSync(`/sys/fs/cgroup${rel}/memory.max`) ? `/sys/fs/cgroup${rel}` : '/sys/fs/cgroup';
      const raw = fs.readFileSync(`${dir}/memory.max`, 'utf8').trim();
      expect(cg.memoryLimit).toBe(raw === 'max' ? null : Number(raw));
    } else {
      expect(cg.version).toBe(0);
    }
    // Never a huge number posing as a limit.
    if (cg.memoryLimit !== null) expect(cg.memoryLimit).toBeLessThan(2 ** 62);
    const constrained = (process as unknown as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
    if (cg.memoryLimit !== null && constrained) expect(cg.memoryLimit).toBe(constrained);
  });

  test.runIf(linux && fs.existsSync('/proc/pressure/memory'))('PSI matches /proc/pressure/memory', () => {
    const psi = readPsi('memory');
    expect(psi).not.toBeNull();
    const text = fs.readFileSync('/proc/pressure/memory', 'utf8');
    const total = Number(/^some .*total=(\d+)/m.exec(text)![1]);
    // total only grows; allow 1 s of stall accumulated between the two reads.
    expect(psi!.some.totalUs).toBeGreaterThanOrEqual(total);
    expect(psi!.some.totalUs - total).toBeLessThan(1_000_000);
    expect(psi!.some.avg10).toBeGreaterThanOrEqual(0);
  });
});

describe('disk', () => {
  const dir = os.tmpdir();

  test('matches fs.statfsSync: total exactly, available within 64 MiB', () => {
    const ours = readDisk(dir);
    const st = fs.statfsSync(dir);
    expect(ours.total).toBe(st.blocks * st.bsize);
    expect(Math.abs(ours.available - st.bavail * st.bsize)).toBeLessThan(64 * MiB);
    expect(Math.abs(ours.free - st.bfree * st.bsize)).toBeLessThan(64 * MiB);
    expect(ours.available).toBeLessThanOrEqual(ours.free);
  });

  test.runIf(linux)('matches df (POSIX output, 1024-byte blocks) within 64 MiB', () => {
    const out = execFileSync('df', ['-P', '-k', dir], { encoding: 'utf8' }).trim().split('\n');
    const cols = out[out.length - 1]!.split(/\s+/);
    const availKiB = Number(cols[3]);
    expect(Math.abs(readDisk(dir).available - availKiB * 1024)).toBeLessThan(64 * MiB);
  });

  test('a kept-open DiskReader reads the same file system as readDisk and fs.statfsSync', () => {
    const reader = DiskReader.open(dir);
    const a = reader.read();
    const b = readDisk(dir);
    expect(a.total).toBe(b.total);
    expect(Math.abs(a.available - b.available)).toBeLessThan(64 * MiB);
    const out = new Float64Array(3);
    expect(reader.readInto(out)).toBe(0);
    expect(out[0]).toBe(b.total);
    reader.close();
    expect(reader.closed).toBe(true);
    expect(reader.readInto(out)).not.toBe(0);
    expect(() => reader.read()).toThrow(expect.objectContaining({ code: 'ERR_PATH_UNREADABLE' }));
    reader.close();
    expect(() => DiskReader.open('/definitely/not/here')).toThrow(expect.objectContaining({ code: 'ERR_PATH_NOT_FOUND' }));
    expect(() => DiskReader.open(__filename)).toThrow(expect.objectContaining({ code: 'ERR_NOT_A_DIRECTORY' }));
    expect(() => DiskReader.open(null as unknown as string)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  test('a missing path, a file and a non-string are typed errors', () => {
    expect(() => readDisk('/definitely/not/here')).toThrow(expect.objectContaining({ code: 'ERR_PATH_NOT_FOUND' }));
    const file = `${dir}/rg-not-a-dir-${process.pid}`;
    fs.writeFileSync(file, 'x');
    try {
      expect(() => readDisk(file)).toThrow(expect.objectContaining({ code: 'ERR_NOT_A_DIRECTORY' }));
    } finally {
      fs.unlinkSync(file);
    }
    expect(() => readDisk(42 as unknown as string)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => readDisk('a\0b')).toThrow(expect.objectContaining({ code: 'ERR_PATH_NOT_FOUND' }));
  });

  test('long paths and multi-byte names read the right directory, whatever their length', () => {
    // Paths are copied into a 1 KiB stack buffer when they fit and go the
    // slow way when they do not; walk a multi-byte name across that edge.
    const named = fs.mkdtempSync(`${dir}/rg-é日本-`);
    try {
      const expected = fs.statfsSync(named);
      for (let k = 480; k <= 530; k++) {
        const p = '/.'.repeat(k) + named;
        const got = readDisk(p);
        expect(got.path).toBe(p);
        expect(got.total).toBe(expected.blocks * expected.bsize);
        expect(() => readDisk(`${p}/missing-é`)).toThrow(expect.objectContaining({ code: 'ERR_PATH_NOT_FOUND' }));
        expect(() => readDisk(`${'/.'.repeat(k)}/a\0é`)).toThrow(expect.objectContaining({ code: 'ERR_PATH_NOT_FOUND' }));
      }
      // Longer than any path the kernel takes.
      expect(() => readDisk('/.'.repeat(3000) + named)).toThrow(expect.objectContaining({ code: 'ERR_PATH_UNREADABLE' }));
    } finally {
      fs.rmSync(named, { recursive: true });
    }
  });
});
