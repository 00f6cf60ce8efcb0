/**
 * Errors the guards add to those of `src/errors.ts`.
 *
 * @module
 */
import { ResourceError } from '../errors';

/**
 * The free space of a guarded path could not be read (the path is missing,
 * is not a directory, or the file system refused). The guard does not guess:
 * an unreadable figure is neither "unlimited" nor "zero", and a check that
 * needs it fails closed with this error.
 */
export class DiskSpaceUnknownError extends ResourceError {
  constructor(
    /** The guarded path. */
    readonly path: string,
    /** Why the figure is unknown (a `PathError`, a `SamplerError`, or what a custom source threw). */
    readonly reason: unknown,
  ) {
    super(
      'ERR_DISK_SPACE_UNKNOWN',
      `Free disk space at ${JSON.stringify(path)} is unknown` +
        (reason instanceof Error ? `: ${reason.message}` : reason === undefined ? '' : `: ${String(reason)}`),
    );
    if (reason !== undefined) this.cause = reason;
  }
}
