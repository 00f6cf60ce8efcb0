/**
 * Alerts of limited runs: a resource passing the warning or the critical
 * fraction of its limit raises one alert per level per run. A boundary value
 * belongs to the higher level (80 % exactly is a warning). When one
 * observation jumps past both levels, only the critical alert is raised.
 *
 * @module
 */
import { OutOfRangeError } from '../errors';
import { validateNumber, validateObject } from '../validate';
import type { Alert, LimitedResource } from './types';

/** Fractions of a limit at which alerts are raised. */
export interface AlertThresholds {
  /** @default 0.8 */
  warning?: number;
  /** @default 0.95 */
  critical?: number;
}

export const DEFAULT_ALERT_THRESHOLDS: Readonly<Required<AlertThresholds>> = Object.freeze({ warning: 0.8, critical: 0.95 });

/** Validates thresholds: 0 < warning < critical <= 1. */
export function resolveThresholds(t: AlertThresholds | undefined, name = 'alertThresholds'): Required<AlertThresholds> {
  if (t === undefined) return { ...DEFAULT_ALERT_THRESHOLDS };
  validateObject(t, name);
  const warning = t.warning === undefined ? DEFAULT_ALERT_THRESHOLDS.warning : validateNumber(t.warning, `${name}.warning`, 0, 1);
  const critical = t.critical === undefined ? DEFAULT_ALERT_THRESHOLDS.critical : validateNumber(t.critical, `${name}.critical`, 0, 1);
  if (!(warning > 0)) throw new OutOfRangeError(`${name}.warning`, '> 0 and <= 1', warning);
  if (!(critical > warning)) throw new OutOfRangeError(`${name}.critical`, `> warning (${warning}) and <= 1`, critical);
  return { warning, critical };
}

/** `used` as a fraction of `limit`; a zero limit is 0 when unused and Infinity once used. */
export function fractionOf(used: number, limit: number): number {
  if (limit > 0) return used / limit;
  return used > 0 ? Infinity : 0;
}

/** Remembers which alerts a run has raised. */
export class AlertTracker {
  readonly #warning: number;
  readonly #critical: number;
  /** 0 none, 1 warning, 2 critical, per resource. */
  readonly #raised = new Map<LimitedResource, number>();

  constructor(thresholds: Required<AlertThresholds>) {
    this.#warning = thresholds.warning;
    this.#critical = thresholds.critical;
  }

  /** The alert this observation raises, or null. */
  observe(resource: LimitedResource, used: number, limit: number, elapsed: number): Alert | null {
    const fraction = fractionOf(used, limit);
    const level = fraction >= this.#critical ? 2 : fraction >= this.#warning ? 1 : 0;
    if (level <= (this.#raised.get(resource) ?? 0)) return null;
    this.#raised.set(resource, level);
    return { level: level === 2 ? 'critical' : 'warning', resource, used, limit, fraction, elapsed };
  }
}
