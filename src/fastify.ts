/**
 * A Fastify plugin: load shedding (see `shedding.ts`) as an `onRequest`
 * hook, and optionally a status route serving the health report.
 *
 * It needs no `fastify` or `fastify-plugin` package: the plugin carries the
 * metadata fastify-plugin would set (`skip-override`, so the hook applies to
 * the whole instance; a display name; the supported Fastify range), and its
 * types are structural, so users who do not use Fastify never load it.
 *
 * ```ts
 * app.register(resourceGuardFastify, { shedAt: 'minimal', retryAfter: 5, exposeStatusRoute: '/healthz' });
 * ```
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHealthHandler, type FastifyReplyLike, type HealthHandlerOptions } from './health';
import { InvalidArgTypeError, InvalidArgValueError } from './errors';
import { admit, countExempt, decideCounted, LoadShedder, type LoadShedderOptions } from './shedding';
import { validateFunction, validateObject, validateString } from './validate';

/** The parts of a Fastify request the plugin reads. */
export interface FastifyRequestLike {
  url: string;
  method?: string;
  raw: IncomingMessage;
  routeOptions?: { config?: { resourceGuard?: { exempt?: boolean } } };
}

/** The parts of a Fastify reply the plugin uses. */
export interface FastifyPluginReplyLike extends FastifyReplyLike {
  raw: ServerResponse;
  hijack?(): unknown;
}

/**
 * The parts of a Fastify instance the plugin uses. Fastify's own instance
 * type must be assignable to it, or `app.register(resourceGuardFastify,
 * options)` does not type-check: so the route options are exactly what the
 * plugin passes (Fastify 4 types `method` as a union of method names, not
 * `string`), and have no `config` (Fastify types it by the route's context
 * config, which `unknown` is not assignable to).
 */
export interface FastifyInstanceLike {
  addHook(name: 'onRequest', hook: (req: FastifyRequestLike, reply: FastifyPluginReplyLike, done: (err?: Error) => void) => void): unknown;
  addHook(name: 'onClose', hook: (instance: unknown, done: () => void) => void): unknown;
  decorate(name: string, value: unknown): unknown;
  route(options: {
    method: Array<'GET' | 'HEAD'>;
    url: string;
    config?: { resourceGuard?: { exempt?: boolean } };
    handler: (req: FastifyRequestLike, reply: FastifyPluginReplyLike) => void;
  }): unknown;
}

export interface ResourceGuardFastifyOptions extends LoadShedderOptions {
  /** A shedder to use (the plugin then does not close it). @default one made from these options */
  shedder?: LoadShedder;
  /**
   * Serve the health report (see `createHealthHandler`) on this path (GET
   * and HEAD); `true` means `/status`. The path is exempt from shedding,
   * with a shedder given to the plugin too.
   * @default false
   */
  exposeStatusRoute?: boolean | string;
  /** Options of the status route's health handler. @default the shedder's controller */
  health?: HealthHandlerOptions;
  /** Name of the instance decoration holding the shedder. @default 'resourceGuard' */
  decorateAs?: string;
}

/**
 * The plugin. Register it with `app.register(resourceGuardFastify, options)`.
 * Route-level opt-out: `{ config: { resourceGuard: { exempt: true } } }`.
 */
/** The options that configure a shedder the plugin makes (refused next to `shedder`). */
const SHEDDER_KEYS = [
  'controller',
  'degradation',
  'figures',
  'sampler',
  'sampleIntervalMs',
  'shedAt',
  'fraction',
  'random',
  'healthCheck',
  'healthCheckIntervalMs',
  'healthCheckTimeoutMs',
  'retryAfter',
  'exempt',
  'defaultExempt',
  'body',
  'contentType',
  'onShed',
  'onError',
] as const satisfies ReadonlyArray<keyof LoadShedderOptions>;

export function resourceGuardFastify(
  fastify: FastifyInstanceLike,
  options: ResourceGuardFastifyOptions,
  done: (err?: Error) => void,
): void {
  let shedder: LoadShedder;
  let owned: boolean;
  let made: LoadShedder | null = null;
  try {
    validateObject(fastify, 'fastify');
    validateFunction(fastify.decorate, 'fastify.decorate');
    validateFunction(fastify.addHook, 'fastify.addHook');
    validateFunction(fastify.route, 'fastify.route');
    const o = options === undefined ? {} : validateObject<ResourceGuardFastifyOptions>(options, 'options');
    const { shedder: given, exposeStatusRoute, health, decorateAs, ...rest } = o;
    if (given !== undefined && !(given instanceof LoadShedder)) {
      throw new InvalidArgTypeError('options.shedder', 'an instance of LoadShedder', given);
    }
    const statusPath =
      exposeStatusRoute === undefined || exposeStatusRoute === false
        ? null
        : exposeStatusRoute === true
          ? '/status'
          : validateString(exposeStatusRoute, 'options.exposeStatusRoute');
    if (statusPath !== null && !statusPath.startsWith('/')) {
      throw new InvalidArgValueError('options.exposeStatusRoute', statusPath, "must be true or a path starting with '/'");
    }
    const name = decorateAs === undefined ? 'resourceGuard' : validateString(decorateAs, 'options.decorateAs');
    if (name === '') throw new InvalidArgValueError('options.decorateAs', name, 'must not be empty');
    if (health !== undefined) validateObject(health, 'options.health');
    // Fastify passes its own keys (logLevel, prefix) along with the options.
    const { logLevel: _l, prefix: _p, ...shedderOptions } = rest as LoadShedderOptions & { logLevel?: unknown; prefix?: unknown };
    if (given !== undefined) {
      // Options for a shedder the plugin does not make would be ignored.
      const ignored = SHEDDER_KEYS.filter((k) => shedderOptions[k] !== undefined);
      if (ignored.length > 0) {
        throw new InvalidArgValueError(
          'options',
          ignored.join(', '),
          `cannot set ${ignored.join(', ')} next to options.shedder: give them to the LoadShedder instead`,
        );
      }
    } else if (statusPath !== null) {
      shedderOptions.exempt = [...(shedderOptions.exempt ?? []), statusPath];
    }
    shedder = given ?? (made = new LoadShedder(shedderOptions));
    owned = given === undefined;
    const handler = statusPath === null ? null : createHealthHandler({ controller: shedder.controller, ...health });

    fastify.decorate(name, shedder);
    // While nothing can be shed, a request costs one count and one test: the
    // hook reads nothing of it (in Fastify `url` is a getter, and
    // `routeOptions` builds an object on every read).
    fastify.addHook('onRequest', (req, reply, next) => {
      if (admit(shedder)) {
        next();
        return;
      }
      if (req.routeOptions?.config?.resourceGuard?.exempt === true) {
        countExempt(shedder);
        next();
        return;
      }
      const d = decideCounted(shedder, req.url);
      if (d === null) {
        next();
        return;
      }
      const r = shedder.consult(d, req.raw, reply.raw);
      if (r === 'pass') {
        next();
        return;
      }
      if (r === 'handled') {
        reply.hijack?.();
        return;
      }
      reply
        .code(503)
        .header('retry-after', String(d.retryAfter))
        .header('cache-control', 'no-store')
        .header('content-type', shedder.contentType)
        .send(req.method === 'HEAD' ? '' : shedder.bodyFor(d));
    });
    if (handler !== null) {
      // Exempt by its route config too, so that a shedder given to the
      // plugin (whose exempt list the plugin cannot change) never sheds it.
      fastify.route({
        method: ['GET', 'HEAD'],
        url: statusPath!,
        config: { resourceGuard: { exempt: true } },
        handler: (req, reply) => handler(req.raw, reply),
      });
    }
    fastify.addHook('onClose', (_instance, closed) => {
      if (owned) shedder.close();
      closed();
    });
  } catch (err) {
    // A shedder made here before the instance refused a step is closed again.
    made?.close();
    done(err as Error);
    return;
  }
  done();
}

// What fastify-plugin would set: the hook applies to the instance it is
// registered on (no encapsulation), under a readable name.
Object.defineProperty(resourceGuardFastify, Symbol.for('skip-override'), { value: true });
Object.defineProperty(resourceGuardFastify, Symbol.for('fastify.display-name'), { value: 'resource-guard' });
Object.defineProperty(resourceGuardFastify, Symbol.for('plugin-meta'), { value: { name: 'resource-guard', fastify: '>=4.0.0' } });
