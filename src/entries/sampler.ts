/**
 * `resource-guard/sampler`: the sampler snapshot and fresh reads of the kernel's figures (RSS, CPU, cgroup, PSI, disk).
 *
 * The same objects as the root entry (one instance of the library), without
 * loading the rest of it. Every name here is also exported by
 * `resource-guard`.
 *
 * @module
 */
export * from '../errors';
export { parseSize, sizeUnit, type Size } from '../size';
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
  DiskReader,
  type Snapshot,
  type CpuTimes,
  type SystemCpuTimes,
  type SystemMemory,
  type CgroupInfo,
  type PsiInfo,
  type PsiLine,
  type DiskInfo,
} from '../sampler';
