/**
 * The metric catalogue and one collection pass over it. The Prometheus text
 * exposition, the prom-client gauges and the OpenTelemetry instruments are
 * all built from this one list, so the three never disagree on a name, a
 * unit or a value.
 *
 * @module
 */
import { DEGRADATION_LEVELS } from '../degradation';
import { InvalidArgTypeError } from '../errors';
import { checkSources, levelOf, readBudgets, readFigures, type ReportSources } from '../health';
import { PRESSURE_LEVELS } from '../pressure';
import { LoadShedder, SHED_CAUSES } from '../shedding';
import { ResourceMetrics } from './counters';

/** Sources of the metrics: those of a health report, plus recorded counters. */
export interface MetricsSources extends ReportSources {
  /** Checks and breaches recorded by the guards (`resource_guard_checks_total`, `resource_guard_breaches_total`). */
  metrics?: ResourceMetrics;
  /** A load shedder whose requests and shed requests are counted (`resource_guard_http_requests_shed_total`). */
  shedder?: LoadShedder;
}

export type MetricType = 'gauge' | 'counter';

/** A metric of the catalogue. */
export interface MetricSpec {
  /** Prometheus name: `resource_guard_` prefix, unit suffix, `_total` for counters. */
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly labelNames: readonly string[];
  /** OpenTelemetry instrument name and UCUM unit. */
  readonly otelName: string;
  readonly unit: string;
  /**
   * The prom-client default metric (`collectDefaultMetrics()`) that carries
   * the same figure, if any. `registerPromClient` leaves these out unless
   * asked (`includeDuplicates: true`).
   */
  readonly promClientDefault?: string;
}

export interface MetricSample {
  /** Label values by name; `{}` for a metric without labels. */
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface MetricFamily extends MetricSpec {
  /** Empty when the figure is unknown (a missing sample, never a zero). */
  readonly samples: MetricSample[];
}

function spec(
  name: string,
  type: MetricType,
  labelNames: readonly string[],
  otelName: string,
  unit: string,
  help: string,
  promClientDefault?: string,
): MetricSpec {
  const s: MetricSpec = { name, type, help, labelNames: Object.freeze([...labelNames]), otelName, unit };
  return Object.freeze(promClientDefault === undefined ? s : { ...s, promClientDefault });
}

/** Every metric resource-guard exports, in exposition order. */
export const METRIC_SPECS: readonly MetricSpec[] = Object.freeze([
  spec('resource_guard_degradation_level', 'gauge', [], 'resource_guard.degradation.level', '{level}',
    'Degradation level: 0 normal, 1 reduced, 2 minimal, 3 emergency.'),
  spec('resource_guard_degradation_state', 'gauge', ['level'], 'resource_guard.degradation.state', '1',
    '1 for the current degradation level, 0 for the others.'),
  spec('resource_guard_degradation_forced', 'gauge', [], 'resource_guard.degradation.forced', '1',
    '1 while the degradation level is forced by hand, else 0.'),
  spec('resource_guard_degradation_changes_total', 'counter', [], 'resource_guard.degradation.changes', '{change}',
    'Degradation level changes since the controller was created.'),
  spec('resource_guard_memory_usage_bytes', 'gauge', [], 'resource_guard.memory.usage', 'By',
    'Memory in use by the process (resident set size).', 'process_resident_memory_bytes'),
  spec('resource_guard_memory_limit_bytes', 'gauge', [], 'resource_guard.memory.limit', 'By',
    'Memory limit the usage is judged against (cgroup limit, else physical RAM).'),
  spec('resource_guard_memory_usage_ratio', 'gauge', [], 'resource_guard.memory.usage_ratio', '1',
    'Memory in use as a fraction of the limit.'),
  spec('resource_guard_disk_available_bytes', 'gauge', ['path'], 'resource_guard.disk.available', 'By',
    'Bytes an unprivileged process may still write on the watched file system.'),
  spec('resource_guard_disk_total_bytes', 'gauge', ['path'], 'resource_guard.disk.total', 'By',
    'Size of the watched file system.'),
  spec('resource_guard_cpu_load_ratio', 'gauge', [], 'resource_guard.cpu.load', '1',
    'CPU load by the CPU rule: this process\'s (or its container\'s) CPU time per second over the CPUs it may use, 0 to 1.'),
  spec('resource_guard_host_cpu_load_ratio', 'gauge', [], 'resource_guard.host.cpu.load', '1',
    'Host-wide CPU load, 0 to 1, over the sampler window.'),
  spec('resource_guard_process_cpu_load_ratio', 'gauge', [], 'resource_guard.process.cpu.load', '1',
    'CPU seconds this process used per wall second (may exceed 1).'),
  spec('resource_guard_process_cpu_seconds_total', 'counter', [], 'resource_guard.process.cpu.time', 's',
    'CPU time this process has used, user and system, in seconds.', 'process_cpu_seconds_total'),
  spec('resource_guard_event_loop_lag_seconds', 'gauge', [], 'resource_guard.event_loop.lag', 's',
    'Event-loop delay, 99th percentile over the last window.', 'nodejs_eventloop_lag_p99_seconds'),
  spec('resource_guard_event_loop_utilization_ratio', 'gauge', [], 'resource_guard.event_loop.utilization', '1',
    'Share of the last window the event loop was busy.'),
  spec('resource_guard_heap_usage_ratio', 'gauge', [], 'resource_guard.heap.usage_ratio', '1',
    'V8 heap used as a fraction of the heap size limit.'),
  spec('resource_guard_container_memory_usage_bytes', 'gauge', [], 'resource_guard.container.memory.usage', 'By',
    'The cgroup\'s working set: memory.current (v1 memory.usage_in_bytes) less the inactive file cache.'),
  spec('resource_guard_container_memory_limit_bytes', 'gauge', [], 'resource_guard.container.memory.limit', 'By',
    'The cgroup memory limit.'),
  spec('resource_guard_memory_stall_ratio', 'gauge', [], 'resource_guard.memory.stall', '1',
    'Share of the last 10 s in which some tasks stalled on memory (PSI some avg10).'),
  spec('resource_guard_budget_used_bytes', 'gauge', ['budget'], 'resource_guard.budget.used', 'By',
    'Bytes reserved on the budget, process-wide.'),
  spec('resource_guard_budget_limit_bytes', 'gauge', ['budget'], 'resource_guard.budget.limit', 'By',
    'Limit of the budget.'),
  spec('resource_guard_budget_peak_bytes', 'gauge', ['budget'], 'resource_guard.budget.peak', 'By',
    'Highest number of bytes ever reserved on the budget.'),
  spec('resource_guard_budget_usage_ratio', 'gauge', ['budget'], 'resource_guard.budget.usage_ratio', '1',
    'Bytes reserved as a fraction of the limit (0 when the limit is 0).'),
  spec('resource_guard_budget_pressure_level', 'gauge', ['budget'], 'resource_guard.budget.pressure', '{level}',
    'Budget pressure: 0 low (<60 %), 1 medium, 2 high (>=80 %), 3 critical (>=95 %).'),
  spec('resource_guard_budget_reservations_total', 'counter', ['budget'], 'resource_guard.budget.reservations', '{reservation}',
    'Successful reservations on the budget, process-wide.'),
  spec('resource_guard_budget_reservation_failures_total', 'counter', ['budget'], 'resource_guard.budget.reservation_failures', '{reservation}',
    'Reservations the budget refused, process-wide.'),
  spec('resource_guard_budget_processes', 'gauge', ['budget'], 'resource_guard.budget.processes', '{process}',
    'Processes that have the machine-wide budget open (machine budgets only).'),
  spec('resource_guard_http_requests_total', 'counter', [], 'resource_guard.http.requests', '{request}',
    'HTTP requests the load shedder decided on (exempt ones included).'),
  spec('resource_guard_http_requests_shed_total', 'counter', ['cause', 'level'], 'resource_guard.http.requests_shed', '{request}',
    'HTTP requests answered 503 by the load shedder, by cause (level, check, check-timeout, check-error) and level.'),
  spec('resource_guard_checks_total', 'counter', [], 'resource_guard.checks', '{check}',
    'Resource checks performed.'),
  spec('resource_guard_breaches_total', 'counter', ['resource'], 'resource_guard.breaches', '{breach}',
    'Checks that found a resource over its limit, by resource.'),
]);

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

/** Validates metrics sources once. */
export function checkMetricsSources(sources: MetricsSources, name = 'options'): void {
  checkSources(sources, name);
  if (sources.metrics !== undefined && !(sources.metrics instanceof ResourceMetrics)) {
    throw new InvalidArgTypeError(`${name}.metrics`, 'an instance of ResourceMetrics', sources.metrics);
  }
  if (sources.shedder !== undefined && !(sources.shedder instanceof LoadShedder)) {
    throw new InvalidArgTypeError(`${name}.shedder`, 'an instance of LoadShedder', sources.shedder);
  }
}

/** Reads every source once and returns the catalogue with its samples. */
export function collectMetrics(sources: MetricsSources = {}): MetricFamily[] {
  if (typeof sources !== 'object' || sources === null || Array.isArray(sources)) throw new InvalidArgTypeError('sources', 'of type object', sources);
  const samples = new Map<string, MetricSample[]>();
  for (const s of METRIC_SPECS) samples.set(s.name, []);
  const add = (name: string, value: number, labels: Readonly<Record<string, string>> = NO_LABELS) => {
    samples.get(name)!.push({ labels, value });
  };

  const f = readFigures(sources);
  const { level, forced } = levelOf(sources, f);
  const index = DEGRADATION_LEVELS.indexOf(level);
  add('resource_guard_degradation_level', index);
  for (let k = 0; k < DEGRADATION_LEVELS.length; k++) {
    add('resource_guard_degradation_state', k === index ? 1 : 0, { level: DEGRADATION_LEVELS[k]! });
  }
  if (sources.controller) {
    add('resource_guard_degradation_forced', forced ? 1 : 0);
    add('resource_guard_degradation_changes_total', sources.controller.changes);
  }
  if (f.memory) {
    add('resource_guard_memory_usage_bytes', f.memory.usage);
    if (f.memory.limit !== null) {
      add('resource_guard_memory_limit_bytes', f.memory.limit);
      if (f.memory.limit > 0) add('resource_guard_memory_usage_ratio', f.memory.usage / f.memory.limit);
    }
  }
  if (f.disk) {
    const labels = { path: f.disk.path };
    add('resource_guard_disk_available_bytes', f.disk.available, labels);
    add('resource_guard_disk_total_bytes', f.disk.total, labels);
  }
  if (f.cpu) {
    add('resource_guard_cpu_load_ratio', f.cpu.load);
    if (typeof f.cpu.host === 'number') add('resource_guard_host_cpu_load_ratio', f.cpu.host);
    if (f.cpu.processLoad !== null) add('resource_guard_process_cpu_load_ratio', f.cpu.processLoad);
    if (typeof f.cpu.processSeconds === 'number') add('resource_guard_process_cpu_seconds_total', f.cpu.processSeconds);
  }
  if (f.eventLoop) {
    add('resource_guard_event_loop_lag_seconds', f.eventLoop.lagMs / 1000);
    if (typeof f.eventLoop.utilization === 'number') add('resource_guard_event_loop_utilization_ratio', f.eventLoop.utilization);
  }
  if (f.heap && f.heap.limit > 0) add('resource_guard_heap_usage_ratio', f.heap.used / f.heap.limit);
  if (f.containerMemory) {
    add('resource_guard_container_memory_usage_bytes', f.containerMemory.usage);
    add('resource_guard_container_memory_limit_bytes', f.containerMemory.limit);
  }
  if (f.psi !== null) add('resource_guard_memory_stall_ratio', f.psi / 100);

  for (const b of readBudgets(sources)) {
    const labels = { budget: b.name };
    add('resource_guard_budget_used_bytes', b.used, labels);
    add('resource_guard_budget_limit_bytes', b.limit, labels);
    if (b.peak !== null) add('resource_guard_budget_peak_bytes', b.peak, labels);
    add('resource_guard_budget_usage_ratio', b.percent / 100, labels);
    add('resource_guard_budget_pressure_level', PRESSURE_LEVELS.indexOf(b.pressure), labels);
    if (b.successes !== null) add('resource_guard_budget_reservations_total', b.successes, labels);
    if (b.failures !== null) add('resource_guard_budget_reservation_failures_total', b.failures, labels);
    if (b.holders !== null) add('resource_guard_budget_processes', b.holders, labels);
  }

  if (sources.shedder) {
    add('resource_guard_http_requests_total', sources.shedder.stats().requests);
    for (const p of sources.shedder.shedCounts()) {
      add('resource_guard_http_requests_shed_total', p.count, { cause: p.cause, level: p.level });
    }
  }
  if (sources.metrics) {
    const t = sources.metrics.totals();
    add('resource_guard_checks_total', t.checks);
    for (const [resource, n] of Object.entries(t.breachesByResource)) {
      add('resource_guard_breaches_total', n, { resource });
    }
  }
  return METRIC_SPECS.map((s) => ({ ...s, samples: samples.get(s.name)! }));
}

// ---- Prometheus text format 0.0.4 -----------------------------------------------------------

/** Content type of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Formats families in the Prometheus text exposition format (families without samples are left out). */
export function formatPrometheus(families: readonly MetricFamily[]): string {
  if (!Array.isArray(families)) throw new InvalidArgTypeError('families', 'an array of metric families', families);
  let out = '';
  for (const fam of families) {
    if (fam.samples.length === 0) continue;
    out += `# HELP ${fam.name} ${escapeHelp(fam.help)}\n# TYPE ${fam.name} ${fam.type}\n`;
    for (const s of fam.samples) {
      const keys = Object.keys(s.labels);
      let labels = '';
      if (keys.length > 0) {
        labels = `{${keys.map((k) => `${k}="${escapeLabel(s.labels[k]!)}"`).join(',')}}`;
      }
      out += `${fam.name}${labels} ${formatValue(s.value)}\n`;
    }
  }
  return out;
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabel(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
