/**
 * `resource-guard/limits`: limited tasks, fuel, rate and count limits, profiles and sandboxes.
 *
 * The same objects as the root entry (one instance of the library), without
 * loading the rest of it. Every name here is also exported by
 * `resource-guard`.
 *
 * @module
 */
export * from '../errors';
export { parseSize, sizeUnit, type Size } from '../size';
export * from '../limits/index';
