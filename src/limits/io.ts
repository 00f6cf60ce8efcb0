/**
 * IO byte budgets of a task. Writes and reads that go through the meter are
 * charged before they happen; a charge that would go above the budget is
 * refused whole with {@link IoLimitError} and nothing is written (or
 * returned). The meter only sees IO that goes through it: it is a budget the
 * task keeps, not a sandbox around `fs`.
 *
 * One meter belongs to one thread, so a charge is a plain compare and add.
 *
 * This module must not load the native addon: the task worker imports it.
 *
 * @module
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { InvalidArgTypeError, OutOfRangeError } from '../errors';
import { CountLimitError, IoLimitError, OverReleaseError, RateLimitError } from './errors';
import { SlidingWindow, amountOf, clockOption, windowOf, type LimitClock } from './window';

/** A rate: at most `bytes` within any `windowMs` milliseconds. */
export interface IoRate {
  bytes: number;
  windowMs: number;
}

/** Errors an IO meter refuses with. */
export type IoMeterError = IoLimitError | RateLimitError | CountLimitError;

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Data the write helpers accept. */
export type WriteData = string | Uint8Array;

/** Options of {@link IoMeter}. */
export interface IoMeterOptions {
  /** Write budget in bytes. @default Infinity */
  writeLimit?: number;
  /** Read budget in bytes. @default Infinity */
  readLimit?: number;
  /** Called after every successful charge with the new totals. */
  onCharge?: (written: number, read: number) => void;
  /** Called once, with the error, the first time a charge is refused. */
  onExceeded?: (error: IoMeterError) => void;
  /** Write rate: bytes per sliding window, besides the total. */
  writeRate?: IoRate;
  /** Read rate: bytes per sliding window, besides the total. */
  readRate?: IoRate;
  /** Files the task may hold open through the meter at once. @default Infinity */
  openFiles?: number;
  /** Called after every successful charge, open or close (activity, for idle timeouts). */
  onActivity?: () => void;
  /** Time source for the rate windows, ms. @default performance.now */
  clock?: LimitClock;
}

/** Byte budgets for a task's writes and reads. */
export class IoMeter {
  readonly writeLimit: number;
  readonly readLimit: number;
  #written = 0;
  #read = 0;
  #exceeded = false;
  readonly #onCharge: ((written: number, read: number) => void) | undefined;
  readonly #onExceeded: ((error: IoMeterError) => void) | undefined;
  readonly #onActivity: (() => void) | undefined;
  readonly #writeWindow: SlidingWindow | null;
  readonly #readWindow: SlidingWindow | null;
  readonly #clock: LimitClock;
  /** Files the task may hold open at once. */
  readonly openFilesLimit: number;
  #openFiles = 0;
  #peakOpenFiles = 0;
  readonly #fds = new Set<number>();

  constructor(options: IoMeterOptions = {}) {
    this.writeLimit = limitOf(options.writeLimit, 'options.writeLimit');
    this.readLimit = limitOf(options.readLimit, 'options.readLimit');
    this.#clock = clockOption(options.clock, 'options.clock');
    this.#writeWindow = rateOf(options.writeRate, 'options.writeRate', this.#clock);
    this.#readWindow = rateOf(options.readRate, 'options.readRate', this.#clock);
    this.openFilesLimit = limitOf(options.openFiles, 'options.openFiles');
    if (options.onActivity !== undefined && typeof options.onActivity !== 'function') {
      throw new InvalidArgTypeError('options.onActivity', 'of type function', options.onActivity);
    }
    this.#onCharge = options.onCharge;
    this.#onExceeded = options.onExceeded;
    this.#onActivity = options.onActivity;
  }

  /** Bytes written within the current write-rate window (0 without a write rate). */
  get writtenInWindow(): number {
    return this.#writeWindow?.used() ?? 0;
  }

  /** Bytes read within the current read-rate window (0 without a read rate). */
  get readInWindow(): number {
    return this.#readWindow?.used() ?? 0;
  }

  /** Files held open through the meter now. */
  get openFiles(): number {
    return this.#openFiles;
  }

  /** Most files held open at once. */
  get peakOpenFiles(): number {
    return this.#peakOpenFiles;
  }

  /**
   * Counts `n` files opened by other means against the open-files limit;
   * refused whole with `ERR_OPEN_FILES_LIMIT` above it.
   */
  acquireFiles(n = 1): void {
    amountOf(n, 'n');
    this.#reserveFiles(n);
    this.#opened();
  }

  /** Takes `n` places under the limit (refused whole above it); the peak waits for the open to succeed. */
  #reserveFiles(n: number): void {
    if (this.#openFiles + n > this.openFilesLimit) {
      this.#fail(new CountLimitError('ERR_OPEN_FILES_LIMIT', 'open files', this.openFilesLimit, this.#openFiles, n));
    }
    this.#openFiles += n;
  }

  /** Files were opened: the peak and the activity stamp follow. An open that failed counts for neither. */
  #opened(): void {
    if (this.#openFiles > this.#peakOpenFiles) this.#peakOpenFiles = this.#openFiles;
    this.#onActivity?.();
  }

  /** Gives back `n` files counted with {@link acquireFiles}; more than held is refused (`ERR_OVER_RELEASE`). */
  releaseFiles(n = 1): void {
    amountOf(n, 'n');
    if (n > this.#openFiles) throw new OverReleaseError('open files', this.#openFiles, n);
    this.#openFiles -= n;
    this.#onActivity?.();
  }

  /** `fs.openSync`, counted against the open-files limit until {@link closeSync}. */
  openSync(file: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode): number {
    this.#reserveFiles(1);
    let fd: number;
    try {
      fd = fs.openSync(file, flags ?? 'r', mode);
    } catch (err) {
      this.#openFiles--;
      throw err;
    }
    this.#fds.add(fd);
    this.#opened();
    return fd;
  }

  /** Closes a descriptor from {@link openSync}; any other is refused with `ERR_OVER_RELEASE` and left open. */
  closeSync(fd: number): void {
    if (!this.#fds.has(fd)) throw new OverReleaseError('open files (descriptor not opened through this meter)', this.#openFiles, 1);
    fs.closeSync(fd);
    this.#fds.delete(fd);
    this.releaseFiles(1);
  }

  /**
   * `fs.promises.open`, counted against the open-files limit until the
   * handle's `close()` (counted once, however often it is called).
   */
  async open(file: fs.PathLike, flags?: string | number, mode?: fs.Mode): Promise<fsp.FileHandle> {
    this.#reserveFiles(1);
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(file, flags, mode);
    } catch (err) {
      this.#openFiles--;
      throw err;
    }
    this.#opened();
    const close = handle.close.bind(handle);
    let released = false;
    handle.close = async () => {
      await close();
      if (!released) {
        released = true;
        this.releaseFiles(1);
      }
    };
    return handle;
  }

  /** Bytes charged as written. */
  get written(): number {
    return this.#written;
  }

  /** Bytes charged as read. */
  get read(): number {
    return this.#read;
  }

  /** Charges `bytes` against the write budget (throws {@link IoLimitError} over it). */
  chargeWrite(bytes: number): void {
    checkBytes(bytes);
    if (this.#written + bytes > this.writeLimit) this.#refuse('write', this.writeLimit, this.#written, bytes);
    const w = this.#writeWindow;
    if (w !== null && !w.tryTake(bytes)) this.#refuseRate('write', w, bytes);
    this.#written += bytes;
    this.#onCharge?.(this.#written, this.#read);
    this.#onActivity?.();
  }

  /** Charges `bytes` against the read budget (throws {@link IoLimitError} over it). */
  chargeRead(bytes: number): void {
    checkBytes(bytes);
    if (this.#read + bytes > this.readLimit) this.#refuse('read', this.readLimit, this.#read, bytes);
    const w = this.#readWindow;
    if (w !== null && !w.tryTake(bytes)) this.#refuseRate('read', w, bytes);
    this.#read += bytes;
    this.#onCharge?.(this.#written, this.#read);
    this.#onActivity?.();
  }

  /** `fs.writeFileSync` after charging the data's byte length. */
  writeFileSync(file: fs.PathOrFileDescriptor, data: WriteData, options?: fs.WriteFileOptions): void {
    this.chargeWrite(byteLength(data, options));
    fs.writeFileSync(file, data, options);
  }

  /** `fs.promises.writeFile` after charging the data's byte length. */
  async writeFile(file: fs.PathLike | fsp.FileHandle, data: WriteData, options?: fs.WriteFileOptions): Promise<void> {
    this.chargeWrite(byteLength(data, options));
    await fsp.writeFile(file, data, options);
  }

  /** `fs.appendFileSync` after charging the data's byte length. */
  appendFileSync(file: fs.PathOrFileDescriptor, data: WriteData, options?: fs.WriteFileOptions): void {
    this.chargeWrite(byteLength(data, options));
    fs.appendFileSync(file, data, options);
  }

  /** `fs.promises.appendFile` after charging the data's byte length. */
  async appendFile(file: fs.PathLike | fsp.FileHandle, data: WriteData, options?: fs.WriteFileOptions): Promise<void> {
    this.chargeWrite(byteLength(data, options));
    await fsp.appendFile(file, data, options);
  }

  /**
   * `fs.createWriteStream` whose every chunk is charged before it is
   * written; a refused chunk fails the stream with {@link IoLimitError}.
   */
  createWriteStream(file: fs.PathLike, options?: Parameters<typeof fs.createWriteStream>[1]): fs.WriteStream {
    const stream = fs.createWriteStream(file, options);
    type WriteFn = (chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void) => void;
    type WritevFn = (chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void) => void;
    const s = stream as unknown as { _write: WriteFn; _writev?: WritevFn };
    const write = s._write.bind(stream);
    s._write = (chunk, encoding, cb) => {
      try {
        this.chargeWrite(chunk.byteLength);
      } catch (err) {
        cb(err as Error);
        return;
      }
      write(chunk, encoding, cb);
    };
    if (typeof s._writev === 'function') {
      const writev = s._writev.bind(stream);
      s._writev = (chunks, cb) => {
        try {
          this.chargeWrite(chunks.reduce((sum, c) => sum + c.chunk.byteLength, 0));
        } catch (err) {
          cb(err as Error);
          return;
        }
        writev(chunks, cb);
      };
    }
    return stream;
  }

  /**
   * Reads a whole file. The size is checked against the read budget before
   * reading, and what was actually read is charged.
   */
  readFileSync(file: fs.PathLike): Buffer {
    this.#precheckRead(fs.statSync(file).size);
    const data = fs.readFileSync(file);
    this.chargeRead(data.byteLength);
    return data;
  }

  /** Asynchronous {@link readFileSync}. */
  async readFile(file: fs.PathLike): Promise<Buffer> {
    this.#precheckRead((await fsp.stat(file)).size);
    const data = await fsp.readFile(file);
    this.chargeRead(data.byteLength);
    return data;
  }

  #precheckRead(size: number): void {
    if (this.#read + size > this.readLimit) this.#refuse('read', this.readLimit, this.#read, size);
    const w = this.#readWindow;
    if (w !== null && w.used() + size > w.limit) this.#refuseRate('read', w, size);
  }

  #refuse(direction: 'write' | 'read', limit: number, used: number, bytes: number): never {
    this.#fail(new IoLimitError(direction, limit, used, bytes));
  }

  #refuseRate(direction: 'write' | 'read', w: SlidingWindow, bytes: number): never {
    this.#fail(new RateLimitError('ERR_IO_RATE', `IO ${direction}`, w.limit, w.windowMs, w.used(), bytes, 'bytes'));
  }

  #fail(err: IoMeterError): never {
    if (!this.#exceeded) {
      this.#exceeded = true;
      this.#onExceeded?.(err);
    }
    throw err;
  }
}

function rateOf(v: unknown, name: string, clock: LimitClock): SlidingWindow | null {
  if (v === undefined) return null;
  if (typeof v !== 'object' || v === null) throw new InvalidArgTypeError(name, 'of type object ({ bytes, windowMs })', v);
  const r = v as { bytes?: unknown; windowMs?: unknown };
  return new SlidingWindow(amountOf(r.bytes, `${name}.bytes`), windowOf(r.windowMs, `${name}.windowMs`), clock);
}

function limitOf(v: unknown, name: string): number {
  if (v === undefined || v === Infinity) return Infinity;
  if (typeof v !== 'number') throw new InvalidArgTypeError(name, 'of type number', v);
  if (!Number.isInteger(v) || v < 0 || v > MAX_SAFE) throw new OutOfRangeError(name, `an integer >= 0 and <= ${MAX_SAFE}, or Infinity`, v);
  return v;
}

function checkBytes(bytes: unknown): asserts bytes is number {
  if (typeof bytes !== 'number') throw new InvalidArgTypeError('bytes', 'of type number', bytes);
  if (!Number.isInteger(bytes) || bytes < 0 || bytes > MAX_SAFE) {
    throw new OutOfRangeError('bytes', `an integer >= 0 and <= ${MAX_SAFE}`, bytes);
  }
}

function byteLength(data: WriteData, options?: fs.WriteFileOptions): number {
  if (typeof data === 'string') {
    const encoding = typeof options === 'string' ? options : (options?.encoding ?? 'utf8');
    return Buffer.byteLength(data, encoding ?? 'utf8');
  }
  if (ArrayBuffer.isView(data)) return data.byteLength;
  throw new InvalidArgTypeError('data', 'of type string or an instance of Buffer or Uint8Array', data);
}
