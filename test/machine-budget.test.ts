// Machine-wide budgets, with real processes: races, SIGKILL, contention with
// a monitor, kill -9 chaos with restarts, hostile files, worker threads.
// No assertion depends on timing: waits are for events (a reply, an exit),
// and the one wait for the periodic check is a condition polled under a
// generous deadline.
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Budget,
  LimitedAllocator,
  MachineBudget,
  machineBudgetDirectory,
  healthReport,
  collectMetrics,
} from '../dist/index.js';
import { codeOf, rng } from './helpers';

const FIXTURE = path.join(__dirname, 'fixtures', 'machine-child.cjs');
const LIB = path.join(__dirname, '..', 'dist', 'index.js');
const linux = process.platform === 'linux';
const root = typeof process.getuid === 'function' && process.getuid() === 0;
/** Whether this node binary can run as another user (a binary under /root cannot). */
const otherUserCanRun =
  root && require('node:child_process').spawnSync(process.execPath, ['-e', '0'], { uid: 65534, gid: 65534 }).status === 0;

let dir = '';
const children = new Set<Child>();

beforeEach(() => {
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : require('node:os').tmpdir();
  dir = fs.mkdtempSync(path.join(base, 'rg-machine-test-'));
});

afterEach(async () => {
  for (const c of children) c.kill();
  await Promise.all([...children].map((c) => c.exited));
  children.clear();
  fs.rmSync(dir, { recursive: true, force: true });
});

class Child {
  readonly proc: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<number | null>;
  #id = 0;
  #waiting = new Map<number, (reply: Record<string, unknown>) => void>();

  constructor() {
    this.proc = fork(FIXTURE, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(this);
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
    this.ready = new Promise((resolve, reject) => {
      this.proc.once('error', reject);
      this.proc.on('message', (msg: Record<string, unknown>) => {
        if (msg.ready) return resolve();
        const cb = this.#waiting.get(msg.id as number);
        this.#waiting.delete(msg.id as number);
        if (msg.error) throw new Error(`child: ${msg.error as string}`);
        cb?.(msg);
      });
    });
  }

  async call<T = Record<string, unknown>>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    await this.ready;
    const id = ++this.#id;
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, resolve as (r: Record<string, unknown>) => void);
      this.proc.once('exit', () => reject(new Error(`child ${this.proc.pid} exited before answering ${op}`)));
      this.proc.send({ id, op, ...args });
    });
  }

  open(name: string, limit?: number) {
    return this.call<{ ok: boolean; code?: string }>('open', { name, limit, directory: dir });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
  }
}

async function started(n: number): Promise<Child[]> {
  const list = Array.from({ length: n }, () => new Child());
  await Promise.all(list.map((c) => c.ready));
  return list;
}

const open = (name: string, limit?: number) => Budget.open(name, limit, { scope: 'machine', directory: dir }) as MachineBudget;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits until `cond()` holds; the deadline only bounds a hang, nothing is timed. */
async function until(cond: () => boolean, what: string, deadlineMs = 50_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`never happened: ${what}`);
    await sleep(20);
  }
}

describe.runIf(linux)('machine-wide budgets across processes', () => {
  it('8 processes race to take 60 of 100: exactly one wins, and every process sees 60 used', async () => {
    const kids = await started(8);
    for (const k of kids) expect((await k.open('race', 100)).ok).toBe(true);
    const results = await Promise.all(kids.map((k) => k.call<{ ok: boolean }>('reserve', { bytes: 60 })));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    const reads = await Promise.all(kids.map((k) => k.call<{ used: number; stats: { holders: number } }>('read')));
    expect(reads.map((r) => r.used)).toEqual(Array(8).fill(60));
    expect(reads.map((r) => r.stats.holders)).toEqual(Array(8).fill(8));
  });

  it('the winner killed with SIGKILL: another process can take the 60 once it has ended', async () => {
    const kids = await started(4);
    for (const k of kids) expect((await k.open('killed', 100)).ok).toBe(true);
    const results = await Promise.all(kids.map((k) => k.call<{ ok: boolean }>('reserve', { bytes: 60 })));
    const winner = kids[results.findIndex((r) => r.ok)]!;
    const others = kids.filter((k) => k !== winner);
    winner.kill('SIGKILL');
    await winner.exited;
    // The stated bound: a refused reservation checks for dead holders when
    // the last check machine-wide is at least 1 ms old.
    await sleep(5);
    const retry = await others[0]!.call<{ ok: boolean; used: number }>('reserve', { bytes: 60 });
    expect(retry).toMatchObject({ ok: true, used: 60 });
    const { stats } = await others[1]!.call<{ stats: { reclaimedProcesses: number; reclaimedBytes: number; holders: number } }>('read');
    expect(stats).toMatchObject({ reclaimedProcesses: 1, reclaimedBytes: 60, holders: 3 });
  });

  it('an opener gives back what a dead process held, with no one else asking', async () => {
    const [k] = await started(1);
    expect((await k!.open('opener', 100)).ok).toBe(true);
    expect((await k!.call<{ ok: boolean }>('reserve', { bytes: 70 })).ok).toBe(true);
    k!.kill('SIGKILL');
    await k!.exited;
    // No process has the budget open now, so no periodic check runs: only the open can give the 70 back.
    const b = open('opener');
    expect(b.used).toBe(0);
    expect(b.stats()).toMatchObject({ reclaimedProcesses: 1, reclaimedBytes: 70, holders: 1 });
    b.close();
  });

  it('the periodic check gives back what a dead process held while the others only read', async () => {
    const b = open('periodic', 100);
    const [k] = await started(1);
    expect((await k!.open('periodic')).ok).toBe(true);
    expect((await k!.call<{ ok: boolean }>('reserve', { bytes: 40 })).ok).toBe(true);
    expect(b.used).toBe(40);
    k!.kill('SIGKILL');
    await k!.exited;
    await until(() => b.used === 0, 'the periodic check reclaimed the 40 bytes');
    expect(b.stats()).toMatchObject({ reclaimedProcesses: 1, reclaimedBytes: 40, holders: 1 });
    b.close();
  });

  it('4 processes × 10^5 random operations with a monitor: never above the limit, exact counts, 0 at the end', async () => {
    const limit = 10_000;
    const workers = await started(4);
    const [monitor] = await started(1);
    for (const k of [...workers, monitor!]) expect((await k.open('churn', limit)).ok).toBe(true);
    await monitor!.call('monitor', { limit });
    const results = await Promise.all(
      workers.map((k, i) => k.call<{ ok: number; refused: number; held: number; budgetHeld: number }>('churn', { ops: 100_000, seed: 1000 + i, max: 600, hold: 3_500 })),
    );
    const seen = await monitor!.call<{ samples: number; over: number; maxSeen: number }>('stop');
    expect(seen.over).toBe(0);
    expect(seen.samples).toBeGreaterThan(0);
    expect(seen.maxSeen).toBeLessThanOrEqual(limit);
    const b = open('churn');
    const held = results.reduce((s, r) => s + r.held, 0);
    expect(results.every((r) => r.held === r.budgetHeld)).toBe(true);
    expect(b.used).toBe(held);
    const stats = b.stats();
    expect(stats.successes).toBe(results.reduce((s, r) => s + r.ok, 0));
    expect(stats.failures).toBe(results.reduce((s, r) => s + r.refused, 0));
    expect(stats.failures).toBeGreaterThan(0); // the limit was reached
    for (const [i, k] of workers.entries()) await k.call('release', { bytes: results[i]!.held });
    expect(b.used).toBe(0);
    b.close();
  });

  it('processes killed with kill -9 at random points and restarted: used converges to what the living hold', async () => {
    const limit = 20_000;
    const rand = rng(77);
    const [monitor] = await started(1);
    expect((await monitor!.open('chaos', limit)).ok).toBe(true);
    await monitor!.call('monitor', { limit });
    let living = await started(4);
    for (const k of living) expect((await k.open('chaos')).ok).toBe(true);
    let killed = 0;
    for (let round = 0; round < 6; round++) {
      const runs = living.map((k, i) =>
        k.call('churn', { ops: 20_000, seed: round * 10 + i, max: 900, hold: 6_000 }).catch(() => null),
      );
      // Kill one at a random point of its run (or after it), start a replacement.
      await sleep(Math.floor(rand() * 40));
      const victim = living[Math.floor(rand() * living.length)]!;
      victim.kill('SIGKILL');
      await victim.exited;
      killed++;
      await Promise.all(runs);
      const [fresh] = await started(1);
      expect((await fresh!.open('chaos')).ok).toBe(true);
      living = [...living.filter((k) => k !== victim), fresh!];
    }
    const reads = await Promise.all(living.map((k) => k.call<{ held: number }>('read')));
    const b = open('chaos'); // an open gives back what the dead held
    expect(b.used).toBe(reads.reduce((s, r) => s + r.held, 0));
    expect(b.stats().reclaimedProcesses).toBe(killed);
    const seen = await monitor!.call<{ over: number; samples: number }>('stop');
    expect(seen.over).toBe(0);
    for (const [i, k] of living.entries()) await k.call('release', { bytes: reads[i]!.held });
    expect(b.used).toBe(0);
    b.close();
  });

  it('a worker thread terminated while it holds bytes gives them back; the process keeps its own', async () => {
    const [k] = await started(1);
    expect((await k!.open('threads', 1000)).ok).toBe(true);
    expect((await k!.call<{ ok: boolean }>('reserve', { bytes: 100 })).ok).toBe(true);
    const r = await k!.call<{ usedInWorker: number; used: number; held: number }>('worker', { bytes: 300, name: 'threads', directory: dir });
    expect(r).toMatchObject({ usedInWorker: 400, used: 100, held: 100 });
  });

  it('a worker thread of this process, terminated mid-loop, gives back what it reserved', async () => {
    const b = open('local-worker', 1000);
    const w = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const rg = require(workerData.lib);
       const b = rg.Budget.open('local-worker', undefined, { scope: 'machine', directory: workerData.dir });
       b.reserve(250);
       parentPort.postMessage(b.used);
       for (;;) {}`,
      { eval: true, workerData: { lib: LIB, dir } },
    );
    const seen = await new Promise((resolve) => w.once('message', resolve));
    expect(seen).toBe(250);
    await w.terminate();
    expect(b.used).toBe(0);
    b.close();
  });
});

describe.runIf(linux)('machine-wide budgets: files, names and limits', () => {
  const file = (name: string) => path.join(dir, `rg-${process.geteuid!()}-${name}.budget`);

  it('refuses bad input with typed errors before touching the directory', () => {
    const bad: Array<[string, () => unknown]> = [
      ['ERR_OUT_OF_RANGE', () => open('../escape', 10)],
      ['ERR_OUT_OF_RANGE', () => open('a/b', 10)],
      ['ERR_OUT_OF_RANGE', () => open('.hidden', 10)],
      ['ERR_OUT_OF_RANGE', () => open('x'.repeat(101), 10)],
      ['ERR_OUT_OF_RANGE', () => open('sp ace', 10)],
      ['ERR_OUT_OF_RANGE', () => open('', 10)],
      ['ERR_INVALID_ARG_TYPE', () => open(7 as unknown as string, 10)],
      ['ERR_OUT_OF_RANGE', () => open('ok', -1)],
      ['ERR_INVALID_ARG_VALUE', () => Budget.open('ok', 10, { scope: 'planet' as 'machine' })],
      ['ERR_INVALID_ARG_VALUE', () => Budget.open('ok', 10, { directory: dir })],
      ['ERR_INVALID_ARG_VALUE', () => Budget.open('ok', 10, { scope: 'machine', directory: '' })],
      ['ERR_INVALID_ARG_TYPE', () => Budget.open('ok', 10, { scope: 'machine', directory: 5 as unknown as string })],
      ['ERR_INVALID_ARG_TYPE', () => Budget.open('ok', 10, null as unknown as undefined)],
      ['ERR_BUDGET_NOT_FOUND', () => open('missing')],
      ['ERR_BUDGET_IO', () => Budget.open('ok', 10, { scope: 'machine', directory: path.join(dir, 'nope') })],
    ];
    for (const [code, fn] of bad) expect(codeOf(fn), String(fn)).toBe(code);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('shares one counter between handles, refuses a different limit, releases at most what was reserved', () => {
    const a = open('shared', 100);
    const b = open('shared');
    expect(a.scope).toBe('machine');
    expect(a).toBeInstanceOf(Budget);
    expect(a.tryReserve(70)).toBe(true);
    expect(b.used).toBe(70);
    expect(b.tryReserve(31)).toBe(false);
    expect(codeOf(() => open('shared', 50))).toBe('ERR_BUDGET_LIMIT_MISMATCH');
    expect(codeOf(() => b.release(71))).toBe('ERR_BUDGET_RELEASE_EXCEEDS_HELD');
    expect(codeOf(() => a.reserve(31))).toBe('ERR_BUDGET_EXCEEDED');
    expect(codeOf(() => a.setLimit(69))).toBe('ERR_BUDGET_LIMIT_BELOW_USAGE');
    a.setLimit(200);
    expect(b.limit).toBe(200);
    expect(a.stats()).toMatchObject({ used: 70, peak: 70, successes: 1, failures: 2, holders: 1, processHeld: 70 });
    a.close();
    expect(b.used).toBe(70); // b still holds this thread's bytes
    b.close();
    expect(fs.readdirSync(dir)).toEqual([]); // the last close removes the file
    expect(codeOf(() => b.used)).toBe('ERR_BUDGET_CLOSED');
    expect(codeOf(() => b.tryReserve(1))).toBe('ERR_BUDGET_CLOSED');
    const again = open('shared', 5); // a new budget, with the new limit
    expect(again.limit).toBe(5);
    again.close();
  });

  it('an allocator on a machine budget counts only its own bytes and gives them back on close', () => {
    const b = open('alloc', 1000);
    const a = LimitedAllocator.shared('alloc', undefined, { scope: 'machine', directory: dir });
    const buf = a.allocate(400);
    expect(buf.length).toBe(400);
    expect(b.used).toBe(400);
    expect(codeOf(() => b.release(400))).toBe('ERR_BUDGET_RELEASE_EXCEEDS_HELD');
    expect(a.allocate(601)).toBeNull();
    expect(b.used).toBe(400);
    a.close();
    expect(b.used).toBe(0);
    b.close();
  });

  it('shows in health and metrics with scope and holders', async () => {
    const b = open('reported', 1000);
    const [k] = await started(1);
    expect((await k!.open('reported')).ok).toBe(true);
    b.reserve(250);
    const report = healthReport({ budgets: [b] });
    expect(report.budgets).toEqual([
      expect.objectContaining({ name: 'reported', used_bytes: 250, limit_bytes: 1000, peak_bytes: 250, scope: 'machine', holders: 2 }),
    ]);
    const fams = new Map(collectMetrics({ figures: () => ({}), budgets: [b] }).map((f) => [f.name, f.samples]));
    expect(fams.get('resource_guard_budget_processes')!.map((s) => s.value)).toEqual([2]);
    b.release(250);
    b.close();
  });

  it('by default lives in a directory of its own for this user, mode 0700', () => {
    const name = `default-dir-${process.pid}`;
    const b = Budget.open(name, 10, { scope: 'machine' }) as MachineBudget;
    try {
      expect(path.dirname(b.path)).toBe(machineBudgetDirectory());
      expect(path.basename(machineBudgetDirectory())).toBe(`resource-guard-${process.geteuid!()}`);
      const st = fs.lstatSync(machineBudgetDirectory());
      expect(st.isDirectory() && st.uid === process.geteuid!()).toBe(true);
      expect(st.mode & 0o777).toBe(0o700);
      expect(fs.statSync(b.path).mode & 0o777).toBe(0o600);
    } finally {
      b.close();
    }
    expect(fs.existsSync(path.join(machineBudgetDirectory(), `rg-${process.geteuid!()}-${name}.budget`))).toBe(false);
  });

  it('refuses a file open to other users, a symbolic link and a directory', () => {
    const b = open('mode', 10);
    fs.chmodSync(b.path, 0o644);
    expect(codeOf(() => open('mode'))).toBe('ERR_BUDGET_FOREIGN');
    fs.chmodSync(b.path, 0o600);
    expect(open('mode').limit).toBe(10);
    fs.symlinkSync(b.path, file('link'));
    expect(codeOf(() => open('link'))).toBe('ERR_BUDGET_FOREIGN');
    fs.mkdirSync(file('dir'));
    expect(codeOf(() => open('dir'))).toBe('ERR_BUDGET_FOREIGN');
  });

  it.runIf(root)('refuses a file made by another user', () => {
    const b = open('other', 10);
    const copy = fs.readFileSync(b.path);
    b.close();
    fs.writeFileSync(file('other'), copy, { mode: 0o600 });
    fs.chownSync(file('other'), 65534, 65534);
    expect(codeOf(() => open('other'))).toBe('ERR_BUDGET_FOREIGN');
    expect(fs.statSync(file('other')).uid).toBe(65534); // left as it was
  });

  it.runIf(otherUserCanRun)('another user can neither change the file nor attach to the budget', () => {
    const b = open('private', 100);
    b.reserve(10);
    fs.chmodSync(dir, 0o755); // let the other user look into the directory
    const script = `
      const fs = require('node:fs');
      const out = {};
      try { fs.openSync(${JSON.stringify(b.path)}, 'r+'); out.write = 'opened'; } catch (e) { out.write = e.code; }
      try { fs.openSync(${JSON.stringify(b.path)}, 'r'); out.read = 'opened'; } catch (e) { out.read = e.code; }
      try { fs.unlinkSync(${JSON.stringify(b.path)}); out.unlink = 'removed'; } catch (e) { out.unlink = e.code; }
      const rg = require(${JSON.stringify(LIB)});
      try {
        const mine = rg.Budget.open('private', undefined, { scope: 'machine', directory: ${JSON.stringify(dir)} });
        out.open = 'opened ' + mine.used;
      } catch (e) { out.open = e.code; }
      console.log(JSON.stringify(out));`;
    const r = require('node:child_process').spawnSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    // Its own name for the budget is another file (its uid is part of the name), which does not exist.
    expect(JSON.parse(r.stdout)).toEqual({ write: 'EACCES', read: 'EACCES', unlink: 'EACCES', open: 'ERR_BUDGET_NOT_FOUND' });
    expect(b.used).toBe(10);
    b.release(10);
    b.close();
  });

  it('refuses truncated, foreign and corrupted files with ERR_BUDGET_CORRUPT, and leaves them as they were', () => {
    const b = open('good', 100);
    const good = fs.readFileSync(b.path);
    b.close();
    const cases: Array<[string, (buf: Buffer) => Buffer]> = [
      ['truncated', (buf) => buf.subarray(0, 100)],
      ['empty', () => Buffer.alloc(0)],
      ['wrong magic', (buf) => (buf.write('NOTMAGIC', 0), buf)],
      ['wrong version', (buf) => (buf.writeUInt32LE(99, 8), buf)],
      ['used not the sum of the entries', (buf) => (buf.writeBigUInt64LE(5n, 48), buf)],
      ['used above the limit', (buf) => (buf.writeBigUInt64LE(500n, 48), buf.writeBigUInt64LE(1n, 64), buf)],
      ['bad entry state', (buf) => (buf.writeUInt32LE(7, 512 + 64 * 3), buf)],
      ['zeros', (buf) => Buffer.alloc(buf.length)],
    ];
    const rand = rng(5);
    for (let i = 0; i < 5; i++) {
      cases.push([`random bytes ${i}`, (buf) => Buffer.from(buf.map(() => Math.floor(rand() * 256)))]);
    }
    for (const [what, make] of cases) {
      const bytes = make(Buffer.from(good));
      fs.writeFileSync(file('bad'), bytes, { mode: 0o600 });
      expect(codeOf(() => open('bad')), what).toBe('ERR_BUDGET_CORRUPT');
      expect(fs.readFileSync(file('bad')).equals(bytes), what).toBe(true);
      fs.rmSync(file('bad'));
    }
  });
});

describe.runIf(!linux)('machine-wide budgets elsewhere', () => {
  it('are refused with ERR_BUDGET_UNSUPPORTED', () => {
    expect(codeOf(() => open('x', 1))).toBe('ERR_BUDGET_UNSUPPORTED');
  });
});
