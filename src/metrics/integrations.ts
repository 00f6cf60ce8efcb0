/**
 * The catalogue registered into prom-client and OpenTelemetry. Both are
 * optional peer dependencies: they are loaded with `require` on first use,
 * and a missing one is reported with the command that installs it. The
 * module objects can also be passed in (bundlers, several copies installed).
 *
 * Only the structural types below are used, so the declarations of this
 * package never import from either peer.
 *
 * @module
 */
import { InvalidArgValueError, ResourceError } from '../errors';
import { validateBoolean, validateObject } from '../validate';
import { checkMetricsSources, collectMetrics, METRIC_SPECS, type MetricSample, type MetricsSources } from './families';

/** An optional peer dependency is not installed. */
export class MissingPeerDependencyError extends ResourceError {
  constructor(
    /** The package that is missing. */
    readonly dependency: string,
    /** The function that needed it. */
    readonly feature: string,
  ) {
    super(
      'ERR_MISSING_PEER_DEPENDENCY',
      `${feature} needs the optional peer dependency "${dependency}", which is not installed. ` +
        `Install it next to resource-guard (npm install ${dependency}), or pass the loaded module in the options.`,
    );
  }
}

function loadPeer<T>(dependency: string, feature: string): T {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(dependency) as T;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e && e.code === 'MODULE_NOT_FOUND' && typeof e.message === 'string' && e.message.includes(`'${dependency}'`)) {
      throw new MissingPeerDependencyError(dependency, feature);
    }
    throw err;
  }
}

// Samples are read once per scrape, not once per metric: the first collect()
// of a turn of the event loop reads every source, the others reuse that.
function perTurnCollector(sources: MetricsSources): () => Map<string, MetricSample[]> {
  let cache: Map<string, MetricSample[]> | null = null;
  return () => {
    if (cache === null) {
      cache = new Map(collectMetrics(sources).map((f) => [f.name, f.samples]));
      setImmediate(() => {
        cache = null;
      }).unref();
    }
    return cache;
  };
}

// ---- prom-client ---------------------------------------------------------------------------

/** The part of a prom-client metric used here. */
export interface PromMetricLike {
  reset(): void;
  remove(...labelValues: string[]): void;
}

/** The part of a prom-client `Registry` used here. */
export interface PromRegistryLike {
  registerMetric(metric: unknown): void;
  removeSingleMetric(name: string): void;
  getSingleMetric(name: string): unknown;
}

interface PromConfig {
  name: string;
  help: string;
  labelNames: string[];
  registers: PromRegistryLike[];
  collect(this: PromMetricLike & { set?(labels: Record<string, string>, v: number): void; inc?(labels: Record<string, string>, v: number): void }): void;
}

/** The part of the prom-client module used here. */
export interface PromClientLike {
  Gauge: new (config: PromConfig) => unknown;
  Counter: new (config: PromConfig) => unknown;
  register: PromRegistryLike;
}

export interface PromClientOptions extends MetricsSources {
  /** Registry to add the metrics to. @default prom-client's global `register` */
  registry?: PromRegistryLike;
  /** The prom-client module. @default require('prom-client') */
  client?: PromClientLike;
  /**
   * Also register the metrics that repeat a prom-client default metric
   * (`resource_guard_memory_usage_bytes` = `process_resident_memory_bytes`,
   * `resource_guard_process_cpu_seconds_total` = `process_cpu_seconds_total`,
   * `resource_guard_event_loop_lag_seconds` = `nodejs_eventloop_lag_p99_seconds`).
   * @default false
   */
  includeDuplicates?: boolean;
}

export interface PromClientRegistration {
  /** Names of the metrics added. */
  readonly names: readonly string[];
  /** Removes them from the registry. */
  unregister(): void;
}

/**
 * Registers resource-guard's metrics (the same names, types and values as
 * {@link metrics}) as prom-client gauges and counters whose values are read
 * at each scrape, except those that repeat a prom-client default metric
 * (see `includeDuplicates`). Throws prom-client's error if a name is already
 * registered, after undoing its own registrations.
 */
export function registerPromClient(options: PromClientOptions = {}): PromClientRegistration {
  checkMetricsSources(options);
  const client = options.client ?? loadPeer<PromClientLike>('prom-client', 'registerPromClient()');
  validateObject(client, 'options.client');
  const registry = options.registry ?? client.register;
  validateObject(registry, 'options.registry');
  const includeDuplicates =
    options.includeDuplicates === undefined ? false : validateBoolean(options.includeDuplicates, 'options.includeDuplicates');
  const samplesOf = perTurnCollector(options);
  const names: string[] = [];
  try {
    for (const s of METRIC_SPECS) {
      if (s.promClientDefault !== undefined && !includeDuplicates) continue;
      const Ctor = s.type === 'counter' ? client.Counter : client.Gauge;
      const counter = s.type === 'counter';
      new Ctor({
        name: s.name,
        help: s.help,
        labelNames: [...s.labelNames],
        registers: [registry],
        collect() {
          const samples = samplesOf().get(s.name) ?? [];
          this.reset();
          for (const x of samples) {
            if (counter) this.inc!({ ...x.labels }, x.value);
            else this.set!({ ...x.labels }, x.value);
          }
          // reset() leaves a label-less metric at 0; an unknown figure must
          // produce no sample rather than a zero.
          if (samples.length === 0 && s.labelNames.length === 0) this.remove();
        },
      });
      names.push(s.name);
    }
  } catch (err) {
    for (const n of names) registry.removeSingleMetric(n);
    throw err;
  }
  return {
    names: Object.freeze([...names]),
    unregister() {
      for (const n of names) {
        if (registry.getSingleMetric(n) !== undefined) registry.removeSingleMetric(n);
      }
    },
  };
}

// ---- OpenTelemetry -------------------------------------------------------------------------

/** An observable instrument (opaque here). */
export type OtelObservableLike = object;

/** The part of `BatchObservableResult` used here. */
export interface OtelBatchResultLike {
  observe(observable: OtelObservableLike, value: number, attributes?: Record<string, string>): void;
}

/** The part of an OpenTelemetry `Meter` used here. */
export interface OtelMeterLike {
  createObservableGauge(name: string, options?: { description?: string; unit?: string }): OtelObservableLike;
  createObservableCounter(name: string, options?: { description?: string; unit?: string }): OtelObservableLike;
  addBatchObservableCallback(callback: (result: OtelBatchResultLike) => void, observables: OtelObservableLike[]): void;
  removeBatchObservableCallback(callback: (result: OtelBatchResultLike) => void, observables: OtelObservableLike[]): void;
}

/** The part of `@opentelemetry/api` used here. */
export interface OtelApiLike {
  metrics: { getMeter(name: string, version?: string): OtelMeterLike };
}

/** The part of an OpenTelemetry SDK `MeterProvider` used here. */
export interface OtelMeterProviderLike {
  getMeter(name: string, version?: string): OtelMeterLike;
  shutdown?(): Promise<void>;
}

export interface OpenTelemetryOptions extends MetricsSources {
  /** Meter to create the instruments on. @default api.metrics.getMeter('resource-guard') */
  meter?: OtelMeterLike;
  /**
   * A MeterProvider dedicated to resource-guard's metrics (with its own
   * reader and exporter). `unregister()` then shuts it down, which is the one
   * way to stop a cumulative exporter of the OpenTelemetry JS SDK from
   * re-exporting the last value of every series it has seen.
   */
  meterProvider?: OtelMeterProviderLike;
  /** The `@opentelemetry/api` module. @default require('@opentelemetry/api') */
  api?: OtelApiLike;
}

export interface OpenTelemetryRegistration {
  /** Names of the instruments created. */
  readonly names: readonly string[];
  /**
   * Stops observing. With delta temporality nothing more is exported. With
   * cumulative temporality the OpenTelemetry JS SDK keeps exporting the last
   * value of every series already seen (instruments cannot be removed from
   * a meter): register on a dedicated `meterProvider`, which this shuts
   * down, to stop that too. Resolves when the provider is shut down.
   */
  unregister(): Promise<void>;
}

/**
 * Observes resource-guard's metrics through OpenTelemetry: one observable
 * gauge (or counter, for the `_total` metrics) per catalogue entry, with
 * OpenTelemetry names and UCUM units (`resource_guard.memory.usage`, `By`),
 * all read in one batch callback per collection.
 */
export function registerOpenTelemetry(options: OpenTelemetryOptions = {}): OpenTelemetryRegistration {
  checkMetricsSources(options);
  let meter = options.meter;
  const provider = options.meterProvider;
  if (provider !== undefined) {
    validateObject(provider, 'options.meterProvider');
    if (meter !== undefined) throw new InvalidArgValueError('options.meterProvider', 'given', 'cannot be combined with options.meter');
    meter = provider.getMeter('resource-guard');
  }
  if (meter === undefined) {
    const api = options.api ?? loadPeer<OtelApiLike>('@opentelemetry/api', 'registerOpenTelemetry()');
    validateObject(api, 'options.api');
    meter = api.metrics.getMeter('resource-guard');
  }
  validateObject(meter, 'options.meter');
  const m = meter;
  const instruments = METRIC_SPECS.map((s) =>
    s.type === 'counter'
      ? m.createObservableCounter(s.otelName, { description: s.help, unit: s.unit })
      : m.createObservableGauge(s.otelName, { description: s.help, unit: s.unit }),
  );
  const callback = (result: OtelBatchResultLike) => {
    const families = collectMetrics(options);
    for (let i = 0; i < families.length; i++) {
      for (const x of families[i]!.samples) result.observe(instruments[i]!, x.value, { ...x.labels });
    }
  };
  m.addBatchObservableCallback(callback, instruments);
  let active = true;
  return {
    names: Object.freeze(METRIC_SPECS.map((s) => s.otelName)),
    async unregister() {
      if (!active) return;
      active = false;
      m.removeBatchObservableCallback(callback, instruments);
      if (provider !== undefined && typeof provider.shutdown === 'function') await provider.shutdown();
    },
  };
}
