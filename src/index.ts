/**
 * resource-guard: keep a Node.js process inside its memory, disk and CPU budget.
 *
 * @module
 */
export * from './errors';
export { parseSize, type Size } from './validate';
export {
  SnapshotField,
  snapshotView,
  sharedMemory,
  ensureSampler,
  stopSampler,
  samplerStarted,
  setSamplerInterval,
  refreshSnapshot,
  readSnapshot,
  readRss,
  readPeakRss,
  readProcessCpu,
  readSystemCpu,
  cpuLoadBetween,
  cpuCount,
  readSystemMemory,
  readCgroup,
  readPsi,
  readDisk,
  type Snapshot,
  type CpuTimes,
  type SystemCpuTimes,
  type SystemMemory,
  type CgroupInfo,
  type PsiInfo,
  type PsiLine,
  type DiskInfo,
} from './sampler';
export { Budget, type BudgetStats } from './budget';
