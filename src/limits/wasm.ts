/**
 * WebAssembly tasks: a `.wasm` module run in a limited worker, its linear
 * memory capped in 64 KiB pages, under the same time, CPU, heap and fuel
 * limits and with the same usage report as any other task.
 *
 * The cap is written into the module itself before it is compiled: the
 * memory section's (or memory import's) maximum is set to the cap, so
 * `memory.grow` past it fails inside the engine (it returns −1) whatever the
 * module declared. A module whose *minimum* is above the cap is refused
 * before any worker starts. When a call traps with its memory at the cap,
 * the run fails with {@link WasmMemoryLimitError} (`ERR_WASM_MEMORY_LIMIT`),
 * the worker is stopped and the caller carries on.
 *
 * A byte limit converts to whole pages, rounding down; a limit below one
 * page (65,536 bytes) is refused.
 *
 * The module may import its memory (it is then given one with the cap as
 * its maximum) but no other import: functions cannot cross into the worker.
 * Its memory is measured when it is exported or imported; a module whose
 * memory is private is still capped, but a trap cannot be told apart from
 * any other and is reported as the engine's `RuntimeError`.
 *
 * @module
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InvalidArgTypeError, InvalidArgValueError, OutOfRangeError, ResourceError } from '../errors';
import { parseSize, validateObject, validateString, type Size } from '../validate';
import { runWithLimits, type RunOptions, type RunResult } from './run';
import type { Limits, ProfileName, UsageReport } from './types';

/** The engine's WebAssembly API (not in the compile-time library this package targets). */
const wasmApi = (globalThis as unknown as { WebAssembly: { validate(bytes: Uint8Array): boolean } }).WebAssembly;

/** Bytes in one WebAssembly page. */
export const WASM_PAGE_SIZE = 65_536;
/** Most pages a 32-bit memory can have (4 GiB). */
export const WASM_MAX_PAGES = 65_536;

/** A WebAssembly task's memory went past its page limit. */
export class WasmMemoryLimitError extends ResourceError {
  declare readonly report?: UsageReport;

  constructor(
    /** The cap, pages. */
    readonly limitPages: number,
    /** Pages the memory had (or needed, for a minimum above the cap). */
    readonly usedPages: number,
    /** `start`: the module's minimum is above the cap; `grow`: it trapped at the cap. */
    readonly phase: 'start' | 'grow',
  ) {
    super(
      'ERR_WASM_MEMORY_LIMIT',
      phase === 'start'
        ? `The WebAssembly module needs at least ${usedPages} pages of memory, above its limit of ${limitPages} pages (${limitPages * WASM_PAGE_SIZE} bytes)`
        : `The WebAssembly task trapped with its memory at its limit of ${limitPages} pages (${limitPages * WASM_PAGE_SIZE} bytes)`,
    );
  }
}

/** The module is not valid WebAssembly, or uses what a limited task cannot have. */
export class WasmModuleError extends ResourceError {
  constructor(message: string) {
    super('ERR_WASM_MODULE', message);
  }
}

/**
 * Whole pages within `limit` bytes (a number or a size string), rounding
 * down. A limit below one page is refused with `ERR_OUT_OF_RANGE`; above
 * 4 GiB it is capped at 65,536 pages.
 */
export function wasmPagesFor(limit: Size, name = 'limit'): number {
  const bytes = parseSize(limit, name);
  if (bytes < WASM_PAGE_SIZE) throw new OutOfRangeError(name, `at least ${WASM_PAGE_SIZE} bytes (one WebAssembly page)`, limit);
  return Math.min(WASM_MAX_PAGES, Math.floor(bytes / WASM_PAGE_SIZE));
}

/** Where the module's memory is. */
export interface WasmMemoryInfo {
  /** `import` (with its module and field names), `defined` by the module, or `none`. */
  kind: 'import' | 'defined' | 'none';
  module?: string;
  field?: string;
  min: number;
  /** The declared maximum, or null. */
  max: number | null;
  shared: boolean;
}

/**
 * Returns a copy of `bytes` whose memory maximum is at most `maxPages`, with
 * what it found. Refuses a module that is not valid WebAssembly, has a
 * non-memory import, a 64-bit memory, or a minimum above the cap.
 */
export function capWasmMemory(bytes: Uint8Array, maxPages: number): { bytes: Uint8Array; memory: WasmMemoryInfo } {
  if (!(bytes instanceof Uint8Array)) throw new InvalidArgTypeError('bytes', 'an instance of Uint8Array', bytes);
  if (!Number.isInteger(maxPages) || maxPages < 1 || maxPages > WASM_MAX_PAGES) {
    throw new OutOfRangeError('maxPages', `an integer >= 1 and <= ${WASM_MAX_PAGES}`, maxPages);
  }
  if (!wasmApi.validate(bytes)) throw new WasmModuleError('The bytes are not a valid WebAssembly module');
  const out: number[] = Array.from(bytes.subarray(0, 8));
  let memory: WasmMemoryInfo = { kind: 'none', min: 0, max: null, shared: false };
  let pos = 8;
  while (pos < bytes.length) {
    const id = bytes[pos]!;
    const [size, sizeEnd] = readU32(bytes, pos + 1);
    const start = sizeEnd;
    const end = start + size;
    if (id === 2 || id === 5) {
      const { payload, found } = id === 2 ? rewriteImports(bytes, start, end, maxPages) : rewriteMemories(bytes, start, end, maxPages);
      if (found !== null) memory = found;
      out.push(id, ...writeU32(payload.length), ...payload);
    } else {
      for (let i = pos; i < end; i++) out.push(bytes[i]!);
    }
    pos = end;
  }
  if (memory.kind !== 'none' && memory.min > maxPages) throw new WasmMemoryLimitError(maxPages, memory.min, 'start');
  return { bytes: Uint8Array.from(out), memory };
}

function rewriteImports(b: Uint8Array, start: number, end: number, cap: number): { payload: number[]; found: WasmMemoryInfo | null } {
  const payload: number[] = [];
  let [count, p] = readU32(b, start);
  payload.push(...writeU32(count));
  let found: WasmMemoryInfo | null = null;
  while (count-- > 0) {
    const [modLen, m0] = readU32(b, p);
    const moduleName = Buffer.from(b.subarray(m0, m0 + modLen)).toString('utf8');
    const [fieldLen, f0] = readU32(b, m0 + modLen);
    const fieldName = Buffer.from(b.subarray(f0, f0 + fieldLen)).toString('utf8');
    const kindAt = f0 + fieldLen;
    for (let i = p; i <= kindAt; i++) payload.push(b[i]!);
    const kind = b[kindAt]!;
    if (kind !== 2) {
      throw new WasmModuleError(
        `The WebAssembly module imports ${JSON.stringify(`${moduleName}.${fieldName}`)} (${['a function', 'a table', 'memory', 'a global', 'a tag'][kind] ?? 'something'}); a limited task may import only its memory`,
      );
    }
    const { bytes: limits, next, min, max, shared } = capLimits(b, kindAt + 1, cap);
    payload.push(...limits);
    found = { kind: 'import', module: moduleName, field: fieldName, min, max, shared };
    p = next;
  }
  if (p !== end) throw new WasmModuleError('The WebAssembly import section could not be read');
  return { payload, found };
}

function rewriteMemories(b: Uint8Array, start: number, end: number, cap: number): { payload: number[]; found: WasmMemoryInfo | null } {
  const payload: number[] = [];
  let [count, p] = readU32(b, start);
  payload.push(...writeU32(count));
  let found: WasmMemoryInfo | null = null;
  while (count-- > 0) {
    const { bytes: limits, next, min, max, shared } = capLimits(b, p, cap);
    payload.push(...limits);
    found ??= { kind: 'defined', min, max, shared };
    p = next;
  }
  if (p !== end) throw new WasmModuleError('The WebAssembly memory section could not be read');
  return { payload, found };
}

/** Reads memory limits at `p` and writes them with the maximum capped. */
function capLimits(b: Uint8Array, p: number, cap: number): { bytes: number[]; next: number; min: number; max: number | null; shared: boolean } {
  const flags = b[p]!;
  if (flags & 0x04) throw new WasmModuleError('The WebAssembly module has a 64-bit memory, which a page limit does not cover yet');
  const shared = (flags & 0x02) !== 0;
  const [min, afterMin] = readU32(b, p + 1);
  let max: number | null = null;
  let next = afterMin;
  if (flags & 0x01) [max, next] = readU32(b, afterMin);
  const capped = max === null ? cap : Math.min(max, cap);
  return { bytes: [flags | 0x01, ...writeU32(min), ...writeU32(capped)], next, min, max, shared };
}

function readU32(b: Uint8Array, p: number): [number, number] {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (p >= b.length) throw new WasmModuleError('The WebAssembly module ends inside a number');
    const byte = b[p++]!;
    result += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [result, p];
    shift += 7;
    if (shift > 35) throw new WasmModuleError('The WebAssembly module has a malformed number');
  }
}

function writeU32(v: number): number[] {
  const out: number[] = [];
  do {
    let byte = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

/** A WebAssembly task. */
export interface WasmTask {
  /** The module: its bytes, or an absolute path or `file:` URL of a `.wasm` file. */
  wasm: Uint8Array | ArrayBuffer | string | URL;
  /** The exported function to call. @default 'main' */
  export?: string;
  /** Arguments (numbers or bigints) for the call. @default [] */
  args?: readonly (number | bigint)[];
  /**
   * Linear memory limit: bytes or a size string (converted to whole pages,
   * rounding down; below one page is refused), or `{ pages }`.
   */
  memory: Size | { pages: number };
}

/** What a WebAssembly run resolves with. */
export interface WasmRunResult<R = unknown> extends RunResult<R> {
  /** Pages the memory had when the call returned (0 when it is private or absent). */
  memoryPages: number;
  /** The cap, pages. */
  memoryLimitPages: number;
}

// Runs in the task worker (sent as source): instantiates the capped module,
// calls the export, and turns a trap at the cap into ERR_WASM_MEMORY_LIMIT.
const RUNNER = `async function wasmTask(input) {
  const mod = new WebAssembly.Module(input.bytes);
  const imports = {};
  let memory = null;
  const mi = input.memory;
  if (mi.kind === 'import') {
    memory = new WebAssembly.Memory({ initial: mi.min, maximum: input.maxPages, shared: mi.shared });
    imports[mi.module] = { [mi.field]: memory };
  }
  const instance = new WebAssembly.Instance(mod, imports);
  if (memory === null) {
    for (const d of WebAssembly.Module.exports(mod)) if (d.kind === 'memory') { memory = instance.exports[d.name]; break; }
  }
  const fn = instance.exports[input.exportName];
  if (typeof fn !== 'function') {
    const e = new TypeError('The WebAssembly module exports no function called ' + JSON.stringify(input.exportName));
    e.code = 'ERR_WASM_MODULE';
    throw e;
  }
  const pages = () => (memory === null ? 0 : memory.buffer.byteLength / 65536);
  try {
    const value = fn(...input.args);
    return { value, pages: pages() };
  } catch (err) {
    if (memory !== null && pages() >= input.maxPages && (err instanceof WebAssembly.RuntimeError || err instanceof RangeError)) {
      const e = new Error('wasm memory limit');
      e.code = 'ERR_WASM_MEMORY_LIMIT';
      e.limitPages = input.maxPages;
      e.usedPages = pages();
      e.cause = err;
      throw e;
    }
    throw err;
  }
}`;

/**
 * Runs a WebAssembly task under `limits` (time, CPU, heap, fuel, …, as for
 * {@link runWithLimits}) with its linear memory capped. Everything is checked
 * before a worker starts: the module is validated and capped here.
 */
export async function runWasmWithLimits<R = unknown>(
  task: WasmTask,
  limits?: Limits | ProfileName,
  options?: Omit<RunOptions, 'input' | 'transferList'>,
): Promise<WasmRunResult<R>> {
  const prepared = prepareWasm(task);
  if (options !== undefined) validateObject(options, 'options');
  let result: RunResult<{ value: R; pages: number }>;
  try {
    result = await runWithLimits<{ value: R; pages: number }>({ source: RUNNER }, limits, { ...options, input: prepared });
  } catch (err) {
    throw retype(err);
  }
  return { value: result.value.value, report: result.report, memoryPages: result.value.pages, memoryLimitPages: prepared.maxPages };
}

interface PreparedWasm {
  bytes: Uint8Array;
  exportName: string;
  args: (number | bigint)[];
  maxPages: number;
  memory: WasmMemoryInfo;
}

function prepareWasm(task: WasmTask): PreparedWasm {
  validateObject(task, 'task');
  const exportName = task.export === undefined ? 'main' : validateString(task.export, 'task.export');
  const args = task.args === undefined ? [] : task.args;
  if (!Array.isArray(args)) throw new InvalidArgTypeError('task.args', 'an array of numbers or bigints', args);
  for (const a of args) {
    if (typeof a !== 'number' && typeof a !== 'bigint') throw new InvalidArgTypeError('task.args[]', 'a number or a bigint', a);
  }
  let maxPages: number;
  const m = task.memory;
  if (typeof m === 'object' && m !== null) {
    const pages = (m as { pages?: unknown }).pages;
    if (typeof pages !== 'number' || !Number.isInteger(pages) || pages < 1 || pages > WASM_MAX_PAGES) {
      throw new OutOfRangeError('task.memory.pages', `an integer >= 1 and <= ${WASM_MAX_PAGES}`, pages);
    }
    maxPages = pages;
  } else {
    maxPages = wasmPagesFor(m, 'task.memory');
  }
  const { bytes, memory } = capWasmMemory(readWasm(task.wasm), maxPages);
  return { bytes, exportName, args: [...args], maxPages, memory };
}

function readWasm(w: WasmTask['wasm']): Uint8Array {
  if (w instanceof Uint8Array) return w;
  if (w instanceof ArrayBuffer) return new Uint8Array(w);
  if (w instanceof URL || typeof w === 'string') {
    const file = w instanceof URL || w.startsWith('file:') ? fileURLToPath(w) : w;
    if (!file.startsWith('/') && !/^[A-Za-z]:[\\/]/.test(file)) {
      throw new InvalidArgValueError('task.wasm', w, 'must be an absolute path or a file: URL');
    }
    return new Uint8Array(fs.readFileSync(file));
  }
  throw new InvalidArgTypeError('task.wasm', 'a Uint8Array, an ArrayBuffer, a path or a file: URL', w);
}

/** The worker's plain error with ERR_WASM_MEMORY_LIMIT becomes the typed class, keeping the report. */
function retype(err: unknown): unknown {
  if (typeof err !== 'object' || err === null || (err as { code?: unknown }).code !== 'ERR_WASM_MEMORY_LIMIT') return err;
  const e = err as Error & { limitPages?: unknown; usedPages?: unknown; report?: UsageReport };
  const typed = new WasmMemoryLimitError(Number(e.limitPages), Number(e.usedPages), 'grow');
  if (e.stack !== undefined) typed.stack = e.stack;
  if (e.cause !== undefined) typed.cause = e.cause;
  if (e.report !== undefined) {
    e.report.exitReason = 'wasm-memory';
    Object.defineProperty(typed, 'report', { value: e.report, enumerable: false, writable: true, configurable: true });
  }
  return typed;
}
