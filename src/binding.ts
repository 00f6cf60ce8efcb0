/**
 * The only module that loads the native addon.
 *
 * Resolution order: `RESOURCE_GUARD_NATIVE` (an explicit path to a
 * `resource_guard.node`, for bundlers and unusual layouts), then
 * node-gyp-build, which picks `build/Release` when a local build exists and
 * otherwise the matching file in `prebuilds/<platform>-<arch>/` (libc-tagged
 * on Linux). With `PREBUILDS_ONLY=1` node-gyp-build ignores local builds.
 *
 * @module
 */
import * as path from 'node:path';
import load from 'node-gyp-build';

/** The native functions, as `native/addon.cc` defines them. */
export interface NativeBinding {
  layout(): NativeLayout;
  sharedRegion(): ArrayBuffer | null;
  ledgerBuffer(): ArrayBuffer | null;
  startSampler(): void;
  stopSampler(): void;
  setSamplerInterval(ms: number): void;
  sampleNow(): void;
  copySnapshot(out: Float64Array): void;
  samplerUsers(): number;
  /** Bytes, or -errno. */
  readRss(): number;
  /** Bytes, or -errno. */
  readPeakRss(): number;
  /** Fills [userUs, systemUs]; returns 0 or errno. */
  readProcessCpu(out: Float64Array): number;
  /** Fills [busyUs, idleUs]; returns 0 or errno. */
  readSystemCpu(out: Float64Array): number;
  cpuCount(): number;
  /** Fills [total, available]; returns 0 or errno. */
  readSystemMemory(out: Float64Array): number;
  readCgroup(): NativeCgroup;
  readPsi(resource: 'memory' | 'cpu' | 'io'): NativePsi | number;
  /** Fills [total, free, available]; returns 0 or errno. */
  readDisk(path: string, out: Float64Array): number;
  /** Handle (>= 0) or -errno. */
  diskOpen(path: string): number;
  /** Fills [total, free, available]; returns 0 or errno. */
  diskRead(handle: number, out: Float64Array): number;
  diskClose(handle: number): void;
  monotonicMs(): number;
  /** Slot (>= 0), or with `withCell` slot + maxBudgets * (cell + 1); -code on failure. */
  budgetOpen(name: string, limit?: number, withCell?: boolean, lease?: boolean): number;
  budgetClose(slot: number, cell?: number): number;
  budgetReserve(slot: number, bytes: number, cell?: number): number;
  budgetRelease(slot: number, bytes: number, cell?: number): number;
  /** Bytes the cell holds, or (no cell) this environment on the slot; -error. */
  budgetHeld(slot: number, cell?: number): number;
  budgetSetLimit(slot: number, limit: number): number;
  budgetStats(slot: number): NativeBudgetStats | number;
  /** The process-wide peak, or minus an error code. */
  budgetPeak(slot: number): number;
  budgetCount(): number;
  /** Bytes taken back from every environment's lease on the slot, or minus an error code. */
  budgetReclaimLeases(slot: number): number;
  /** Bytes reserved (the counter less the leases), or minus an error code. */
  budgetUsed(slot: number): number;
  /** Handle (>= 0) or -code; after code 12 (I/O), machineErrno() holds the errno. */
  machineOpen(directory: string, name: string, limit: number | undefined, owned: boolean): number;
  machineErrno(): number;
  /** The budget's limit after machineOpen answered a limit mismatch (code 4). */
  machineExistingLimit(): number;
  machineClose(handle: number): void;
  /** The usage right after, or -code. */
  machineReserve(handle: number, bytes: number): number;
  machineRelease(handle: number, bytes: number): number;
  machineSetLimit(handle: number, limit: number): number;
  machineStats(handle: number): NativeMachineStats | number;
  /** -14 once the mapping was found stale. */
  machineUsed(handle: number): number;
  machineLimit(handle: number): number;
  machineHeld(handle: number): number;
  /** Dead processes reclaimed on the budget (or, without a handle, on every one: 0); -code. */
  machineReclaim(handle?: number): number;
  /** '/dev/shm' where usable, else ''. */
  machineDefaultDir(): string;
}

export interface NativeMachineStats {
  used: number;
  peak: number;
  limit: number;
  successes: number;
  failures: number;
  holders: number;
  reclaimedBytes: number;
  reclaimedProcesses: number;
  processHeld: number;
}

export interface NativeLayout {
  snapshotSlots: number;
  snapshotFieldCount: number;
  budgetsOffset: number;
  budgetSlotBytes: number;
  budgetLimit32Offset: number;
  budgetFlagsOffset: number;
  /** Doubles of the ledger view: held, successes, failures, peak, cells, pending. */
  ledgerDoubles: number;
  ledgerPendingOffset: number;
  ledgerLeaseOffset: number;
  ledgerBytes: number;
  maxCells: number;
  maxBudgets: number;
  regionBytes: number;
  flagActive: number;
  flagNarrow: number;
  flagLeasing: number;
  platform: string;
}

export interface NativeCgroup {
  errno: number;
  version: 0 | 1 | 2;
  memoryLimit: number | null;
  memoryUsage: number | null;
  cpuQuota: number | null;
}

export interface NativePsiLine {
  avg10: number;
  avg60: number;
  avg300: number;
  totalUs: number;
}

export interface NativePsi {
  some: NativePsiLine;
  full: NativePsiLine | null;
}

export interface NativeBudgetStats {
  name: string;
  used: number;
  peak: number;
  limit: number;
  successes: number;
  failures: number;
  leased: number;
  openHandles: number;
  narrow: boolean;
}

/** Package root: this file runs from `src/` (tests) or `dist/` (published). */
export const packageRoot = path.join(__dirname, '..');

function libc(): string {
  if (process.platform !== 'linux') return 'n/a';
  try {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
    const glibc = report?.header?.glibcVersionRuntime;
    return glibc ? `glibc ${glibc}` : 'musl';
  } catch {
    return 'unknown';
  }
}

function loadBinding(): NativeBinding {
  const explicit = process.env.RESOURCE_GUARD_NATIVE;
  try {
    return (explicit ? require(path.resolve(explicit)) : load(packageRoot)) as NativeBinding;
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    const err = new Error(
      [
        'resource-guard: could not load the native addon.',
        `  platform: ${process.platform}, arch: ${process.arch}, libc: ${libc()}, ` +
          `Node ${process.versions.node}, Node-API ${process.versions.napi ?? 'unknown'} (8 required)`,
        explicit ? `  RESOURCE_GUARD_NATIVE=${explicit}` : `  looked in: ${packageRoot}/build and ${packageRoot}/prebuilds`,
        `  cause: ${detail}`,
        'To build it from source you need python3, make and a C++17 compiler, then run:',
        '  npm rebuild resource-guard --build-from-source',
        `  (or, inside ${packageRoot}: npx node-gyp rebuild)`,
      ].join('\n'),
      { cause },
    );
    (err as Error & { code: string }).code = 'ERR_RESOURCE_GUARD_LOAD';
    throw err;
  }
}

/** The loaded addon (one instance per JS environment). */
export const binding: NativeBinding = loadBinding();
