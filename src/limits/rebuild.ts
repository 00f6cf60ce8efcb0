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
import { FuelExhaustedError, IoLimitError } from './errors';
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

/** Codes of errors the task side creates and that are rebuilt as their class. */
export const TYPED_CODES: ReadonlySet<string> = new Set(['ERR_FUEL_EXHAUSTED', 'ERR_IO_LIMIT', 'ERR_BUDGET_EXCEEDED']);

export function rebuildError(d: ErrorData): Error {
  const f = d.fields;
  let err: Error;
  switch (d.code) {
    case 'ERR_FUEL_EXHAUSTED':
      err = new FuelExhaustedError(num(f.limit), num(f.used), num(f.requested));
      break;
    case 'ERR_IO_LIMIT':
      err = new IoLimitError(f.direction === 'read' ? 'read' : 'write', num(f.limit), num(f.used), num(f.requested));
      break;
    case 'ERR_BUDGET_EXCEEDED':
      err = new BudgetExceededError(typeof f.budget === 'string' ? f.budget : '', num(f.requested), num(f.limit), num(f.current));
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

function num(v: unknown): number {
  return typeof v === 'number' ? v : NaN;
}
