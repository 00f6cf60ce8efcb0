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
import { ResourceError } from '../errors';
import { validateObject } from '../validate';
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
 * at each scrape. Throws prom-client's error if a name is already
 * registered, after undoing its own registrations.
 */
export function registerPromClient(options: PromClientOptions = {}): PromClientRegistration {
  checkMetricsSources(options);
  const client = options.client ?? loadPeer<PromClientLike>('prom-client', 'registerPromClient()');
  validateObject(client, 'options.client');
  const registry = options.registry ?? client.register;
  validateObject(registry, 'options.registry');
  const samplesOf = perTurnCollector(options);
  const names: string[] = [];
  try {
    for (const s of METRIC_SPECS) {
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

export interface OpenTelemetryOptions extends MetricsSources {
  /** Meter to create the instruments on. @default api.metrics.getMeter('resource-guard') */
  meter?: OtelMeterLike;
  /** The `@opentelemetry/api` module. @default require('@opentelemetry/api') */
  api?: OtelApiLike;
}

export interface OpenTelemetryRegistration {
  /** Names of the instruments created. */
  readonly names: readonly string[];
  /** Stops observing (instruments cannot be deleted from a meter; they stop reporting). */
  unregister(): void;
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
    unregister() {
      if (!active) return;
      active = false;
      m.removeBatchObservableCallback(callback, instruments);
    },
  };
}
