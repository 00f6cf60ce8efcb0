// The snapshot keeps advancing while this thread is stuck in a synchronous
// loop: the sampler is a native thread, not a timer on the event loop.
import { describe, expect, test } from 'vitest';
import { ensureSampler, readSnapshot, setSamplerInterval, SnapshotField, snapshotView } from '../src/index';

describe('sampler freshness', () => {
  test('sequence and timestamp move at the sampler interval during a 200 ms synchronous loop', () => {
    ensureSampler();
    setSamplerInterval(10);
    const seqs: number[] = [];
    const stamps: number[] = [];
    let lastSeq = -1;
    const start = process.hrtime.bigint();
    const until = start + 200_000_000n;
    while (process.hrtime.bigint() < until) {
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
    // 200 ms at 10 ms is ~20 samples; a loaded 2-core machine may delay some.
    expect(seqs.length).toBeGreaterThanOrEqual(10);
    for (let i = 1; i < seqs.length; i++) {
      expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
      expect(stamps[i]).toBeGreaterThan(stamps[i - 1]!);
    }
    const gaps = stamps.slice(1).map((t, i) => t - stamps[i]!).sort((a, b) => a - b);
    const median = gaps[gaps.length >> 1]!;
    expect(median).toBeGreaterThanOrEqual(9);
    expect(median).toBeLessThan(30);
    // Timestamps are CLOCK_MONOTONIC, the clock of process.hrtime.
    const nowMs = Number(process.hrtime.bigint()) / 1e6;
    expect(Math.abs(nowMs - stamps[stamps.length - 1]!)).toBeLessThan(100);
  });

  test('a longer interval is honoured and can be set back', async () => {
    setSamplerInterval(50);
    await new Promise((r) => setTimeout(r, 60));
    const a = readSnapshot();
    await new Promise((r) => setTimeout(r, 220));
    const b = readSnapshot();
    expect(b.intervalMs).toBe(50);
    const samples = (b.seq - a.seq) / 2;
    expect(samples).toBeGreaterThanOrEqual(2);
    expect(samples).toBeLessThanOrEqual(7);
    setSamplerInterval(10);
    expect(() => setSamplerInterval(0.5)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => setSamplerInterval(NaN)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => setSamplerInterval('10' as unknown as number)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});
