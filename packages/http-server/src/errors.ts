import { isBulwarkError } from '@bulwark/core';
import { type HttpResponse, problemResponse } from '@bulwark/idempotency';
import { deadlineExpired } from './admission.ts';

/** Codes answered 503 "at capacity": the limit is this server's or its callers'. */
const AT_CAPACITY = new Set(['ERR_BULKHEAD_FULL', 'ERR_RATE_LIMITED']);

/** Options for {@link errorResponse}. */
export interface ErrorResponseOptions {
  /**
   * The `Retry-After` of a 503 whose error carries no `retryAfterMs`, in
   * seconds. Default: 1.
   */
  readonly retryAfterSeconds?: number | undefined;
}

/** `retryAfterMs` as whole seconds, at least 1; the fallback when it is absent or not a finite number. */
function retryAfter(error: { retryAfterMs?: unknown }, fallback: number): number {
  const ms = error.retryAfterMs;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return fallback;
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * The problem+json answer (RFC 9457) for an error a handler threw, or
 * undefined when it is not one bulwark knows how to answer (leave it to the
 * framework's error handling):
 *
 * | error | answer | problem `type` |
 * | --- | --- | --- |
 * | `ERR_DEADLINE_EXCEEDED` (a deadline or an attempt timeout fired) | 504 | `urn:bulwark:deadline:expired` |
 * | `ERR_BULKHEAD_FULL`, `ERR_RATE_LIMITED` | 503, `Retry-After` | `urn:bulwark:server:overloaded` |
 * | `ERR_CIRCUIT_OPEN`, `ERR_STORE_UNAVAILABLE`, `ERR_PEER_SUSPECTED`, and any other bulwark error with a `retryAfterMs` | 503, `Retry-After` | `urn:bulwark:server:dependency-unavailable` |
 *
 * `Retry-After` is the error's `retryAfterMs` rounded up to whole seconds (at
 * least 1), or `retryAfterSeconds` when it has none. The codes are matched by
 * the `Symbol.for` brand of bulwark errors, so copies from duplicate packages
 * and codes this version does not define yet are answered too.
 */
export function errorResponse(error: unknown, options?: ErrorResponseOptions): HttpResponse | undefined {
  if (!isBulwarkError<string>(error)) return undefined;
  const fallback = options?.retryAfterSeconds ?? 1;
  const code = error.code;
  if (code === 'ERR_DEADLINE_EXCEEDED') {
    return deadlineExpired(
      `A deadline ran out while the request was processed (${error.message}). The request may have been partly processed.`,
    );
  }
  if (AT_CAPACITY.has(code)) {
    return problemResponse(
      503,
      {
        type: 'urn:bulwark:server:overloaded',
        title: 'The server is at capacity',
        detail: `The request was refused (${code}). Retry it after the time given in Retry-After.`,
      },
      retryAfter(error, fallback),
    );
  }
  if (
    code === 'ERR_CIRCUIT_OPEN' ||
    code === 'ERR_STORE_UNAVAILABLE' ||
    code === 'ERR_PEER_SUSPECTED' ||
    error.retryAfterMs !== undefined
  ) {
    return problemResponse(
      503,
      {
        type: 'urn:bulwark:server:dependency-unavailable',
        title: 'A dependency of the server is unavailable',
        detail: `The request could not be completed (${code}). Retry it after the time given in Retry-After.`,
      },
      retryAfter(error, fallback),
    );
  }
  return undefined;
}
