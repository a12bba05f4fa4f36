import { isBulwarkError, isRefusal } from '@bulwark/core';

/**
 * Error codes from Node.js and its DNS resolver that mean the connection or
 * the network failed, so the request may not have been processed and a new
 * attempt may succeed.
 */
export const TRANSIENT_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENOTCONN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_HTTP2_STREAM_ERROR',
  'ERR_HTTP2_GOAWAY_SESSION',
]);

/**
 * undici (`fetch`) codes under `UND_ERR_*` that do NOT mean a transient fault:
 * a bad argument, an abort (the caller's decision), or a response the client
 * refused by its own limits. Every other `UND_ERR_*` code is transient.
 */
export const NON_TRANSIENT_UNDICI_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_ABORTED',
  'UND_ERR_INVALID_ARG',
  'UND_ERR_INVALID_RETURN_VALUE',
  'UND_ERR_NOT_SUPPORTED',
  'UND_ERR_RES_EXCEEDED_MAX_SIZE',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

function codeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}

function isTransientCode(code: unknown): boolean {
  if (typeof code !== 'string') return false;
  if (TRANSIENT_ERROR_CODES.has(code)) return true;
  return code.startsWith('UND_ERR_') && !NON_TRANSIENT_UNDICI_CODES.has(code);
}

/** A transient code on the error or on its causes (fetch wraps the socket error as `cause`). */
function hasTransientCode(error: unknown): boolean {
  let current = error;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    if (isTransientCode(codeOf(current))) return true;
    const errors = (current as { errors?: unknown }).errors; // AggregateError from happy eyeballs
    if (Array.isArray(errors) && errors.some((e) => isTransientCode(codeOf(e)))) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** Whether the error or one of its causes (or an AggregateError's members) carries any string code. */
function hasAnyCode(error: unknown): boolean {
  let current = error;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    if (typeof codeOf(current) === 'string') return true;
    const errors = (current as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors.some((e) => typeof codeOf(e) === 'string')) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * fetch's network failure: a TypeError whose cause carries a transient code,
 * or undici's `fetch failed` whose cause names no code at all. A `fetch failed`
 * whose cause carries only codes that are not transient (DNS `ENOTFOUND`, a TLS
 * certificate error such as `CERT_HAS_EXPIRED`) is a permanent failure: another
 * attempt would fail the same way. Any other TypeError is a programming error.
 */
function isFetchNetworkError(error: TypeError): boolean {
  if (hasTransientCode(error.cause)) return true;
  return error.message === 'fetch failed' && !hasAnyCode(error.cause);
}

/**
 * The default classifier: true for errors that mean "maybe transient".
 *
 * Retried:
 * - Node.js and undici network errors ({@link TRANSIENT_ERROR_CODES}, `UND_ERR_*`
 *   except {@link NON_TRANSIENT_UNDICI_CODES}), on the error or its `cause`;
 * - fetch's network `TypeError` (`fetch failed` whose cause carries a transient
 *   code or no code at all);
 * - an attempt timeout (`DeadlineExceededError` with `source: 'timeout'`);
 * - errors marked `retryable: true`, or carrying a numeric `retryAfterMs`.
 *
 * Never retried: the overall deadline (`source: 'deadline'`), a refusal
 * (`isRefusal()`: an open circuit, a full bulkhead, a rate limit, the
 * adaptive throttle), aborts,
 * errors marked `retryable: false`, a `fetch failed` whose cause carries only
 * codes that are not transient (`ENOTFOUND`, TLS certificate errors),
 * programming errors (a `TypeError` that is not a network error, `RangeError`,
 * `SyntaxError`, `ReferenceError`), and any
 * error it does not recognise. The caller's own abort is handled before any
 * classifier runs.
 */
export function isRetryableError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  // Refused without running (an open breaker, a full bulkhead): another attempt now meets the same "no".
  if (isRefusal(error)) return false;
  if (isBulwarkError(error)) {
    switch (error.code) {
      case 'ERR_DEADLINE_EXCEEDED':
        return (error as { source?: unknown }).source === 'timeout';
      case 'ERR_INVALID_OPTIONS':
      case 'ERR_CALLBACK_FAILED':
        return false;
    }
  }
  const marked = (error as { retryable?: unknown }).retryable;
  if (marked === true) return true;
  if (marked === false) return false;
  if ((error as { name?: unknown }).name === 'AbortError') return false;
  if (error instanceof TypeError) return isFetchNetworkError(error);
  if (error instanceof RangeError || error instanceof SyntaxError || error instanceof ReferenceError)
    return false;
  const hint = (error as { retryAfterMs?: unknown }).retryAfterMs;
  if (typeof hint === 'number' && hint >= 0) return true;
  return hasTransientCode(error);
}

/** The `retryAfterMs` hint an error carries: a finite number >= 0, or undefined. */
export function retryAfterHint(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const hint = (error as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof hint === 'number' && hint >= 0 && Number.isFinite(hint) ? hint : undefined;
}
