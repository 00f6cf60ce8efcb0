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
export type { IoMeter, WriteData } from './io';
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
