// Machine-wide budgets at their edges: a lost or removed file, a file left
// by processes that all crashed, a file shortened under the mapping, the
// lock word left by a dead holder or damaged, a full entry table, and pid
// namespaces. No assertion depends on timing.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Budget, LimitedAllocator, MACHINE_BUDGET_MAX_PROCESSES, ResourceMetrics, startMetricsReporter, type MachineBudget } from '../dist/index.js';
import { codeOf } from './helpers';

const LIB = path.join(__dirname, '..', 'dist', 'index.js');
const linux = process.platform === 'linux';
const root = typeof process.getuid === 'function' && process.getuid() === 0;
const canUnshare = root && linux && spawnSync('unshare', ['-pf', '--mount-proc', 'true']).status === 0;
const canMount =
  root &&
  (() => {
    const probe = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'rg-mount-probe-'));
    const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=32k', 'tmpfs', probe]).status === 0;
    if (ok) spawnSync('umount', [probe]);
    fs.rmSync(probe, { recursive: true, force: true });
    return ok;
  })();
const hasPython = spawnSync('python3', ['-c', 'import fcntl; fcntl.F_OFD_SETLK']).status === 0;
/** Offsets in the file: the lock word, `used`, the first entry. */
const LOCK_WORD = 112;
const USED = 48;
const ENTRIES = 512;

let dir = '';
const kids: ChildProcess[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : require('node:os').tmpdir(), 'rg-edges-'));
});
afterEach(() => {
  for (const k of kids.splice(0)) k.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 50_000;
  for (;;) {
    try {
      if (cond()) return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_BUDGET_LOCK_TIMEOUT') throw err;
    }
    if (Date.now() > end) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const opts = () => ({ scope: 'machine' as const, directory: dir });
const open = (name: string, limit?: number) => Budget.open(name, limit, opts()) as MachineBudget;
/** Runs `code` in a fresh node process with `rg` and `o` (the options) defined. */
const node = (code: string) =>
  spawnSync(process.execPath, ['-e', `const rg = require(${JSON.stringify(LIB)}); const o = ${JSON.stringify(opts())};\n${code}`], { encoding: 'utf8' });
/** A node process that opens `name` and keeps it open until killed; resolves once it has. */
async function holder(name: string, bytes = 0): Promise<ChildProcess> {
  const k = spawn(process.execPath, [
    '-e',
    `const rg = require(${JSON.stringify(LIB)}); const b = rg.Budget.open(${JSON.stringify(name)}, undefined, ${JSON.stringify(opts())});
     if (${bytes} > 0) b.reserve(${bytes}); process.stdout.write('ready\\n'); setInterval(() => b.used, 1000);`,
  ]);
  kids.push(k);
  await new Promise<void>((resolve, reject) => {
    k.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    k.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
  });
  return k;
}
/** Writes the 64-bit lock word: generation << 32 | token. */
function writeWord(file: string, offset: number, token: number, generation = 0): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE((BigInt(generation) << 32n) | BigInt(token));
  fs.writeSync(fd, b, 0, 8, offset);
  fs.closeSync(fd);
}
/** The generation a process took entry `i` with. */
const generationOf = (file: string, i: number) => Number(fs.readFileSync(file).readBigUInt64LE(ENTRIES + 64 * i + 16));

describe.runIf(linux)('machine budgets at the edges', () => {
  it('after ERR_BUDGET_LOST, opening the budget again gives a working handle even while the lost one is open', () => {
    const a = open('lost', 100);
    a.reserve(10);
    const fd = fs.openSync(a.path, 'r+');
    fs.writeSync(fd, Buffer.alloc(64), 0, 64, ENTRIES); // our entry taken from us
    fs.writeSync(fd, Buffer.alloc(8), 0, 8, USED); // used = 0, as a scan that freed it leaves it
    fs.closeSync(fd);
    expect(codeOf(() => a.reserve(1))).toBe('ERR_BUDGET_LOST');
    expect(codeOf(() => a.used)).toBe('ERR_BUDGET_LOST');
    const b = open('lost');
    expect(codeOf(() => b.reserve(1))).toBeUndefined();
    expect(b.used).toBe(1);
    b.release(1);
    b.close();
    a.close();
  });

  it('a file left by processes that all crashed takes a new limit on the first open', () => {
    const r = node(`const b = rg.Budget.open('gen', 100, o); b.reserve(5); process.kill(process.pid, 'SIGKILL');`);
    expect(r.signal).toBe('SIGKILL');
    const b = open('gen', 200);
    expect(b.limit).toBe(200);
    expect(b.used).toBe(0);
    b.close();
  });

  it('a live holder keeps its limit: a different one is refused, naming the budget\'s', async () => {
    const b = open('kept', 100);
    await holder('kept');
    b.close(); // the holder keeps the file
    const err = (() => {
      try {
        open('kept', 200);
      } catch (e) {
        return e as { code: string; limit: number };
      }
      return null;
    })();
    expect(err).toMatchObject({ code: 'ERR_BUDGET_LIMIT_MISMATCH', limit: 100 });
  });

  it('shortening the file while it is mapped does not crash the process: its handles fail with ERR_BUDGET_LOST', () => {
    const r = node(`
      const b = rg.Budget.open('trunc', 100, o);
      b.reserve(1);
      require('node:fs').truncateSync(b.path, 0);
      const codes = [];
      for (const f of [() => b.tryReserve(1), () => b.used, () => b.stats()]) {
        try { f(); codes.push('none'); } catch (e) { codes.push(e.code); }
      }
      console.log(codes.join(' '));
      b.close();
      console.log('alive');`);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.stdout).toContain('alive');
    expect(r.stdout).toContain('ERR_BUDGET_LOST');
  });

  it('a file removed from under an open budget is noticed: its handles fail rather than count on the old file', () => {
    const a = open('gone', 100);
    a.reserve(80);
    fs.unlinkSync(a.path); // rm, systemd-logind's RemoveIPC, a cleanup job
    const other = node(`const c = rg.Budget.open('gone', 100, o); console.log(c.tryReserve(80)); c.release(80); c.close();`);
    expect(other.stdout.trim()).toBe('true'); // another process made a new file
    const c = open('gone', 100);
    expect(codeOf(() => a.tryReserve(1))).toBe('ERR_BUDGET_LOST');
    expect(c.used).toBe(0);
    c.close();
    a.close();
  });

  it('a lock word left by a dead holder whose entry a new process takes is taken over, not waited on', async () => {
    const b = open('reused', 100); // entry 0, token 1
    const k = await holder('reused'); // entry 1, token 2
    k.kill('SIGKILL');
    await new Promise((r) => k.once('exit', r));
    writeWord(b.path, LOCK_WORD, 2, generationOf(b.path, 1)); // it died holding the lock
    // A new process takes entry 1, and with it token 2.
    const r = node(`const c = rg.Budget.open('reused', undefined, o); console.log(c.tryReserve(5), c.used); c.release(5);`);
    expect(r.stdout.trim()).toBe('true 5');
    expect(b.tryReserve(1)).toBe(true);
    b.release(1);
    b.close();
  });

  it('the lock word: a live holder is waited on and never robbed; a dead or damaged one is taken over', async () => {
    const b = open('word', 100); // token 1
    await holder('word'); // token 2, alive
    writeWord(b.path, LOCK_WORD, 2, generationOf(b.path, 1)); // its very word: it holds the lock
    expect(codeOf(() => b.tryReserve(1))).toBe('ERR_BUDGET_LOCK_TIMEOUT'); // waited 2 s, then refused
    expect(b.used).toBe(0);
    writeWord(b.path, LOCK_WORD, 3); // entry 2: nobody holds it
    expect(b.tryReserve(1)).toBe(true);
    writeWord(b.path, LOCK_WORD, 2, generationOf(b.path, 1) + 7); // the holder's entry, an earlier generation: the holder itself takes it over
    await until(() => b.tryReserve(0), 'the holder took over a word of its entry\'s earlier generation');
    writeWord(b.path, LOCK_WORD, 0x7ffffff0); // names no entry
    expect(b.tryReserve(1)).toBe(true);
    expect(b.used).toBe(2);
    b.release(2);
    b.close();
  });

  it.runIf(hasPython)(`holds ${MACHINE_BUDGET_MAX_PROCESSES} processes and refuses one more cleanly`, async () => {
    const b = open('full', 100); // entry 0
    // A process that holds the lock of every other entry, as 255 holders would.
    const locker = spawn('python3', [
      '-c',
      `import fcntl, os, struct, sys
fd = os.open(${JSON.stringify(b.path)}, os.O_RDWR)
for i in range(1, ${MACHINE_BUDGET_MAX_PROCESSES}):
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack('hhqqi', fcntl.F_WRLCK, os.SEEK_SET, ${ENTRIES} + 64 * i, 1, 0))
print('ready', flush=True)
sys.stdin.read()`,
    ]);
    kids.push(locker);
    await new Promise<void>((resolve, reject) => {
      locker.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      locker.stderr!.on('data', (d: Buffer) => reject(new Error(d.toString())));
    });
    const full = node(`try { rg.Budget.open('full', undefined, o); console.log('opened'); } catch (e) { console.log(e.code); }`);
    expect(full.stdout.trim()).toBe('ERR_BUDGET_TOO_MANY');
    locker.kill('SIGKILL');
    await new Promise((r) => locker.once('exit', r));
    const room = node(`const c = rg.Budget.open('full', undefined, o); console.log(c.stats().holders);`);
    expect(room.stdout.trim()).toBe('2');
    b.close();
  });

  it('a SIGBUS sent to the process (not a fault in a budget file) still ends it, as it would without the library', () => {
    const r = node(`const b = rg.Budget.open('bus', 10, o); process.kill(process.pid, 'SIGBUS'); setTimeout(() => console.log('survived'), 200);`);
    expect(r.signal).toBe('SIGBUS');
    expect(r.stdout).not.toContain('survived');
  });

  it.runIf(canMount)('on a full tmpfs the first open fails with ERR_BUDGET_IO instead of counting on private memory', () => {
    const small = fs.mkdtempSync(path.join(dir, 'small-'));
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=32k,mode=0700', 'tmpfs', small]).status).toBe(0);
    try {
      // Leave room for fewer pages than a budget file needs.
      for (let i = 0; ; i++) {
        try {
          fs.writeFileSync(path.join(small, `fill-${i}`), Buffer.alloc(4096, 1));
        } catch {
          break;
        }
      }
      fs.rmSync(path.join(small, 'fill-0'));
      fs.rmSync(path.join(small, 'fill-1'));
      const r = spawnSync(process.execPath, ['-e', `
        const rg = require(${JSON.stringify(LIB)});
        try { const b = rg.Budget.open('small', 100, { scope: 'machine', directory: ${JSON.stringify(small)} }); console.log('opened', b.tryReserve(60)); }
        catch (e) { console.log(e.code, e.syscallCode); }`], { encoding: 'utf8' });
      expect(r.signal).toBeNull();
      expect(r.stdout.trim()).toBe('ERR_BUDGET_IO ENOSPC');
      expect(fs.readdirSync(small).filter((f) => f.endsWith('.budget'))).toEqual([]);
    } finally {
      spawnSync('umount', [small]);
    }
  });

  it.runIf(canUnshare)("a process whose /proc is not its pid namespace's does not free a live process's bytes", () => {
    // `unshare -pf` without --mount-proc: both processes in one new pid namespace, /proc still the parent's.
    // a.js keeps its handle reachable (the timer uses it): a dropped handle is closed by the
    // FinalizationRegistry, and a collection before b.js runs would close the budget for real.
    fs.writeFileSync(
      path.join(dir, 'a.js'),
      `const rg = require(${JSON.stringify(LIB)}); const b = rg.Budget.open('ns', 100, ${JSON.stringify(opts())}); b.reserve(60);
       process.stdout.write('ready\\n'); setTimeout(() => { b.close(); process.exit(0); }, 20000);`,
    );
    fs.writeFileSync(
      path.join(dir, 'b.js'),
      `const rg = require(${JSON.stringify(LIB)}); const b = rg.Budget.open('ns', undefined, ${JSON.stringify(opts())}); console.log(b.tryReserve(60));`,
    );
    const out = execFileSync(
      'unshare',
      ['-pf', 'sh', '-c', `node ${dir}/a.js > ${dir}/a.out & while ! grep -q ready ${dir}/a.out 2>/dev/null; do sleep 0.05; done; node ${dir}/b.js 2>&1; kill $!`],
      { encoding: 'utf8' },
    );
    expect(out.trim()).toBe('false');
  });

  it.runIf(canUnshare)('a file left by a container that was OOM-killed is usable by its restart in a new pid namespace', () => {
    fs.writeFileSync(
      path.join(dir, 'dead.js'),
      `const rg = require(${JSON.stringify(LIB)}); const b = rg.Budget.open('pod', 100, ${JSON.stringify(opts())}); b.reserve(40); process.kill(process.pid, 'SIGKILL');`,
    );
    spawnSync('unshare', ['-pf', '--mount-proc', 'sh', '-c', `node ${dir}/dead.js; true`]);
    expect(fs.existsSync(path.join(dir, `rg-${process.geteuid!()}-pod.budget`))).toBe(true);
    fs.writeFileSync(
      path.join(dir, 'restart.js'),
      `const rg = require(${JSON.stringify(LIB)});
       try { const b = rg.Budget.open('pod', 100, ${JSON.stringify(opts())}); console.log('ok', b.used); } catch (e) { console.log(e.code); }`,
    );
    const r = spawnSync('unshare', ['-pf', '--mount-proc', 'sh', '-c', `node ${dir}/restart.js; true`], { encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('ok 0');
  });
});

describe.runIf(linux)('a lost machine budget seen by readers', () => {
  /** Takes our entry from under handle `a`, as a takeover that judged us dead would, and lets `a` find out. */
  const lose = (a: MachineBudget) => {
    const fd = fs.openSync(a.path, 'r+');
    fs.writeSync(fd, Buffer.alloc(64), 0, 64, ENTRIES);
    fs.closeSync(fd);
    expect(codeOf(() => a.reserve(1))).toBe('ERR_BUDGET_LOST');
  };

  it('the metrics reporter hands the error to onError and keeps running; its timer throws nothing', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const a = open('reporter', 100);
      a.reserve(10);
      const errors: unknown[] = [];
      const reports: unknown[] = [];
      const reporter = startMetricsReporter(new ResourceMetrics({ budgets: [a] }), {
        intervalMs: 100,
        onReport: (r) => reports.push(r),
        onError: (e) => errors.push(e),
      });
      vi.advanceTimersByTime(100);
      expect(reports).toHaveLength(1);
      lose(a);
      expect(() => vi.advanceTimersByTime(300)).not.toThrow();
      expect(errors.map((e) => (e as { code?: string }).code)).toEqual(['ERR_BUDGET_LOST', 'ERR_BUDGET_LOST', 'ERR_BUDGET_LOST']);
      expect(reporter.running).toBe(true);
      // report() is the caller's own call: there the error is thrown.
      expect(codeOf(() => reporter.report())).toBe('ERR_BUDGET_LOST');
      reporter.stop();
      a.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('without onError, or when onError throws, the reporter warns instead of throwing from its timer', async () => {
    const warnings: Array<{ code?: string; message: string }> = [];
    const onWarning = (w: Error & { code?: string }) => warnings.push(w);
    process.on('warning', onWarning);
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const a = open('reporter-warn', 100);
      const quiet = startMetricsReporter(new ResourceMetrics({ budgets: [a] }), { intervalMs: 100, onReport: () => {} });
      const failing = startMetricsReporter(new ResourceMetrics({ budgets: [a] }), {
        intervalMs: 100,
        onReport: () => {},
        onError: () => {
          throw new Error('the error sink is down too');
        },
      });
      lose(a);
      expect(() => vi.advanceTimersByTime(100)).not.toThrow();
      quiet.stop();
      failing.stop();
      a.close();
    } finally {
      vi.useRealTimers();
    }
    await new Promise((r) => setImmediate(r));
    process.off('warning', onWarning);
    const ours = warnings.filter((w) => w.code === 'RESOURCE_GUARD_REPORTER');
    expect(ours.map((w) => w.message).sort()).toEqual([
      expect.stringMatching(/^metrics reporter: The machine budget's file .* \(ERR_BUDGET_LOST\)$/),
      'metrics reporter: the error sink is down too',
    ]);
  });

  it('used and limit of a handle that found its file shortened throw ERR_BUDGET_LOST, never read 0', () => {
    const a = open('shortened', 1000);
    a.reserve(100);
    fs.truncateSync(a.path, 0);
    expect(codeOf(() => a.tryReserve(1))).toBe('ERR_BUDGET_LOST');
    expect(codeOf(() => a.used)).toBe('ERR_BUDGET_LOST');
    expect(codeOf(() => a.limit)).toBe('ERR_BUDGET_LOST');
    a.close();
  });

  it('used and limit of a shortened file are never 0, even before an operation found it', () => {
    const a = open('shortened-read', 1000);
    a.reserve(100);
    fs.truncateSync(a.path, 0);
    expect(codeOf(() => a.used)).toBe('ERR_BUDGET_LOST');
    expect(codeOf(() => a.limit)).toBe('ERR_BUDGET_LOST');
    a.close();
  });
});

describe.runIf(linux)('what a thread holds on a machine budget', () => {
  it("held counts the thread's allocators on the same budget, as on a process budget; an allocator's own handle, only its bytes", () => {
    for (const scope of ['process', 'machine'] as const) {
      const name = `held-${scope}-${process.pid}`;
      const options = scope === 'machine' ? opts() : { scope };
      const budget = Budget.open(name, 1000, options);
      const other = Budget.open(name, 1000, options);
      const allocator = LimitedAllocator.shared(name, 1000, options);
      budget.reserve(100);
      allocator.reserveBytes(300);
      expect([scope, budget.held, other.held, budget.stats().held]).toEqual([scope, 400, 400, 400]);
      expect([scope, budget.used]).toEqual([scope, 400]);
      allocator.close();
      expect([scope, budget.held]).toEqual([scope, 100]);
      budget.release(100);
      expect([scope, budget.held, budget.used]).toEqual([scope, 0, 0]);
      other.close();
      budget.close();
    }
  });
});
