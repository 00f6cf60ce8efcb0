// A worker that is terminated at any point of a reservation or a release
// gives back exactly what it held: no byte stays counted that no thread
// holds, whatever the tier V8 runs the loop in. Each case runs a driver
// process (so that --no-opt and --jitless apply to its workers) that
// terminates workers at random points of budget loops and reports what the
// budget still counts once they are all gone. The long soak of the same
// driver (thousands of workers per flag) is scripts/termination-soak.js.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, test } from 'vitest';

const run = promisify(execFile);
// Workers per case; scripts/test-node-lines.js runs fewer on the other Node
// lines (RESOURCE_GUARD_TERMINATION_PER_CASE) to keep CI short, and
// scripts/termination-soak.js runs thousands.
const PER_CASE = Number(process.env.RESOURCE_GUARD_TERMINATION_PER_CASE) || 20;
const PER_CASE_SELF = Math.max(2, Math.round((PER_CASE * 2) / 5));
const driver = path.join(__dirname, 'fixtures', 'termination-driver.cjs');
const dist = path.join(__dirname, '..', 'dist', 'index.js');
const MODES = [
  'narrow',
  'wide',
  'narrow-release',
  'wide-release',
  'refuse',
  'allocator',
  'cache',
  'exit',
  'throw',
  'oom',
  'lease',
  'lease-release',
  'lease-mix',
  'lease-allocator',
];
/** How workers of the modes that end by themselves must have ended. */
const ENDS: Record<string, Record<string, number>> = {
  exit: {},
  throw: { stop: PER_CASE_SELF },
  oom: { ERR_WORKER_OUT_OF_MEMORY: PER_CASE_SELF },
};
const FLAGS: Array<[string, string[]]> = [
  ['optimised', []],
  ['--no-opt', ['--no-opt']],
  ['--jitless', ['--jitless']],
];

describe.each(FLAGS)('workers terminated mid-operation (%s)', (_label, flags) => {
  test.each(MODES)('%s: nothing is left counted', async (mode) => {
    const seed = 0x5eed + MODES.indexOf(mode) * 7919 + flags.length * 104729;
    const count = ENDS[mode] ? PER_CASE_SELF : PER_CASE;
    const { stdout } = await run(process.execPath, [...flags, driver, dist, mode, String(count), String(seed)], {
      timeout: 240_000,
    });
    const result = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(result).toMatchObject({ mode, count, held: 0, leaked: 0, used: 0 });
    // The workers that end by themselves ended the way the mode says.
    expect(result.ends).toEqual(ENDS[mode] ?? {});
  });
});

/**
 * V8 aborting the whole process when a worker at its heap limit runs out of
 * memory in a step that cannot collect garbage (seen once in CI on Node 22
 * under load: "LocalHeap: allocation failed" while installing optimised
 * code). Node's heap limits for workers are best-effort there
 * (nodejs/node#47224, #50761; docs/task-limits.md, "Heap"); the process is
 * gone, so what it counted cannot be checked.
 */
const V8_OOM_ABORT = /FATAL ERROR: [^\n]*(?:out of memory|Allocation failed)/;

test('runWithLimits breaches while the task holds and churns its budget leave nothing counted', async () => {
  const count = 24; // time, fuel and heap breaches in turn
  // A run that V8 aborts is run again, twice at most; any other failure,
  // and a third abort, fail the test.
  let stdout = '';
  for (let attempt = 1; ; attempt++) {
    try {
      ({ stdout } = await run(process.execPath, [path.join(__dirname, 'fixtures', 'termination-limits.cjs'), dist, String(count)], {
        timeout: 240_000,
      }));
      break;
    } catch (err) {
      const stderr = String((err as { stderr?: unknown }).stderr ?? '');
      if (attempt === 3 || !V8_OOM_ABORT.test(stderr)) throw err;
    }
  }
  const result = JSON.parse(stdout.trim().split('\n').pop()!);
  expect(result).toMatchObject({ count, used: 0, held: 0, leaked: 0 });
  // Every run ended by its limit: fuel by fuel; time by time; the heap by
  // the heap, or on the Node lines where a worker at its heap limit can stop
  // answering, by the time limit that then ends it.
  const { ERR_TIMEOUT = 0, ERR_FUEL_EXHAUSTED = 0, ERR_MEMORY_LIMIT = 0, ...other } = result.errors;
  expect(other).toEqual({});
  expect(ERR_FUEL_EXHAUSTED).toBe(count / 4);
  expect(ERR_TIMEOUT).toBeGreaterThanOrEqual(count / 2);
  expect(ERR_TIMEOUT + ERR_MEMORY_LIMIT).toBe((3 * count) / 4);
});
