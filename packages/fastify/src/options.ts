import type { BulkheadPolicy } from '@bulwark/bulkhead';
import { type Clock, systemClock } from '@bulwark/clock';
import { type InvalidOptionsError, OptionsChecker } from '@bulwark/core';
import { type HttpIdempotency, type HttpIdempotencyOptions, httpIdempotency } from '@bulwark/idempotency';
import type { FastifyRequest } from 'fastify';

/** Options for {@link bulwarkFastify}. */
export interface BulwarkFastifyOptions {
  /**
   * Sheds load: each request takes a slot with `tryAcquire()` on arrival and
   * gives it back when its response closes; when none is free the request
   * gets 503 with `Retry-After`. A bulkhead with an adaptive limit
   * (`bulkhead({ maxConcurrent: adaptiveLimit(...) })`) learns the limit.
   * Default: no shedding.
   */
  readonly bulkhead?: BulkheadPolicy;
  /** The `Retry-After` of a shed request's 503, in seconds (an integer >= 0). Default: 1. */
  readonly retryAfterSeconds?: number;
  /**
   * The budget of a request that carries no deadline header, in milliseconds
   * (> 0). Default: Infinity (no deadline).
   */
  readonly defaultTimeoutMs?: number;
  /** The largest inbound budget accepted, in milliseconds (> 0); longer ones are cut. Default: Infinity. */
  readonly maxTimeoutMs?: number;
  /** The clock deadlines are measured on. Default: the system clock. */
  readonly clock?: Clock;
}

/** The defaults of {@link BulwarkFastifyOptions}. */
export const BULWARK_FASTIFY_DEFAULTS = Object.freeze({
  retryAfterSeconds: 1,
  defaultTimeoutMs: Number.POSITIVE_INFINITY,
  maxTimeoutMs: Number.POSITIVE_INFINITY,
});

/**
 * Idempotency for one route, set as the route's `config.idempotency`: the
 * options of `httpIdempotency()` from @bulwark/idempotency (`store`,
 * `required` (default true), `ttlMs`, `leaseMs`, `storeStatus`, ...), plus
 * `scope`.
 */
export interface RouteIdempotencyOptions extends HttpIdempotencyOptions {
  /**
   * Who is asking, for example the authenticated principal: keys are
   * namespaced by it, so one client can never replay another's response.
   * Default: one namespace for every client.
   */
  readonly scope?: (request: FastifyRequest) => string | undefined;
}

/** Resolved, frozen plugin options. */
export interface ResolvedOptions {
  readonly bulkhead: BulkheadPolicy | undefined;
  readonly retryAfterSeconds: number;
  readonly defaultTimeoutMs: number;
  readonly maxTimeoutMs: number;
  readonly clock: Clock;
}

export function resolveOptions(options: BulwarkFastifyOptions | undefined): ResolvedOptions {
  const check = new OptionsChecker('bulwarkFastify()');
  const b = options?.bulkhead as { tryAcquire?: unknown } | undefined;
  check.expect(
    b === undefined || (typeof b === 'object' && b !== null && typeof b.tryAcquire === 'function'),
    'bulkhead',
    b,
    'a bulkhead from bulkhead() (with tryAcquire())',
  );
  check.number('retryAfterSeconds', options?.retryAfterSeconds, { integer: true, min: 0 });
  check.number('defaultTimeoutMs', options?.defaultTimeoutMs, { above: 0, infinite: true });
  check.number('maxTimeoutMs', options?.maxTimeoutMs, { above: 0, infinite: true });
  const clock = options?.clock as { now?: unknown; setTimeout?: unknown } | undefined;
  check.expect(
    clock === undefined ||
      (typeof clock === 'object' &&
        clock !== null &&
        typeof clock.now === 'function' &&
        typeof clock.setTimeout === 'function'),
    'clock',
    clock,
    'a Clock (with now and setTimeout methods)',
  );
  check.done();
  return Object.freeze({
    bulkhead: options?.bulkhead,
    retryAfterSeconds: options?.retryAfterSeconds ?? BULWARK_FASTIFY_DEFAULTS.retryAfterSeconds,
    defaultTimeoutMs: options?.defaultTimeoutMs ?? BULWARK_FASTIFY_DEFAULTS.defaultTimeoutMs,
    maxTimeoutMs: options?.maxTimeoutMs ?? BULWARK_FASTIFY_DEFAULTS.maxTimeoutMs,
    clock: options?.clock ?? systemClock,
  });
}

/**
 * Builds a route's idempotency mapping, checking its options and those of
 * `httpIdempotency()` together: one RangeError lists every violation.
 */
export function routeIdempotency(
  route: string,
  options: RouteIdempotencyOptions,
): { readonly http: HttpIdempotency; readonly scope: RouteIdempotencyOptions['scope'] } {
  const check = new OptionsChecker(`bulwarkFastify() route ${route}: config.idempotency`);
  const isObject = typeof options === 'object' && options !== null;
  check.expect(isObject, 'idempotency', options, 'an object ({ store, required, ... })');
  check.func('scope', isObject ? options.scope : undefined);
  let http: HttpIdempotency | undefined;
  if (isObject) {
    try {
      http = httpIdempotency(options);
    } catch (error) {
      const violations = (error as Partial<InvalidOptionsError>).violations;
      if (violations === undefined) throw error;
      for (const v of violations) check.expect(false, v.option, v.value, v.expected);
    }
  }
  check.done();
  return { http: http!, scope: options.scope };
}
