// Event-loop delay windows: a stall is counted in the window it falls in,
// including a stall that begins right after a window starts (Node's
// monitorEventLoopDelay forgets its timer's last run on reset(), so the
// first interval of every window used to be lost), and the timer stops with
// its last window.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, test, vi } from 'vitest';
import { CpuMonitor, createResourceSampler } from '../src/index';
import { LoopDelayWindow, liveLoopDelayWindows, loopDelayTimers } from '../src/loop-delay';

function block(ms: number): void {
  const t = performance.now();
  while (performance.now() - t < ms) {
    // the event loop is blocked
  }
}

describe('event-loop delay windows', () => {
  test('health figures: a stall that begins as a window starts is in that window', async () => {
    const sample = createResourceSampler({ eventLoopResolutionMs: 10, eventLoopWindowMs: 0, cpu: false, psi: false });
    try {
      await sleep(50);
      sample(); // starts a new window
      block(120);
      await sleep(30);
      const f = sample();
      expect(f.eventLoop).not.toBeNull();
      expect(f.eventLoop!.maxMs).toBeGreaterThanOrEqual(100);
    } finally {
      sample.close();
    }
  });

  test('CpuMonitor: a stall that begins as a window starts is in that window', async () => {
    const monitor = new CpuMonitor({ sampleIntervalMs: 1 });
    try {
      await sleep(30);
      monitor.sample(); // starts a new window
      block(120);
      await sleep(30);
      const s = monitor.sample();
      expect(s.eventLoopLagMaxMs).toBeGreaterThanOrEqual(100);
    } finally {
      monitor.close();
    }
  });

  test('CpuMonitor: a stall before the timer first ran is counted', async () => {
    const monitor = new CpuMonitor({ sampleIntervalMs: 1 });
    try {
      block(120);
      await sleep(30);
      expect(monitor.sample().eventLoopLagMaxMs).toBeGreaterThanOrEqual(100);
    } finally {
      monitor.close();
    }
  });

  test('a window records the intervals of its timer; reset() keeps the interval in progress; close() stops it', async () => {
    const w = new LoopDelayWindow(5);
    expect(w.count).toBe(0);
    expect(w.max).toBeNaN();
    await sleep(40);
    expect(w.count).toBeGreaterThan(0);
    expect(w.mean).toBeGreaterThan(1e6); // nanoseconds: the timer asks for 5 ms
    w.reset();
    expect(w.count).toBe(0);
    block(60);
    await sleep(20);
    expect(w.max).toBeGreaterThanOrEqual(60e6);
    expect(w.percentile(100)).toBe(w.max);
    const timers = loopDelayTimers();
    w.close();
    w.close();
    expect(loopDelayTimers()).toBe(timers - 1);
    const after = w.count;
    await sleep(20);
    expect(w.count).toBe(after);
    expect(w.max).toBeNaN();
  });

  test('a CpuMonitor and a health sampler close their windows; the timer stops with the last', () => {
    const before = liveLoopDelayWindows();
    const monitor = new CpuMonitor();
    const sample = createResourceSampler({ cpu: false, psi: false });
    const quiet = new CpuMonitor({ eventLoop: false });
    expect(liveLoopDelayWindows()).toBe(before + 2);
    expect(loopDelayTimers()).toBeGreaterThan(0);
    monitor.close();
    sample.close();
    quiet.close();
    expect(liveLoopDelayWindows()).toBe(before);
    if (before === 0) expect(loopDelayTimers()).toBe(0);
  });

  test('a window collected without close() stops being fed, and the timer stops', () => {
    const dist = path.join(__dirname, '..', 'dist', 'loop-delay.js');
    const script = `
      const { LoopDelayWindow, liveLoopDelayWindows, loopDelayTimers } = require(${JSON.stringify(dist)});
      (() => { new LoopDelayWindow(3); })();
      const seen = [liveLoopDelayWindows(), loopDelayTimers()];
      setTimeout(() => {
        globalThis.gc();
        setTimeout(() => {
          console.log(JSON.stringify({ seen, windows: liveLoopDelayWindows(), timers: loopDelayTimers() }));
        }, 30);
      }, 10);
    `;
    const out = execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ seen: [1, 1], windows: 0, timers: 0 });
  });

  test("a test's fake timers do not stop the measurement", async () => {
    // Node's own histogram ran on a native timer; the window's timer comes
    // from node:timers, so faking the global timers leaves it running.
    vi.useFakeTimers();
    try {
      const w = new LoopDelayWindow(4);
      await sleep(40); // node:timers/promises: not faked
      expect(w.count).toBeGreaterThan(0);
      w.close();
    } finally {
      vi.useRealTimers();
    }
  });
});
