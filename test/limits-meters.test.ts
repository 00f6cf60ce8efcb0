// The sandbox meters at their exact boundaries, with time from a manual
// clock: sliding windows (a refused request does not consume the window),
// memory growth in bytes and pages, IO read/write rates through the IO meter,
// open files and threads (over-release refused), the network meter against a
// loopback server, and the idle watch naming the limit that ended the run.
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { IoMeter } from '../src/limits/io';
import { GrowthRateMeter, IdleWatch, NetworkMeter, SlidingWindow, ThreadMeter, TimeoutError } from '../src/index';
import { codeOf } from './helpers';
import { ManualTime } from './manual-time';

describe('SlidingWindow', () => {
  test('a unit taken at t counts until t + window, exclusive; refusals take nothing', () => {
    const t = new ManualTime();
    const w = new SlidingWindow(10, 1000, t.clock);
    expect(w.tryTake(6)).toBe(true);
    t.now += 500;
    expect(w.tryTake(4)).toBe(true);
    expect(w.tryTake(1)).toBe(false); // refused: does not consume
    expect(w.used()).toBe(10);
    t.now += 499; // 999 ms after the first take
    expect(w.tryTake(1)).toBe(false);
    t.now += 1; // exactly 1000 ms: the first 6 have left
    expect(w.used()).toBe(4);
    expect(w.tryTake(6)).toBe(true);
    expect(w.tryTake(1)).toBe(false);
  });

  test('entries stay bounded over a long run', () => {
    const t = new ManualTime();
    const w = new SlidingWindow(1_000_000, 100, t.clock);
    for (let i = 0; i < 100_000; i++) {
      w.tryTake(1);
      t.now += 1;
    }
    expect(w.entries).toBeLessThanOrEqual(100);
  });

  test('bad arguments are typed errors', () => {
    expect(codeOf(() => new SlidingWindow(-1, 10))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new SlidingWindow(1, 0))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => new SlidingWindow(1, 10, 5 as never))).toBe('ERR_INVALID_ARG_TYPE');
  });
});

describe('GrowthRateMeter', () => {
  test('bytes per window, refused whole with ERR_MEMORY_GROWTH_RATE', () => {
    const t = new ManualTime();
    const m = new GrowthRateMeter({ limit: 1000, windowMs: 100, clock: t.clock });
    m.grow(600);
    m.grow(400);
    let err: unknown;
    try {
      m.grow(1);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'ERR_MEMORY_GROWTH_RATE', limit: 1000, used: 1000, requested: 1, windowMs: 100, unit: 'bytes' });
    expect(m.total).toBe(1000);
    t.now += 100;
    m.grow(1000);
    expect(m.total).toBe(2000);
  });

  test('in 64 KiB pages', () => {
    const t = new ManualTime();
    const m = new GrowthRateMeter({ limit: 4, windowMs: 1000, unit: 'pages', clock: t.clock });
    expect(m.tryGrow(3)).toBe(true);
    expect(m.tryGrow(2)).toBe(false);
    expect(m.tryGrow(1)).toBe(true);
    expect(m.totalBytes).toBe(4 * 65_536);
    expect(codeOf(() => new GrowthRateMeter({ limit: 4, windowMs: 10, unit: 'kb' as never }))).toBe('ERR_OUT_OF_RANGE');
  });
});

describe('IO rates through the IO meter', () => {
  test('write and read rates per window, besides totals; refused ops are not counted', () => {
    const t = new ManualTime();
    const io = new IoMeter({ writeLimit: 10_000, writeRate: { bytes: 100, windowMs: 1000 }, readRate: { bytes: 50, windowMs: 500 }, clock: t.clock });
    io.chargeWrite(100);
    let err: unknown;
    try {
      io.chargeWrite(1);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'ERR_IO_RATE', limit: 100, used: 100, requested: 1, windowMs: 1000 });
    expect(io.written).toBe(100);
    t.now += 1000;
    io.chargeWrite(100);
    expect(io.written).toBe(200);
    io.chargeRead(50);
    expect(codeOf(() => io.chargeRead(1))).toBe('ERR_IO_RATE');
    expect(io.read).toBe(50);
    t.now += 500;
    io.chargeRead(50);
    expect(io.readInWindow).toBe(50);
  });

  test('a write refused by the total does not consume the rate window', () => {
    const t = new ManualTime();
    const io = new IoMeter({ writeLimit: 150, writeRate: { bytes: 100, windowMs: 1000 }, clock: t.clock });
    io.chargeWrite(90);
    expect(codeOf(() => io.chargeWrite(61))).toBe('ERR_IO_LIMIT');
    expect(io.writtenInWindow).toBe(90);
    io.chargeWrite(10);
    expect(io.written).toBe(100);
  });

  test('a file read larger than the window is refused before reading', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-io-'));
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, Buffer.alloc(64));
    const io = new IoMeter({ readRate: { bytes: 63, windowMs: 1000 } });
    expect(codeOf(() => io.readFileSync(file))).toBe('ERR_IO_RATE');
    expect(io.read).toBe(0);
    fs.rmSync(dir, { recursive: true });
  });
});

describe('open files through the IO meter', () => {
  test('the limit is exact and over-release is refused', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-files-'));
    const io = new IoMeter({ openFiles: 2 });
    const a = io.openSync(path.join(dir, 'a'), 'w');
    const b = await io.open(path.join(dir, 'b'), 'w');
    expect(io.openFiles).toBe(2);
    let err: unknown;
    try {
      io.openSync(path.join(dir, 'c'), 'w');
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'ERR_OPEN_FILES_LIMIT', limit: 2, used: 2, requested: 1 });
    expect(fs.existsSync(path.join(dir, 'c'))).toBe(false);
    await b.close();
    await b.close(); // counted once
    expect(io.openFiles).toBe(1);
    expect(codeOf(() => io.closeSync(9999))).toBe('ERR_OVER_RELEASE');
    io.closeSync(a);
    expect(io.openFiles).toBe(0);
    expect(codeOf(() => io.releaseFiles(1))).toBe('ERR_OVER_RELEASE');
    expect(io.openFiles).toBe(0);
    expect(io.peakOpenFiles).toBe(2);
    // a failed open gives its slot back
    await expect(io.open(path.join(dir, 'missing', 'x'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(io.openFiles).toBe(0);
    fs.rmSync(dir, { recursive: true });
  });
});

describe('ThreadMeter', () => {
  test('workers are counted until they exit; one more than the limit is refused', async () => {
    const threads = new ThreadMeter({ threads: 1 });
    const w = threads.startWorker('setTimeout(() => {}, 50)', { eval: true } as never);
    expect(threads.running).toBe(1);
    expect(codeOf(() => threads.startWorker('0', { eval: true } as never))).toBe('ERR_THREADS_LIMIT');
    expect(threads.started).toBe(1);
    await new Promise((r) => w.once('exit', r));
    expect(threads.running).toBe(0);
    const w2 = threads.startWorker('0', { eval: true } as never);
    await new Promise((r) => w2.once('exit', r));
    expect(threads).toMatchObject({ running: 0, started: 2, peak: 1 });
  });
});

describe('NetworkMeter (loopback)', () => {
  let server: http.Server;
  let url = '';
  let release: (() => void) | null = null;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/slow') {
        release = () => res.end('late');
        return;
      }
      req.resume();
      req.on('end', () => res.end('x'.repeat(100)));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  test('bytes received and sent are charged; over the budget is refused', async () => {
    const net = new NetworkMeter({ bytesReceived: 250, bytesSent: 10 });
    const r = await net.fetch(`${url}/a`, { method: 'POST', body: 'hello' });
    expect(await r.text()).toHaveLength(100);
    expect(net).toMatchObject({ bytesSent: 5, bytesReceived: 100, requests: 1, connections: 0 });
    await net.fetch(`${url}/b`);
    await expect(net.fetch(`${url}/c`)).rejects.toMatchObject({ code: 'ERR_NETWORK_BYTES_LIMIT', limit: 250, used: 200, requested: 100 });
    expect(net.bytesReceived).toBe(200);
    await expect(net.fetch(`${url}/d`, { method: 'POST', body: 'abcdef' })).rejects.toMatchObject({ code: 'ERR_NETWORK_BYTES_LIMIT', requested: 6 });
    expect(net.bytesSent).toBe(5);
    expect(net.connections).toBe(0);
  });

  test('concurrent connections and requests per second, with a manual clock', async () => {
    const t = new ManualTime();
    const net = new NetworkMeter({ connections: 1, requestsPerSecond: 2, clock: t.clock });
    const slow = net.fetch(`${url}/slow`);
    await expect(net.fetch(`${url}/x`)).rejects.toMatchObject({ code: 'ERR_CONNECTIONS_LIMIT', limit: 1, used: 1 });
    for (let i = 0; i < 1000 && release === null; i++) await new Promise((r) => setTimeout(r, 10));
    release!();
    expect(await (await slow).text()).toBe('late');
    await net.fetch(`${url}/y`);
    // two requests within the same second: the third is refused and not counted
    await expect(net.fetch(`${url}/z`)).rejects.toMatchObject({ code: 'ERR_NETWORK_RATE', limit: 2, used: 2 });
    expect(net.requests).toBe(2);
    t.now += 1000;
    await net.fetch(`${url}/z`);
    expect(net.requests).toBe(3);
  });
});

describe('IdleWatch', () => {
  test('idle exactly idleMs is alive; one more ms ends it with operation idle', () => {
    const t = new ManualTime();
    const fired: TimeoutError[] = [];
    const w = new IdleWatch({ idleMs: 100, onIdle: (e) => fired.push(e), clock: t.clock, timers: t });
    t.advance(60);
    w.touch();
    t.advance(100); // 100 ms since the touch
    expect(fired).toHaveLength(0);
    t.advance(1);
    expect(fired).toHaveLength(1);
    expect(fired[0]).toBeInstanceOf(TimeoutError);
    expect(fired[0]).toMatchObject({ code: 'ERR_TIMEOUT', operation: 'idle', limit: 100, used: 101 });
    expect(fired[0]!.message).toMatch(/^Idle timeout/);
    expect(t.pending).toBe(0);
  });

  test('meter activity keeps the task alive', () => {
    const t = new ManualTime();
    const fired: unknown[] = [];
    const w = new IdleWatch({ idleMs: 50, onIdle: (e) => fired.push(e), clock: t.clock, timers: t });
    const io = new IoMeter({ onActivity: w.touch });
    for (let i = 0; i < 10; i++) {
      t.advance(40);
      io.chargeWrite(1);
    }
    expect(fired).toHaveLength(0);
    w.close();
    expect(t.pending).toBe(0);
  });

  test('a throwing callback does not escape the timer', () => {
    const t = new ManualTime();
    new IdleWatch({
      idleMs: 5,
      onIdle: () => {
        throw new Error('listener bug');
      },
      clock: t.clock,
      timers: t,
    });
    expect(() => t.advance(10)).not.toThrow();
  });
});
