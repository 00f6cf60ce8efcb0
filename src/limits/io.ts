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
import { IoLimitError } from './errors';

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
  onExceeded?: (error: IoLimitError) => void;
}

/** Byte budgets for a task's writes and reads. */
export class IoMeter {
  readonly writeLimit: number;
  readonly readLimit: number;
  #written = 0;
  #read = 0;
  #exceeded = false;
  readonly #onCharge: ((written: number, read: number) => void) | undefined;
  readonly #onExceeded: ((error: IoLimitError) => void) | undefined;

  constructor(options: IoMeterOptions = {}) {
    this.writeLimit = limitOf(options.writeLimit, 'options.writeLimit');
    this.readLimit = limitOf(options.readLimit, 'options.readLimit');
    this.#onCharge = options.onCharge;
    this.#onExceeded = options.onExceeded;
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
    this.#written += bytes;
    this.#onCharge?.(this.#written, this.#read);
  }

  /** Charges `bytes` against the read budget (throws {@link IoLimitError} over it). */
  chargeRead(bytes: number): void {
    checkBytes(bytes);
    if (this.#read + bytes > this.readLimit) this.#refuse('read', this.readLimit, this.#read, bytes);
    this.#read += bytes;
    this.#onCharge?.(this.#written, this.#read);
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
  }

  #refuse(direction: 'write' | 'read', limit: number, used: number, bytes: number): never {
    const err = new IoLimitError(direction, limit, used, bytes);
    if (!this.#exceeded) {
      this.#exceeded = true;
      this.#onExceeded?.(err);
    }
    throw err;
  }
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
