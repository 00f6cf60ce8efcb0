// The snapshot keeps advancing while this thread is stuck in a synchronous
// loop: the sampler is a native thread, not a timer on the event loop.
import { describe, expect, test } from 'vitest';
import { ensureSampler, readSnapshot, setSamplerInterval, SnapshotField, snapshotView } from '../src/index';

describe('sampler freshness', () => {
  // Nothing here depends on how fast the machine is: the loops wait for a
  // number of new samples (with a generous bound that only a stopped sampler
  // reaches), and the checks are on order and on lower bounds that the
  // sampler's schedule guarantees (it never samples faster than its interval).

  /** Consistent (seq, stamp) pairs read under the sequence lock, `count` new ones, in a synchronous loop. */
  function samplesDuringSyncLoop(count: number): { seqs: number[]; stamps: number[]; startMs: number } {
    const seqs: number[] = [];
    const stamps: number[] = [];
    let lastSeq = snapshotView[SnapshotField.seq]!;
    const startMs = Number(process.hrtime.bigint()) / 1e6;
    const bound = process.hrtime.bigint() + 60_000_000_000n;
    while (seqs.length < count && process.hrtime.bigint() < bound) {
      // Sequence lock: the stamp belongs to `seq` only if `seq` is even and
      // unchanged after the stamp is read; otherwise a write was under way.
      const seq = snapshotView[SnapshotField.seq]!;
      if (seq === lastSeq || seq % 2 !== 0) continue;
      const stamp = snapshotView[SnapshotField.timestampMs]!;
      if (snapshotView[SnapshotField.seq] !== seq) continue;
      lastSeq = seq;
      seqs.push(seq);
      stamps.push(stamp);
    }
    return { seqs, stamps, startMs };
  }

  test('sequence and timestamp keep moving while this thread is stuck in a synchronous loop', () => {
    ensureSampler();
    setSamplerInterval(10);
    const { seqs, stamps, startMs } = samplesDuringSyncLoop(12);
    // A timer on this thread's event loop could not have moved at all.
    expect(seqs.length).toBe(12);
    for (let i = 1; i < seqs.length; i++) {
      expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
      expect(stamps[i]).toBeGreaterThan(stamps[i - 1]!);
    }
    // Never faster than the interval: samples sit on a grid of deadlines one
    // interval apart (a late one is not followed by a burst), so n samples
    // span at least n - 2 intervals, however late any single one was.
    expect(stamps[stamps.length - 1]! - stamps[0]!).toBeGreaterThanOrEqual((stamps.length - 2) * 10 - 0.5);
    // Timestamps are CLOCK_MONOTONIC, the clock of process.hrtime: every
    // sample seen was taken after the loop started and before now.
    const nowMs = Number(process.hrtime.bigint()) / 1e6;
    expect(stamps[stamps.length - 1]!).toBeLessThanOrEqual(nowMs);
    expect(stamps[1]!).toBeGreaterThanOrEqual(startMs);
  });

  test('a longer interval is honoured and can be set back', () => {
    setSamplerInterval(50);
    expect(readSnapshot().intervalMs).toBe(50);
    samplesDuringSyncLoop(1); // the first sample on the new schedule
    const { stamps } = samplesDuringSyncLoop(4);
    expect(stamps.length).toBe(4);
    // As above: 4 samples on the 50 ms grid span at least 2 intervals.
    expect(stamps[3]! - stamps[0]!).toBeGreaterThanOrEqual(2 * 50 - 0.5);
    setSamplerInterval(10);
    expect(readSnapshot().intervalMs).toBe(10);
    expect(() => setSamplerInterval(0.5)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => setSamplerInterval(NaN)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => setSamplerInterval('10' as unknown as number)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  test("the host's CPU times are read at most every 100 ms and stay those of their read in between", () => {
    ensureSampler();
    setSamplerInterval(1);
    // Consistent snapshots, one per sample seen, until three reads of the
    // host's CPU times are in view (so at least two spacings between reads).
    const seen: ReturnType<typeof readSnapshot>[] = [];
    const reads = new Set<number>();
    let last = -1;
    const bound = process.hrtime.bigint() + 20_000_000_000n;
    while (reads.size < 3 && process.hrtime.bigint() < bound) {
      const s = readSnapshot();
      if (s.samples === last) continue;
      last = s.samples;
      seen.push(s);
      if (!Number.isNaN(s.sysCpuMs)) reads.add(s.sysCpuMs);
    }
    setSamplerInterval(10);
    expect(reads.size).toBe(3);
    const times = [...reads].sort((a, b) => a - b);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(100);
    for (const s of seen) {
      if (Number.isNaN(s.sysCpuMs)) continue;
      // As of their read, which is no later than the sample that carries them.
      expect(s.sysCpuMs).toBeLessThanOrEqual(s.timestampMs);
      expect(s.sysLoad).toBeGreaterThan(0);
      expect(s.sysLoad).toBeLessThanOrEqual(1);
    }
    // Between two reads every sample carries the same figures.
    const byRead = new Map<number, string>();
    for (const s of seen) {
      const figures = JSON.stringify([s.sysBusyUs, s.sysIdleUs, s.sysLoad]);
      const before = byRead.get(s.sysCpuMs);
      if (before === undefined) byRead.set(s.sysCpuMs, figures);
      else expect(figures).toBe(before);
    }
  });
});
