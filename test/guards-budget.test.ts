import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { MemoryBudgetError } from '../src/errors';
import { MemoryBudget, checkpoint, checkpointsEnabled, configureCheckpoints, estimateMemory } from '../src/guards';
import { readCgroup, readSystemMemory } from '../src/sampler';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function fake(usage: number, systemTotal = 16 * GiB, cgroupLimit: number | null = null) {
  const state = { usage, now: 0, reads: 0, fail: null as Error | null };
  return {
    state,
    source: {
      usage: () => {
        state.reads++;
        if (state.fail) throw state.fail;
        return state.usage;
      },
      systemTotal: () => systemTotal,
      cgroupLimit: () => cgroupLimit,
    },
    clock: () => state.now,
  };
}

describe('MemoryBudget: limit and message', () => {
  it('is 80 % of RAM: 16384 MB total, 13107 MB limit', () => {
    const f = fake(0);
    const budget = new MemoryBudget({ source: f.source, clock: f.clock });
    expect(budget.totalMB()).toBe(16384);
    expect(budget.limitMB()).toBe(13107);
    expect(budget.limit).toBe(Math.floor(16 * GiB * 0.8));
    expect(budget.basis).toBe('system');
    expect(budget.describe()).toBe('Memory budget initialized: total 16384 MiB, limit 13107 MiB (80%)');
  });

  it('passes exactly at the limit and throws one byte over, with the message form', () => {
    const f = fake(0);
    const budget = new MemoryBudget({ source: f.source, clock: f.clock, cacheMs: 0 });
    f.state.usage = budget.limit;
    expect(() => budget.checkUsage()).not.toThrow();
    expect(budget.withinBudget()).toBe(true);
    expect(budget.usageFraction()).toBe(1);
    f.state.usage = budget.limit + 1;
    expect(budget.withinBudget()).toBe(false);
    let err: unknown;
    try {
      budget.checkUsage();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MemoryBudgetError);
    expect(err).toMatchObject({
      code: 'ERR_MEMORY_BUDGET',
      // The whole MB print alike, so the exact bytes follow.
      message: 'Memory limit exceeded: 13107 MiB / 13107 MiB (80% of system RAM); exactly 13743895348 bytes / 13743895347 bytes',
      currentMB: 13107,
      limitMB: 13107,
    });
  });

  it('a configurable fraction; usage in MB, percent and fraction', () => {
    const f = fake(12500 * MiB);
    const budget = new MemoryBudget({ fraction: 0.75, source: f.source, clock: f.clock });
    expect(budget.limitMB()).toBe(12288);
    expect(budget.currentUsageMB()).toBe(12500);
    expect(budget.usagePercent()).toBeCloseTo((12500 / 12288) * 100, 10);
    expect(() => budget.checkUsage()).toThrow('Memory limit exceeded: 12500 MiB / 12288 MiB (75% of system RAM)');
    expect(budget.status()).toMatchObject({ usageMB: 12500, limitMB: 12288, totalMB: 16384, exceeded: true, fraction: 0.75 });
  });

  it('uses the cgroup limit when one is set below RAM', () => {
    const f = fake(4 * GiB, 16 * GiB, 4 * GiB);
    const budget = new MemoryBudget({ source: f.source, clock: f.clock });
    expect(budget.basis).toBe('cgroup');
    expect(budget.limitMB()).toBe(3276);
    expect(() => budget.checkUsage()).toThrow('Memory limit exceeded: 4096 MiB / 3276 MiB (80% of the cgroup memory limit)');
    const above = new MemoryBudget({ source: fake(0, 16 * GiB, 64 * GiB).source });
    expect(above.basis).toBe('system');
  });

  it('an explicit total', () => {
    const budget = new MemoryBudget({ total: '8GiB', fraction: 0.5, source: fake(5 * GiB).source });
    expect(budget).toMatchObject({ basis: 'configured', limit: 4 * GiB });
    expect(() => budget.checkUsage()).toThrow('Memory limit exceeded: 5120 MiB / 4096 MiB (50% of 8192 MiB)');
  });
});

describe('MemoryBudget: cached readings', () => {
  it('reuses a reading for 500 ms, then reads again', () => {
    const f = fake(1 * GiB);
    const budget = new MemoryBudget({ source: f.source, clock: f.clock });
    expect(budget.cacheMs).toBe(500);
    budget.currentUsage();
    f.state.usage = 2 * GiB;
    f.state.now = 499;
    expect(budget.currentUsage()).toBe(1 * GiB);
    expect(f.state.reads).toBe(1);
    f.state.now = 500;
    expect(budget.currentUsage()).toBe(2 * GiB);
    expect(f.state.reads).toBe(2);
    budget.invalidate();
    budget.currentUsage();
    expect(f.state.reads).toBe(3);
  });

  it('does not cache a failed reading, and an unreadable usage fails closed', () => {
    const f = fake(1 * GiB);
    const budget = new MemoryBudget({ source: f.source, clock: f.clock });
    f.state.fail = new Error('statm unreadable');
    let err: unknown;
    try {
      budget.checkUsage();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MemoryBudgetError);
    expect((err as Error).message).toMatch(/^Memory limit check failed: current usage could not be read \(statm unreadable\)/);
    expect((err as Error).cause).toBe(f.state.fail);
    expect(budget.withinBudget()).toBe(false);
    f.state.fail = null;
    expect(() => budget.checkUsage()).not.toThrow(); // same instant: read again, not cached
    expect(f.state.reads).toBe(3);
  });

  it('a usage that is not a number fails closed', () => {
    const budget = new MemoryBudget({ source: { usage: () => NaN, systemTotal: () => GiB, cgroupLimit: () => null } });
    expect(() => budget.checkUsage()).toThrow(MemoryBudgetError);
  });
});

describe('MemoryBudget: the global budget', () => {
  it('is created lazily on first use from RAM or the cgroup limit', () => {
    const budget = MemoryBudget.get();
    expect(MemoryBudget.get()).toBe(budget);
    const ram = readSystemMemory().total;
    const cg = readCgroup().memoryLimit;
    const base = cg !== null && cg < ram ? cg : ram;
    expect(budget.limit).toBe(Math.floor(base * 0.8));
    expect(budget.currentUsage()).toBeGreaterThan(0);
    expect(() => budget.checkUsage()).not.toThrow();
  });

  it('initialize() replaces it; invalid options leave it in place', () => {
    const before = MemoryBudget.get();
    expect(() => MemoryBudget.initialize({ fraction: 2 })).toThrow(RangeError);
    expect(MemoryBudget.get()).toBe(before);
    const next = MemoryBudget.initialize({ fraction: 0.5 });
    expect(MemoryBudget.get()).toBe(next);
    expect(next.fraction).toBe(0.5);
  });
});

describe('checkpoint()', () => {
  it('is off unless enabled', () => {
    expect(checkpointsEnabled()).toBe(false);
    expect(checkpoint('nothing')).toBeNull();
  });

  it('writes one line with time, thread id, RSS and label to the sink', () => {
    const lines: string[] = [];
    const at = new Date(2024, 0, 2, 14, 23, 45, 123).getTime();
    configureCheckpoints({ enabled: true, sink: (l) => lines.push(l), clock: () => at, rss: () => 245.3 * MiB });
    const line = checkpoint('phase1_complete', '314 resources');
    expect(line).toBe('[14:23:45.123] [thread 0] [mem: 245.3 MiB] CHECKPOINT: phase1_complete - 314 resources');
    checkpoint('tree.rebuild_complete');
    expect(lines).toEqual([line, '[14:23:45.123] [thread 0] [mem: 245.3 MiB] CHECKPOINT: tree.rebuild_complete']);
  });

  it('writes to a stream or appends to a file; real RSS by default', () => {
    const chunks: string[] = [];
    configureCheckpoints({ sink: { write: (c: string) => chunks.push(c) }, clock: Date.now, rss: () => 1 });
    checkpoint('a');
    expect(chunks).toHaveLength(1);
    expect(chunks[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] \[thread 0\] \[mem: 0\.0 MiB\] CHECKPOINT: a\n$/);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rg-cp-')), 'cp.log');
    configureCheckpoints({ file, rss: () => 100 * MiB });
    checkpoint('b', 'x');
    checkpoint('c');
    const text = fs.readFileSync(file, 'utf8').split('\n');
    expect(text).toHaveLength(3);
    expect(text[0]).toMatch(/\[mem: 100\.0 MiB\] CHECKPOINT: b - x$/);
    configureCheckpoints({ enabled: false });
    expect(checkpoint('d')).toBeNull();
    expect(fs.readFileSync(file, 'utf8').split('\n')).toHaveLength(3);
  });

  it('reports the worker thread id and the variable turns it on', async () => {
    const script = `
      const { parentPort } = require('node:worker_threads');
      process.env.RESOURCE_GUARD_CHECKPOINTS = process.env.RG_CP_FILE;
      const { checkpoint, checkpointsEnabled } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'guards', 'index.js'))});
      parentPort.postMessage({ enabled: checkpointsEnabled(), line: checkpoint('in-worker') });`;
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rg-cp-')), 'w.log');
    const worker = new Worker(script, { eval: true, env: { ...process.env, RG_CP_FILE: file } });
    const id = worker.threadId;
    expect(id).toBeGreaterThan(0);
    const exited = new Promise((r) => worker.once('exit', r));
    const msg = await new Promise<{ enabled: boolean; line: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`worker exited with code ${code} before reporting`)));
    });
    await exited;
    expect(msg.enabled).toBe(true);
    expect(msg.line).toMatch(new RegExp(`^\\[[\\d:.]+\\] \\[thread ${id}\\] \\[mem: [\\d.]+ MiB\\] CHECKPOINT: in-worker$`));
    expect(fs.readFileSync(file, 'utf8')).toBe(`${msg.line}\n`);
  });
});

describe('estimateMemory()', () => {
  it('batch peak, streaming peak and a recommended limit of twice the peak', () => {
    expect(estimateMemory({ items: 1_000_000, bytesPerItem: 512, batchSize: 10_000, fixedBytes: '64MiB' })).toEqual({
      batchPeak: 64 * MiB + 512_000_000,
      streamingPeak: 64 * MiB + 5_120_000,
      recommendedLimit: 2 * (64 * MiB + 512_000_000),
      recommendedStreamingLimit: 2 * (64 * MiB + 5_120_000),
    });
  });

  it('streaming never holds more items than there are; headroom is configurable', () => {
    const e = estimateMemory({ items: 10, bytesPerItem: '1KiB', batchSize: 10_000, headroom: 1.5 });
    expect(e.streamingPeak).toBe(10 * 1024);
    expect(e.batchPeak).toBe(10 * 1024);
    expect(e.recommendedLimit).toBe(15 * 1024);
  });

  it('defaults: batch of 10 000, no fixed bytes', () => {
    expect(estimateMemory({ items: 20_000, bytesPerItem: 100 })).toMatchObject({ batchPeak: 2_000_000, streamingPeak: 1_000_000 });
  });
});
