/**
 * Memory checkpoints: one line per labelled point of a program, with a
 * millisecond timestamp, the thread id and the resident memory at that
 * point, so memory growth between two points can be read off a log:
 *
 *     [14:23:45.123] [thread 0] [mem: 245.3 MiB] CHECKPOINT: phase1_complete - 314 resources
 *
 * Off unless enabled, by {@link configureCheckpoints} or by the variable
 * `RESOURCE_GUARD_CHECKPOINTS` (`1` or `stderr`, `stdout`, or a file path to
 * append to). A disabled checkpoint costs a type check and a branch.
 *
 * A file is checked when it is configured: {@link configureCheckpoints}
 * refuses an empty path or one with a NUL byte (`ERR_INVALID_ARG_VALUE`) and
 * a file it cannot open for appending (`CheckpointFileError`,
 * `ERR_CHECKPOINT_FILE`), keeping the previous settings. A write that fails
 * later (the directory was removed, the disk is full) never throws into the
 * caller of {@link checkpoint}: the line is still returned, and the failure
 * is reported once with `process.emitWarning` (code
 * `RG_CHECKPOINT_WRITE_FAILED`, printed to stderr when nobody listens for
 * `'warning'`); the next failure after a write succeeds again is reported
 * again. A `sink` function that throws is the caller's own code: its error
 * propagates from checkpoint().
 *
 * @module
 */
import * as fs from 'node:fs';
import { threadId } from 'node:worker_threads';
import { CheckpointFileError, InvalidArgTypeError, InvalidArgValueError } from '../errors';
import { readRss } from '../sampler';
import { validateBoolean, validateFunction, validateString } from '../validate';
import { MiB, type Clock, optionsObject, wallClock } from './internal';

/** Where checkpoint lines go: a standard stream, a function, or anything with `write(string)`. */
export type CheckpointSink = 'stderr' | 'stdout' | ((line: string) => void) | { write(chunk: string): unknown };

/** Options of {@link configureCheckpoints}. */
export interface CheckpointOptions {
  /**
   * Write checkpoints.
   * @default true when RESOURCE_GUARD_CHECKPOINTS is set to anything but 0/false/off/no
   */
  enabled?: boolean;
  /**
   * Where lines go. Functions receive the line without a newline; streams get it with one.
   * @default 'stderr'
   */
  sink?: CheckpointSink;
  /** Append lines to this file instead (synchronously, so lines survive a crash). */
  file?: string;
  /** Wall-clock milliseconds since the epoch. @default Date.now */
  clock?: Clock;
  /** Resident memory in bytes. @default a fresh read of the process's RSS */
  rss?: () => number;
}

interface Config {
  enabled: boolean;
  write: (line: string) => void;
  clock: Clock;
  rss: () => number;
}

let config: Config | null = null;

/** Whether the last write to the checkpoint file failed (reported once per streak). */
let fileFailing = false;

/** Appends to a file; a failure is reported as a warning, never thrown. */
function fileWriter(file: string): (line: string) => void {
  return (line) => {
    try {
      fs.appendFileSync(file, `${line}\n`);
      fileFailing = false;
    } catch (err) {
      if (fileFailing) return;
      fileFailing = true;
      const e = err as NodeJS.ErrnoException;
      process.emitWarning(`Checkpoint lines cannot be written to ${JSON.stringify(file)}: ${e.message}; later failures are not reported until a write succeeds`, {
        code: 'RG_CHECKPOINT_WRITE_FAILED',
        detail: e.code,
      });
    }
  };
}

/** Checks a checkpoint file before it is used: a path, and a file that can be opened for appending. */
function checkFile(file: string, name: string): string {
  if (file === '' || file.includes('\0')) throw new InvalidArgValueError(name, file, 'must be a non-empty path without NUL bytes');
  let fd: number;
  try {
    fd = fs.openSync(file, 'a');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CheckpointFileError(file, e.code ?? 'UNKNOWN', e.message);
  }
  fs.closeSync(fd);
  return file;
}

function sinkWriter(sink: CheckpointSink | undefined, file: string | undefined): (line: string) => void {
  if (file !== undefined) return fileWriter(file);
  if (sink === undefined || sink === 'stderr') return (line) => process.stderr.write(`${line}\n`);
  if (sink === 'stdout') return (line) => process.stdout.write(`${line}\n`);
  if (typeof sink === 'function') return sink;
  const s = sink as { write?: unknown };
  if (typeof sink === 'object' && sink !== null && typeof s.write === 'function') {
    const target = sink as { write(chunk: string): unknown };
    return (line) => void target.write(`${line}\n`);
  }
  throw new InvalidArgTypeError('options.sink', "'stderr', 'stdout', a function or an object with a write() method", sink);
}

function fromEnv(): Config {
  const raw = (process.env.RESOURCE_GUARD_CHECKPOINTS ?? '').trim();
  const off = raw === '' || /^(0|false|off|no)$/i.test(raw);
  const on = /^(1|true|on|yes|stderr)$/i.test(raw);
  const write = off || on ? sinkWriter('stderr', undefined) : raw === 'stdout' ? sinkWriter('stdout', undefined) : sinkWriter(undefined, raw);
  return { enabled: !off, write, clock: wallClock, rss: readRss };
}

/**
 * Turns checkpoints on or off and chooses where they go. Options not given
 * keep their current value. Validated as a whole: a bad option changes nothing.
 */
export function configureCheckpoints(options: CheckpointOptions): void {
  const o = optionsObject<CheckpointOptions>(options, 'options');
  const current = config ?? fromEnv();
  const enabled = o.enabled === undefined ? current.enabled : validateBoolean(o.enabled, 'options.enabled');
  const file = o.file === undefined ? undefined : validateString(o.file, 'options.file');
  const sink = o.sink;
  const clock = o.clock === undefined ? current.clock : validateFunction<Clock>(o.clock, 'options.clock');
  const rss = o.rss === undefined ? current.rss : validateFunction<() => number>(o.rss, 'options.rss');
  // Sink checks come after every other option; the file is opened last.
  let write = current.write;
  if (sink !== undefined) write = sinkWriter(sink, undefined);
  if (file !== undefined) write = sinkWriter(undefined, checkFile(file, 'options.file'));
  if (file !== undefined) fileFailing = false;
  config = { enabled, write, clock, rss };
}

/** Whether {@link checkpoint} writes anything. */
export function checkpointsEnabled(): boolean {
  config ??= fromEnv();
  return config.enabled;
}

/**
 * Writes one checkpoint line and returns it (without newline), or returns
 * null when checkpoints are off.
 */
export function checkpoint(label: string, detail?: string): string | null {
  if (typeof label !== 'string') throw new InvalidArgTypeError('label', 'of type string', label);
  if (detail !== undefined && typeof detail !== 'string') throw new InvalidArgTypeError('detail', 'of type string', detail);
  config ??= fromEnv();
  if (!config.enabled) return null;
  let rss: number;
  try {
    rss = config.rss();
  } catch {
    rss = NaN;
  }
  const line = formatCheckpoint(config.clock(), threadId, rss, label, detail);
  config.write(line);
  return line;
}

/** The checkpoint line for these figures (local time). */
function formatCheckpoint(timeMs: number, thread: number, rssBytes: number, label: string, detail?: string): string {
  const d = new Date(timeMs);
  const p2 = (n: number) => String(n).padStart(2, '0');
  const time = `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
  const mem = Number.isFinite(rssBytes) ? `${(rssBytes / MiB).toFixed(1)} MiB` : 'unknown';
  return `[${time}] [thread ${thread}] [mem: ${mem}] CHECKPOINT: ${label}${detail === undefined ? '' : ` - ${detail}`}`;
}
