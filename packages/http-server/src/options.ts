import type { BulkheadPolicy } from '@bulwark/bulkhead';
import { type Clock, systemClock } from '@bulwark/clock';
import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import { checkInboundRateLimit, type InboundRateLimitOptions } from './rate-limit.ts';

/**
 * The keys of {@link BulwarkServerOptions}, for an adapter's own check of
 * unknown keys: its options are these plus its own.
 */
export const SERVER_OPTION_KEYS: ReadonlySet<string> = optionKeys<BulwarkServerOptions>({
  bulkhead: true,
  rateLimit: true,
  retryAfterSeconds: true,
  defaultTimeoutMs: true,
  maxTimeoutMs: true,
  clock: true,
});

/**
 * The server options, plus what Fastify itself reads from a plugin's options
 * when it is registered (`prefix`, `logLevel`, `logSerializers`).
 */
const SERVER_KEYS: ReadonlySet<string> = new Set([
  ...SERVER_OPTION_KEYS,
  'prefix',
  'logLevel',
  'logSerializers',
]);

/** Options shared by every server adapter: `bulwarkHttp()`, `bulwarkFastify`, `bulwarkExpress()`. */
export interface BulwarkServerOptions {
  /**
   * Sheds load: each request takes a slot with `tryAcquire()` on arrival and
   * gives it back when its response closes; when none is free the request
   * gets 503 with `Retry-After`. A bulkhead with an adaptive limit
   * (`bulkhead({ maxConcurrent: adaptiveLimit(...) })`) learns the limit.
   * Default: no shedding.
   */
  readonly bulkhead?: BulkheadPolicy | undefined;
  /**
   * An inbound rate limit, checked right after admission: a request over the
   * limit gets 429 with `Retry-After`, and every answer carries the
   * `RateLimit-Policy` and `RateLimit` fields. Default: none.
   */
  readonly rateLimit?: InboundRateLimitOptions | undefined;
  /** The `Retry-After` of a shed request's 503, in seconds (an integer >= 0). Default: 1. */
  readonly retryAfterSeconds?: number | undefined;
  /**
   * The budget of a request that carries no deadline header, in milliseconds
   * (> 0). Default: Infinity (no deadline).
   */
  readonly defaultTimeoutMs?: number | undefined;
  /** The largest inbound budget accepted, in milliseconds (> 0); longer ones are cut. Default: Infinity. */
  readonly maxTimeoutMs?: number | undefined;
  /** The clock deadlines are measured on. Default: the system clock. */
  readonly clock?: Clock | undefined;
}

/** The defaults of {@link BulwarkServerOptions}. */
export const BULWARK_SERVER_DEFAULTS = Object.freeze({
  retryAfterSeconds: 1,
  defaultTimeoutMs: Number.POSITIVE_INFINITY,
  maxTimeoutMs: Number.POSITIVE_INFINITY,
});

/** Checked, frozen {@link BulwarkServerOptions} with their defaults filled in. */
export interface ResolvedServerOptions {
  readonly bulkhead: BulkheadPolicy | undefined;
  readonly rateLimit: InboundRateLimitOptions | undefined;
  readonly retryAfterSeconds: number;
  readonly defaultTimeoutMs: number;
  readonly maxTimeoutMs: number;
  readonly clock: Clock;
}

/** Adds the violations of `options` to `check`, so a caller can list its own too. */
export function checkServerOptions(check: OptionsChecker, options: BulwarkServerOptions | undefined): void {
  const b = options?.bulkhead as { tryAcquire?: unknown } | undefined;
  check.expect(
    b === undefined || (typeof b === 'object' && b !== null && typeof b.tryAcquire === 'function'),
    'bulkhead',
    b,
    'a bulkhead from bulkhead() (with tryAcquire())',
  );
  checkInboundRateLimit(check, options?.rateLimit);
  check.number('retryAfterSeconds', options?.retryAfterSeconds, { integer: true, min: 0 });
  check.number('defaultTimeoutMs', options?.defaultTimeoutMs, { above: 0, infinite: true });
  check.number('maxTimeoutMs', options?.maxTimeoutMs, { above: 0, infinite: true });
  check.clock('clock', options?.clock, true);
}

/** `options` (already checked) with the defaults filled in, frozen. */
export function withServerDefaults(options: BulwarkServerOptions | undefined): ResolvedServerOptions {
  return Object.freeze({
    bulkhead: options?.bulkhead,
    rateLimit: options?.rateLimit,
    retryAfterSeconds: options?.retryAfterSeconds ?? BULWARK_SERVER_DEFAULTS.retryAfterSeconds,
    defaultTimeoutMs: options?.defaultTimeoutMs ?? BULWARK_SERVER_DEFAULTS.defaultTimeoutMs,
    maxTimeoutMs: options?.maxTimeoutMs ?? BULWARK_SERVER_DEFAULTS.maxTimeoutMs,
    clock: options?.clock ?? systemClock,
  });
}

/**
 * Checks `options` and fills in the defaults. `caller` names the adapter in the
 * error, for example `"bulwarkFastify()"`.
 * @throws InvalidOptionsError (a RangeError) listing every bad option.
 */
export function resolveServerOptions(
  options: BulwarkServerOptions | undefined,
  caller: string,
): ResolvedServerOptions {
  const check = new OptionsChecker(caller);
  check.knownKeys(options, SERVER_KEYS);
  checkServerOptions(check, options);
  check.done();
  return withServerDefaults(options);
}
