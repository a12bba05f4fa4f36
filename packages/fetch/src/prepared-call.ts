import { CallbackError } from '@bulwark/core';
import { formatIdempotencyKeyHeader, IDEMPOTENCY_KEY_HEADER } from '@bulwark/idempotency';
import type { OriginGroups } from './equivalent-origins.ts';
import { isIdempotentUpperCase, isReplayableBody } from './http.ts';
import { httpOrigin } from './origin.ts';

/** Everything one call needs, worked out once before its first attempt. */
export interface PreparedCall {
  readonly origin: string;
  readonly method: string;
  /** The request's own headers; undefined when it has none (a string or URL and no `init.headers`). */
  readonly headers: Headers | undefined;
  readonly request: Request | undefined;
  readonly init: RequestInit | undefined;
  readonly retryable: boolean;
  readonly cloneRequest: boolean;
  readonly key: string | undefined;
  /** The request has an `Idempotency-Key` and a body that can be sent again: an in-progress 409 is polled. */
  readonly pollable: boolean;
  /** Hedging is on and the request may be sent more than once at a time: GET, HEAD, or keyed, with a replayable body. */
  readonly hedged: boolean;
  /** The URL the attempts go to (the request's, or with an equivalent origin), for span attributes. */
  readonly url: string;
  /** The request's group of equivalent origins, when it has one. */
  readonly group: readonly string[] | undefined;
  /** The URL to send to instead of the request's, when an attempt goes to an equivalent origin. */
  readonly target: string | undefined;
}

/** What {@link callPreparer} needs of a fetch's resolved options. */
export interface PrepareSettings {
  readonly generateKey: () => string;
  /** Add an `Idempotency-Key` to non-idempotent requests that have none. */
  readonly idempotencyKeys: boolean;
  /** `maxAttempts` is above 1. */
  readonly canRetry: boolean;
  readonly pollInProgress: boolean;
  /** A hedging policy is configured. */
  readonly hedging: boolean;
  readonly originGroups: OriginGroups | undefined;
}

/**
 * Request preparation: a function that works out, once per call and before
 * its first attempt, what every attempt needs (origin, method, headers with
 * the idempotency key, whether the call may be retried, polled, hedged, and its
 * group of equivalent origins), or undefined for a URL that is not http(s),
 * which the underlying fetch answers as it is.
 */
export function callPreparer(
  settings: PrepareSettings,
): (input: string | URL | Request, init: RequestInit | undefined) => PreparedCall | undefined {
  const { generateKey, idempotencyKeys, canRetry, pollInProgress, hedging, originGroups } = settings;
  return (input, init) => {
    const request = input instanceof Request ? input : undefined;
    let origin: string | null;
    if (input instanceof URL) {
      origin = input.protocol === 'http:' || input.protocol === 'https:' ? input.origin : null;
    } else {
      // Parsed once per distinct scheme and authority (see origin.ts), not once per call.
      origin = httpOrigin(request !== undefined ? request.url : String(input));
    }
    // Not a valid http(s) URL: the underlying fetch answers it (a TypeError, or its own scheme).
    if (origin === null) return undefined;
    const method = (init?.method ?? request?.method ?? 'GET').toUpperCase();
    const given = init?.headers ?? request?.headers;
    // Without headers of its own, a call's attempts start each from an empty set.
    let headers = given === undefined ? undefined : new Headers(given);
    let key: string | undefined;
    const idempotent = isIdempotentUpperCase(method);
    if (!idempotent && idempotencyKeys && !headers?.has(IDEMPOTENCY_KEY_HEADER)) {
      try {
        key = generateKey();
      } catch (error) {
        throw new CallbackError('generateIdempotencyKey', error);
      }
      headers ??= new Headers();
      headers.set(IDEMPOTENCY_KEY_HEADER, formatIdempotencyKeyHeader(key));
    }
    const initBody = init?.body;
    const bodyFromRequest = initBody === undefined && request !== undefined && request.body !== null;
    const replayable = initBody === undefined || isReplayableBody(initBody);
    const keyed = headers?.has(IDEMPOTENCY_KEY_HEADER) === true;
    const retryable = canRetry && replayable && (idempotent || keyed);
    const pollable = pollInProgress && replayable && keyed;
    const hedged = hedging && replayable && (method === 'GET' || method === 'HEAD' || keyed);
    return {
      origin,
      method,
      headers,
      request,
      init,
      retryable,
      cloneRequest: (retryable || pollable || hedged) && bodyFromRequest,
      key,
      pollable,
      hedged,
      url: request !== undefined ? request.url : String(input),
      group: originGroups?.get(origin),
      target: undefined,
    };
  };
}
