// WebAssembly tasks: a module built here from bytes grows its memory until
// the engine refuses, and the run fails with WasmMemoryLimitError at exactly
// the page limit while the caller carries on; byte limits round down to whole
// pages and a limit below one page is refused before any worker starts.
import { describe, expect, test } from 'vitest';
import {
  WASM_PAGE_SIZE,
  WasmMemoryLimitError,
  activeRuns,
  capWasmMemory,
  reportOf,
  runWasmWithLimits,
  wasmPagesFor,
} from '../src/index';
import { codeOf } from './helpers';

const str = (s: string): number[] => [s.length, ...Buffer.from(s)];
const section = (id: number, payload: number[]): number[] => [id, payload.length, ...payload];

/**
 * (memory (export "memory") <memory>)
 * (func (export "fill") (result i32) (loop (br_if 0 (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))) unreachable)
 * (func (export "answer") (result i32) (i32.const 42))
 * (func (export "pages") (result i32) (memory.size))
 */
function moduleBytes(memory: number[] = [0x00, 0x01], importMemory = false): Uint8Array {
  const fill = [0x00, 0x03, 0x40, 0x41, 0x01, 0x40, 0x00, 0x41, 0x7f, 0x47, 0x0d, 0x00, 0x0b, 0x00, 0x0b];
  const answer = [0x00, 0x41, 0x2a, 0x0b];
  const pages = [0x00, 0x3f, 0x00, 0x0b];
  const exports = [
    [...str('fill'), 0x00, 0x00],
    [...str('answer'), 0x00, 0x01],
    [...str('pages'), 0x00, 0x02],
    ...(importMemory ? [] : [[...str('memory'), 0x02, 0x00]]),
  ];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [0x01, 0x60, 0x00, 0x01, 0x7f]),
    ...(importMemory ? section(2, [0x01, ...str('env'), ...str('memory'), 0x02, ...memory]) : []),
    ...section(3, [0x03, 0x00, 0x00, 0x00]),
    ...(importMemory ? [] : section(5, [0x01, ...memory])),
    ...section(7, [exports.length, ...exports.flat()]),
    ...section(10, [0x03, fill.length, ...fill, answer.length, ...answer, pages.length, ...pages]),
  ]);
}

describe('page limits', () => {
  test('a byte limit converts to whole pages, rounding down; below one page is refused', () => {
    expect(wasmPagesFor(WASM_PAGE_SIZE)).toBe(1);
    expect(wasmPagesFor(4 * WASM_PAGE_SIZE + WASM_PAGE_SIZE - 1)).toBe(4);
    expect(wasmPagesFor('256KiB')).toBe(4);
    expect(codeOf(() => wasmPagesFor(WASM_PAGE_SIZE - 1))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => wasmPagesFor(0))).toBe('ERR_OUT_OF_RANGE');
    expect(wasmPagesFor('64GiB')).toBe(65_536);
  });

  test('the cap is written into the module; a minimum above it is refused', () => {
    const { memory } = capWasmMemory(moduleBytes(), 3);
    expect(memory).toMatchObject({ kind: 'defined', min: 1, max: null });
    // declared max 10, cap 3 → max 3; declared max 2, cap 3 → stays 2
    expect(capWasmMemory(moduleBytes([0x01, 0x01, 0x0a]), 3).memory.max).toBe(10);
    let err: unknown;
    try {
      capWasmMemory(moduleBytes([0x00, 0x05]), 4);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WasmMemoryLimitError);
    expect(err).toMatchObject({ code: 'ERR_WASM_MEMORY_LIMIT', limitPages: 4, usedPages: 5, phase: 'start' });
    expect(codeOf(() => capWasmMemory(Uint8Array.from([1, 2, 3]), 4))).toBe('ERR_WASM_MODULE');
  });

  test('bad tasks are refused before any worker starts', async () => {
    const before = activeRuns();
    await expect(runWasmWithLimits({ wasm: moduleBytes(), export: 'fill', memory: 1000 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(runWasmWithLimits({ wasm: moduleBytes([0x00, 0x03]), memory: { pages: 2 } })).rejects.toBeInstanceOf(WasmMemoryLimitError);
    await expect(runWasmWithLimits({ wasm: 'relative.wasm', memory: '1MiB' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(activeRuns()).toBe(before);
  });
});

describe('running', () => {
  test('a module that grows past its page limit fails with WasmMemoryLimitError and the caller survives', async () => {
    let err: unknown;
    try {
      await runWasmWithLimits({ wasm: moduleBytes(), export: 'fill', memory: 4 * WASM_PAGE_SIZE + 100 }, { timeout: 20_000 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WasmMemoryLimitError);
    expect(err).toMatchObject({ code: 'ERR_WASM_MEMORY_LIMIT', limitPages: 4, usedPages: 4, phase: 'grow' });
    const report = reportOf(err)!;
    expect(report.exitReason).toBe('wasm-memory');
    expect(report.ok).toBe(false);
    // The caller carries on: the next task runs.
    const ok = await runWasmWithLimits({ wasm: moduleBytes(), export: 'answer', memory: { pages: 4 } });
    expect(ok.value).toBe(42);
    expect(ok).toMatchObject({ memoryPages: 1, memoryLimitPages: 4 });
    expect(ok.report.exitReason).toBe('completed');
  });

  test('an imported memory gets the cap as its maximum', async () => {
    await expect(
      runWasmWithLimits({ wasm: moduleBytes([0x00, 0x02], true), export: 'fill', memory: { pages: 3 } }),
    ).rejects.toMatchObject({ code: 'ERR_WASM_MEMORY_LIMIT', limitPages: 3, usedPages: 3 });
    const r = await runWasmWithLimits<number>({ wasm: moduleBytes([0x00, 0x02], true), export: 'pages', memory: { pages: 3 } });
    expect(r.value).toBe(2);
  });

  test('time limits apply to WebAssembly tasks too', async () => {
    // An endless loop: (loop (br 0))
    const spin = [0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x41, 0x00, 0x0b];
    const bytes = Uint8Array.from([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
      ...section(1, [0x01, 0x60, 0x00, 0x01, 0x7f]),
      ...section(3, [0x01, 0x00]),
      ...section(5, [0x01, 0x00, 0x01]),
      ...section(7, [0x01, ...str('main'), 0x00, 0x00]),
      ...section(10, [0x01, spin.length, ...spin]),
    ]);
    await expect(runWasmWithLimits({ wasm: bytes, memory: '1MiB' }, { timeout: 200 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
  });
});
