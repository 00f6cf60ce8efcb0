/**
 * Guards: memory (RSS and V8 heap), disk space, CPU load, a process-wide
 * memory budget, and one object that combines them; plus checkpoints and
 * planning estimates.
 *
 * @module
 */
export { DiskSpaceUnknownError } from './errors';
export { GuardClosedError } from './internal';
export {
  MemoryGuard,
  readHeap,
  defaultMemoryLimit,
  type MemoryGuardOptions,
  type MemoryGuardStatus,
  type MemoryGuardStats,
  type MemoryGuardLimits,
  type MemoryGuardEvents,
  type MemorySource,
  type HeapReading,
  type HeapStatus,
} from './memory';
export {
  DiskSpaceGuard,
  type DiskSpaceGuardOptions,
  type DiskSpaceStatus,
  type DiskSpaceGuardStats,
  type DiskSpaceGuardEvents,
  type DiskSource,
  type DiskReading,
  type OutputPlan,
} from './disk';
export {
  CpuMonitor,
  type CpuMonitorOptions,
  type CpuSample,
  type CpuMonitorStats,
  type CpuMonitorEvents,
  type CpuSource,
  type EventLoopReading,
} from './cpu';
export { MemoryBudget, type MemoryBudgetOptions, type MemoryBudgetStatus, type MemoryBudgetSource } from './memory-budget';
export {
  ResourceGuard,
  type ResourceGuardOptions,
  type ResourceGuardStatus,
  type ResourceGuardStats,
  type ResourceGuardEvents,
  type GuardDegradationInputs,
} from './resource';
export { checkpoint, configureCheckpoints, checkpointsEnabled, type CheckpointOptions, type CheckpointSink } from './checkpoint';
export {
  estimateMemory,
  estimateOutputSize,
  type MemoryEstimateOptions,
  type MemoryEstimate,
  type OutputSizeOptions,
} from './estimate';
