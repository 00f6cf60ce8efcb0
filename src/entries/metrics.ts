/**
 * `resource-guard/metrics`: Prometheus and OpenTelemetry metrics and the metrics reporter.
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
  metrics,
  createMetricsHandler,
  collectMetrics,
  formatPrometheus,
  METRIC_SPECS,
  PROMETHEUS_CONTENT_TYPE,
  registerPromClient,
  registerOpenTelemetry,
  MissingPeerDependencyError,
  ResourceMetrics,
  startMetricsReporter,
  formatReport,
  type MetricsSources,
  type MetricsHandler,
  type MetricSpec,
  type MetricFamily,
  type MetricSample,
  type MetricType,
  type PromClientOptions,
  type PromClientRegistration,
  type PromClientLike,
  type PromRegistryLike,
  type PromMetricLike,
  type OpenTelemetryOptions,
  type OpenTelemetryRegistration,
  type OtelApiLike,
  type OtelMeterLike,
  type OtelBatchResultLike,
  type OtelObservableLike,
  type OtelMeterProviderLike,
  type ResourceMetricsOptions,
  type MetricsSnapshot,
  type MetricsCounts,
  type MetricsRates,
  type MetricsReport,
  type MetricsReporter,
  type MetricsReporterOptions,
  type MetricsLogger,
} from '../metrics';
