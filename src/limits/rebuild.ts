/**
 * Errors that crossed from the task worker, turned back into instances of
 * their classes. Errors of resource-guard become their typed classes again
 * (with the worker's stack); anything else becomes an `Error` (or a built-in
 * subclass of the same name) carrying the original name, message, code,
 * primitive fields and stack.
 *
 * @module
 */
import { BudgetExceededError } from '../errors';
import { CountLimitError, FuelExhaustedError, FuelMeteringError, IoLimitError, OverReleaseError, RateLimitError } from './errors';
import type { ErrorData } from './shared';

const BUILTIN: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/**
 * Errors the task side creates that are rebuilt as their class: code and
 * the class name it must carry (an error of the task's own that happens to
 * use one of these codes under another name is not mistaken for ours).
 */
const TYPED: Readonly<Record<string, string>> = {
  ERR_FUEL_EXHAUSTED: 'FuelExhaustedError',
  ERR_FUEL_METERING_OFF: 'FuelMeteringError',
  ERR_IO_LIMIT: 'IoLimitError',
  ERR_BUDGET_EXCEEDED: 'BudgetExceededError',
  ERR_MEMORY_GROWTH_RATE: 'RateLimitError',
  ERR_IO_RATE: 'RateLimitError',
  ERR_NETWORK_RATE: 'RateLimitError',
  ERR_OPEN_FILES_LIMIT: 'CountLimitError',
  ERR_THREADS_LIMIT: 'CountLimitError',
  ERR_CONNECTIONS_LIMIT: 'CountLimitError',
  ERR_NETWORK_BYTES_LIMIT: 'CountLimitError',
  ERR_OVER_RELEASE: 'OverReleaseError',
};

/** Codes of errors the task side creates and that are rebuilt as their class. */
export const TYPED_CODES: ReadonlySet<string> = new Set(Object.keys(TYPED));

export function rebuildError(d: ErrorData): Error {
  const f = d.fields;
  let err: Error;
  const typed = d.code !== undefined && Object.prototype.hasOwnProperty.call(TYPED, d.code) && TYPED[d.code] === d.name ? d.code : undefined;
  switch (typed) {
    case 'ERR_FUEL_EXHAUSTED':
      err = new FuelExhaustedError(num(f.limit), num(f.used), num(f.requested));
      break;
    case 'ERR_IO_LIMIT':
      err = new IoLimitError(f.direction === 'read' ? 'read' : 'write', num(f.limit), num(f.used), num(f.requested));
      break;
    case 'ERR_BUDGET_EXCEEDED':
      err = new BudgetExceededError(typeof f.budget === 'string' ? f.budget : '', num(f.requested), num(f.limit), num(f.current));
      break;
    case 'ERR_FUEL_METERING_OFF':
      err = new FuelMeteringError(f.operation === 'reset' ? 'reset' : 'add');
      break;
    case 'ERR_MEMORY_GROWTH_RATE':
    case 'ERR_IO_RATE':
    case 'ERR_NETWORK_RATE':
      err = new RateLimitError(typed, str(f.resource), num(f.limit), num(f.windowMs), num(f.used), num(f.requested), str(f.unit));
      break;
    case 'ERR_OPEN_FILES_LIMIT':
    case 'ERR_THREADS_LIMIT':
    case 'ERR_CONNECTIONS_LIMIT':
    case 'ERR_NETWORK_BYTES_LIMIT':
      err = new CountLimitError(typed, str(f.resource), num(f.limit), num(f.used), num(f.requested));
      break;
    case 'ERR_OVER_RELEASE':
      err = new OverReleaseError(str(f.resource), num(f.held), num(f.requested));
      break;
    default: {
      const Ctor = Object.prototype.hasOwnProperty.call(BUILTIN, d.name) ? BUILTIN[d.name]! : Error;
      err = new Ctor(d.message);
      if (err.name !== d.name) {
        Object.defineProperty(err, 'name', { value: d.name, writable: true, enumerable: false, configurable: true });
      }
      Object.assign(err, d.fields);
      if (d.code !== undefined) (err as Error & { code: string }).code = d.code;
    }
  }
  if (d.stack !== undefined) err.stack = d.stack;
  if (d.cause !== undefined) err.cause = rebuildError(d.cause);
  return err;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : NaN;
}
