/**
 * Metrics: the Prometheus text exposition (no dependency), registration into
 * prom-client and OpenTelemetry (optional peers), counters with rates, and a
 * periodic reporter.
 *
 * Every metric is named `resource_guard_<what>_<unit>` (`_total` for
 * counters) and has HELP and TYPE lines; see {@link METRIC_SPECS}.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { writeResponse, type FastifyReplyLike } from './health';
import { checkMetricsSources, collectMetrics, formatPrometheus, PROMETHEUS_CONTENT_TYPE, type MetricsSources } from './metrics/families';

export {
  ResourceMetrics,
  startMetricsReporter,
  formatReport,
  ratesOf,
  type ResourceMetricsOptions,
  type MetricsRates,
  type MetricsCounts,
  type MetricsSnapshot,
  type MetricsReport,
  type MetricsLogger,
  type MetricsReporterOptions,
  type MetricsReporter,
} from './metrics/counters';
export {
  METRIC_SPECS,
  PROMETHEUS_CONTENT_TYPE,
  collectMetrics,
  formatPrometheus,
  type MetricsSources,
  type MetricType,
  type MetricSpec,
  type MetricSample,
  type MetricFamily,
} from './metrics/families';
export {
  MissingPeerDependencyError,
  registerPromClient,
  registerOpenTelemetry,
  type PromClientLike,
  type PromRegistryLike,
  type PromMetricLike,
  type PromClientOptions,
  type PromClientRegistration,
  type OtelApiLike,
  type OtelMeterLike,
  type OtelBatchResultLike,
  type OtelObservableLike,
  type OtelMeterProviderLike,
  type OpenTelemetryOptions,
  type OpenTelemetryRegistration,
} from './metrics/integrations';

/**
 * The metrics in the Prometheus text exposition format 0.0.4. With no
 * options it reads the real samplers and classifies the level against the
 * default thresholds; pass the controller, budgets and counters you use.
 */
export function metrics(sources: MetricsSources = {}): string {
  checkMetricsSources(sources);
  return formatPrometheus(collectMetrics(sources));
}

/** A handler for node:http, Express and Fastify alike. */
export type MetricsHandler = (
  req: IncomingMessage | { method?: string },
  res: ServerResponse | FastifyReplyLike,
  next?: unknown,
) => void;

/**
 * An HTTP handler that serves {@link metrics} with the Prometheus content
 * type (a node:http request listener, an Express or a Fastify handler). A
 * collection that fails answers 500 with the error as text.
 */
export function createMetricsHandler(sources: MetricsSources = {}): MetricsHandler {
  checkMetricsSources(sources);
  return (req, res) => {
    let status = 200;
    let body: string;
    try {
      body = formatPrometheus(collectMetrics(sources));
    } catch (err) {
      status = 500;
      body = `# resource-guard: collection failed: ${err instanceof Error ? err.message : String(err)}\n`.replace(/\n(?!$)/g, ' ');
    }
    writeResponse(req, res, status, PROMETHEUS_CONTENT_TYPE, body);
  };
}
