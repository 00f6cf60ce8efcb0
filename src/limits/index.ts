/**
 * Task limits: run work in a worker thread under memory, time, CPU, fuel and
 * IO limits, with monitoring, alerts, a usage report and profiles.
 *
 * @module
 */
export {
  runWithLimits,
  abandonedWorkers,
  activeRuns,
  taskWorkerPath,
  type Task,
  type RunOptions,
  type RunResult,
  type LimitedRunError,
} from './run';
export { Fuel, type FuelOptions } from './fuel';
export { SharedFuel } from './shared-fuel';
export type { IoMeter, WriteData } from './io';
export type { IoMeterOptions, IoRate, IoMeterError } from './io';
export { SlidingWindow, type LimitClock } from './window';
export {
  GrowthRateMeter,
  HeldCounter,
  ThreadMeter,
  NetworkMeter,
  IdleWatch,
  type GrowthRateOptions,
  type ThreadMeterOptions,
  type NetworkMeterOptions,
  type IdleWatchOptions,
  type IdleTimers,
} from './meters';
export { RateLimitError, CountLimitError, OverReleaseError } from './errors';
export type { TaskContext, TaskFunction, TaskBudget } from './context';
export { profiles, defineProfile, resolveLimits, PROFILE_NAMES } from './profiles';
export { DEFAULT_ALERT_THRESHOLDS, type AlertThresholds } from './alerts';
export {
  TimeoutError,
  CpuTimeError,
  FuelExhaustedError,
  IoLimitError,
  TaskCrashedError,
  TaskAbortedError,
  reportOf,
} from './errors';
export { FuelMeteringError } from './errors';
export type {
  Limits,
  ResolvedLimits,
  ProfileName,
  ExitReason,
  LimitedResource,
  Usage,
  Alert,
  UsageReport,
} from './types';
export {
  runWasmWithLimits,
  capWasmMemory,
  wasmPagesFor,
  WasmMemoryLimitError,
  WasmModuleError,
  WASM_PAGE_SIZE,
  WASM_MAX_PAGES,
  type WasmTask,
  type WasmRunResult,
  type WasmMemoryInfo,
} from './wasm';
export {
  resolveSandbox,
  idleBreach,
  taskSandbox,
  NotInTaskError,
  type TaskSandbox,
  ACTIVITY_SLOT,
  type SandboxOptions,
  type SandboxSettings,
} from './sandbox';
