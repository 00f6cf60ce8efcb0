/**
 * `resource-guard/health`: health reports, the HTTP health handler and pressure levels.
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
  healthReport,
  createHealthHandler,
  createResourceSampler,
  statusFromFigures,
  healthStatusFor,
  type HealthReport,
  type HealthStatus,
  type HealthHandler,
  type HealthHandlerOptions,
  type ReportSources,
  type ResourceFigures,
  type MemoryFigures,
  type DiskFigures,
  type CpuFigures,
  type EventLoopFigures,
  type HeapFigures,
  type ContainerMemoryFigures,
  type ResourceSampler,
  type ResourceSamplerOptions,
  type BudgetLike,
  type BudgetFigures,
  type FastifyReplyLike,
} from '../health';
export {
  PRESSURE_LEVELS,
  PRESSURE_THRESHOLDS,
  pressure,
  pressureLevel,
  pressureLevelForPercent,
  pressureIndex,
  usagePercent,
  type PressureLevel,
} from '../pressure';
