import { IDEMPOTENCY_IN_PROGRESS_HEADER } from '@bulwark/idempotency';

const IN_PROGRESS_HEADER = IDEMPOTENCY_IN_PROGRESS_HEADER.toLowerCase();

/** A bulwark server's answer that an earlier request with this key is still running. */
export function isInProgress(response: Response): boolean {
  return response.status === 409 && response.headers.get(IN_PROGRESS_HEADER)?.trim().toLowerCase() === 'true';
}

/** Methods RFC 9110 §9.2.2 defines as idempotent: safe to send again after a failure. */
const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/**
 * True for the methods RFC 9110 defines as idempotent (GET, HEAD, OPTIONS,
 * TRACE, PUT, DELETE), case-insensitively. Any other method (POST, PATCH, a
 * custom one) may do its work twice when sent twice, so `createFetch` retries
 * it only when the request carries an `Idempotency-Key`.
 */
export function isIdempotentMethod(method: string): boolean {
  return IDEMPOTENT_METHODS.has(method.toUpperCase());
}

/** {@link isIdempotentMethod} for a method already in upper case. */
export function isIdempotentUpperCase(method: string): boolean {
  return IDEMPOTENT_METHODS.has(method);
}

/** The request header that carries the attempt number: 1 for the first, 2 for the first retry, … */
export const RETRY_ATTEMPT_HEADER = 'x-retry-attempt';

/**
 * True when a request body can be sent again for a retry: no body, a string,
 * bytes, a Blob, FormData or URLSearchParams. A stream (a ReadableStream or
 * an async iterable) is read as it is sent and cannot be replayed.
 */
export function isReplayableBody(body: unknown): boolean {
  if (body === null || body === undefined) return true;
  if (typeof body === 'string') return true;
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return true;
  if (body instanceof Blob || body instanceof FormData || body instanceof URLSearchParams) return true;
  if (typeof SharedArrayBuffer !== 'undefined' && body instanceof SharedArrayBuffer) return true;
  return false;
}

const noop = (): void => {};

/**
 * Lets go of a response nobody will read, so its connection is not held:
 * a body whose `Content-Length` is at most `maxDrainBytes` is read to the end
 * in the background (the connection can then carry the next request); any
 * other body is cancelled (the connection is closed). Errors are ignored.
 */
export function discardResponse(response: Response, maxDrainBytes: number): void {
  const body = response.body;
  if (body === null || response.bodyUsed || body.locked) return;
  const length = response.headers.get('content-length');
  // A Headers value has no surrounding whitespace left (the Fetch standard strips it).
  if (length !== null && /^[0-9]+$/.test(length) && Number(length) <= maxDrainBytes) {
    response.arrayBuffer().then(noop, noop);
    return;
  }
  body.cancel().then(noop, noop);
}
