import { isUtf8 } from 'node:buffer';
import { hash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { systemClock } from '@bulwark/clock';
import { CallbackError, type InvalidOptionsError } from '@bulwark/core';
import { type BoundedOptions, bounded, OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import {
  type HttpDecision,
  type HttpIdempotencyOptions,
  type HttpResponse,
  httpIdempotency,
  IDEMPOTENCY_KEY_HEADER,
  type IdempotencyGuard,
  UnfingerprintableError,
} from '@bulwark/idempotency';
import { DEFAULT_MAX_UNPARSED_BODY_BYTES } from './unparsed-body.ts';

/** The route's own options, which httpIdempotency() does not take (a type error when one is missing). */
const ROUTE_ONLY_KEYS = optionKeys<Omit<RouteIdempotencyOptions<unknown>, keyof HttpIdempotencyOptions>>({
  scope: true,
  onStoreError: true,
  maxUnparsedBodyBytes: true,
  onGuard: true,
});

/** Where a store failure happened: taking the key (the request got 503) or storing the response. */
export type StoreErrorPhase = 'begin' | 'complete';

/**
 * Idempotency for one route: the options of `httpIdempotency()` from
 * @bulwark/idempotency (`store`, `required` (default true), `ttlMs`,
 * `leaseMs`, `storeStatus`, ...), plus `scope`.
 */
export interface RouteIdempotencyOptions<Request> extends HttpIdempotencyOptions {
  /**
   * Who is asking, for example the authenticated principal: keys are
   * namespaced by it, so one client can never replay another's response.
   * Default: one namespace for every client.
   *
   * When it throws (or returns something other than a string or undefined),
   * the request fails closed: the handler does not run, no key is taken, and
   * `begin()` rejects with a `CallbackError` (`ERR_CALLBACK_FAILED`, callback
   * `"scope"`, the original error as `cause`). The Fastify and Express plugins
   * pass it to the framework's error handling, as they do an error the handler
   * throws: a 500 (Fastify's JSON error, Express's default page) unless the
   * application's error handler answers otherwise. It is
   * never answered with a 4xx, nor run unscoped, since either would let a
   * server-side fault look like the client's or mix clients' keys.
   */
  readonly scope?: (request: Request) => string | undefined;
  /**
   * Told why the store failed, with the error as its cause: `'begin'` (the
   * request was answered 503 `store-unavailable`; `request` is given) or
   * `'complete'` (the response was sent but not stored yet, or a key could not
   * be released; the guard keeps the lease and retries in the background, and
   * its `onCompletion` event reports the final result). The
   * Fastify plugin logs both through Fastify's logger when this is not set.
   * Default: none.
   */
  readonly onStoreError?:
    | ((error: unknown, phase: StoreErrorPhase, request: Request | undefined) => void)
    | undefined;
  /**
   * Called once, when the route is set up, with the idempotency guard built
   * from these options, to listen to its events (`onOutcome`, `onCompletion`).
   * Default: none.
   */
  readonly onGuard?: ((guard: IdempotencyGuard<HttpResponse>) => void) | undefined;
  /**
   * Express: the largest body, in bytes, that `idempotent()` reads itself when
   * no body parser has read it yet (see {@link readUnparsedBody}); a larger one
   * is refused with 413. Fastify always parses the body before the check.
   * Default: 1,048,576 (1 MiB).
   */
  readonly maxUnparsedBodyBytes?: number | undefined;
}

/** The decision to run the handler, which the response then completes. */
export type ProceedDecision = Extract<HttpDecision, { action: 'proceed' }>;

/** What {@link IdempotentRoute.begin} fingerprints: see {@link fingerprintInput}. */
export interface IdempotentMessage {
  readonly headers: IncomingHttpHeaders;
  readonly method: string;
  readonly url: string;
  /** The body as a parser left it (`req.body`, `request.body`); undefined when there is none. */
  readonly body: unknown;
  /** The bytes of a body no parser had read (see {@link readUnparsedBody}); they take precedence over `body`. */
  readonly rawBody?: Uint8Array | undefined;
}

function header(value: string | readonly string[] | undefined): string | null {
  if (value === undefined) return null;
  return typeof value === 'string' ? value : value.join(', ');
}

function bytesOf(body: unknown): Uint8Array | undefined {
  if (body instanceof Uint8Array) return body;
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  return undefined;
}

/**
 * What a route's request is fingerprinted by (the input of the `fingerprint`
 * option), one of two shapes:
 * - the body as bytes (`rawBody`, or a parser that gave a Buffer or typed
 *   array): `{ method, url, contentType, contentEncoding, bodySha256 }`, with
 *   the two headers as sent (or null) and the SHA-256 (hex) of the bytes;
 * - otherwise, the parsed body: `{ method, url, contentType, body }`, with
 *   the media type of `content-type` in lower case, without parameters
 *   (`application/json`), or null, and `body` (null when undefined).
 *
 * The content type is part of both, so the same text sent as JSON and as
 * plain text are two requests. A body that is a stream (a parser that did not
 * buffer it) is refused with `UnfingerprintableError` (reason `"stream"`).
 */
export function fingerprintInput(message: IdempotentMessage): unknown {
  const { method, url, body } = message;
  const contentType = header(message.headers['content-type']);
  const bytes = message.rawBody ?? bytesOf(body);
  if (bytes !== undefined) {
    const contentEncoding = header(message.headers['content-encoding']);
    return { method, url, contentType, contentEncoding, bodySha256: hash('sha256', bytes, 'hex') };
  }
  if (typeof (body as { pipe?: unknown } | null)?.pipe === 'function') {
    throw new UnfingerprintableError('$.body', body, 'stream');
  }
  const mediaType = contentType === null ? null : contentType.split(';', 1)[0]!.trim().toLowerCase();
  return { method, url, contentType: mediaType, body: body ?? null };
}

/** A route's idempotency mapping, built by {@link routeIdempotency}. */
export interface IdempotentRoute<Request> {
  /** The guard built from the route's options: listen to its events here. */
  readonly guard: IdempotencyGuard<HttpResponse>;
  /** See {@link RouteIdempotencyOptions.maxUnparsedBodyBytes}. */
  readonly maxUnparsedBodyBytes: number;
  /**
   * Reads the `Idempotency-Key` header and asks the store what to do with the
   * request. Rejects with a `CallbackError` when `scope` or `fingerprint`
   * throws, and with `UnfingerprintableError` when the request cannot be
   * fingerprinted (its body is a stream, or holds a value with no JSON form).
   *
   * With a `signal` (the request's: it aborts at its deadline or when the
   * client goes away), rejects with the signal's reason as soon as it aborts,
   * even when the store never answers; a key the store grants after that is
   * released at once, so nothing is left held.
   */
  begin(request: Request, message: IdempotentMessage, signal?: AbortSignal): Promise<HttpDecision>;
}

/**
 * `pending`, or a rejection with `signal.reason` once the signal aborts first
 * (at once when it already has); `late` gets the value if it arrives after
 * that. The race is core's `bounded()`, so the signal's listener goes as soon
 * as either side ends.
 */
export function settleBefore<T>(
  pending: Promise<T>,
  signal: AbortSignal,
  late: (value: T) => void,
): Promise<T> {
  const race = new LateValue<T>(signal, late);
  pending.then(
    (value) => race.arrived(value),
    () => {},
  );
  return bounded(() => pending, race);
}

/** One {@link settleBefore} call: its bounded race's options, and what to do with a value that comes too late. */
class LateValue<T> implements BoundedOptions {
  readonly clock = systemClock;
  readonly signal: AbortSignal;
  readonly #late: (value: T) => void;
  /** The signal won the race: a value that comes now is handed to `late`. */
  #lost: boolean;
  constructor(signal: AbortSignal, late: (value: T) => void) {
    this.signal = signal;
    this.#late = late;
    this.#lost = signal.aborted;
  }
  onEarly(): void {
    this.#lost = true;
  }
  arrived(value: T): void {
    if (this.#lost) this.#late(value);
  }
}

/** Releases a key granted after its request stopped waiting for it. */
function releaseLate(decision: HttpDecision): void {
  if (decision.action === 'proceed') void decision.release();
}

const KEY_HEADER = IDEMPOTENCY_KEY_HEADER.toLowerCase();

/**
 * Builds a route's idempotency mapping, checking its options and those of
 * `httpIdempotency()` together: one RangeError, named after `caller`, lists
 * every violation.
 * @throws InvalidOptionsError (a RangeError) listing every bad option.
 */
export function routeIdempotency<Request>(
  caller: string,
  options: RouteIdempotencyOptions<Request>,
): IdempotentRoute<Request> {
  const check = new OptionsChecker(caller);
  const isObject = typeof options === 'object' && options !== null;
  check.expect(isObject, 'idempotency', options, 'an object ({ store, required, ... })');
  check.func('scope', isObject ? options.scope : undefined);
  check.func('onStoreError', isObject ? options.onStoreError : undefined);
  check.func('onGuard', isObject ? options.onGuard : undefined);
  check.number('maxUnparsedBodyBytes', isObject ? options.maxUnparsedBodyBytes : undefined, {
    integer: true,
    min: 0,
  });
  let http: ReturnType<typeof httpIdempotency> | undefined;
  if (isObject) {
    try {
      // httpIdempotency() checks the rest, unknown keys included.
      http = httpIdempotency(
        Object.fromEntries(
          Object.entries(options).filter(([key]) => !ROUTE_ONLY_KEYS.has(key)),
        ) as HttpIdempotencyOptions,
      );
    } catch (error) {
      const violations = (error as Partial<InvalidOptionsError>).violations;
      if (violations === undefined) throw error;
      check.adopt(undefined, violations);
    }
  }
  check.done();
  const mapping = http!;
  const scope = options.scope;
  const onStoreError = options.onStoreError;
  if (onStoreError !== undefined) {
    mapping.guard.onCompletion((event) => {
      if (event.result === 'store-error') onStoreError(event.error, 'complete', undefined);
    });
  }
  options.onGuard?.(mapping.guard);
  return {
    guard: mapping.guard,
    maxUnparsedBodyBytes: options.maxUnparsedBodyBytes ?? DEFAULT_MAX_UNPARSED_BODY_BYTES,
    begin(request, message, signal) {
      if (signal?.aborted === true) return Promise.reject(signal.reason);
      let namespace: string | undefined;
      if (scope !== undefined) {
        try {
          namespace = scope(request);
        } catch (error) {
          return Promise.reject(new CallbackError('scope', error));
        }
        if (namespace !== undefined && typeof namespace !== 'string') {
          const got = namespace === null ? 'null' : typeof namespace;
          return Promise.reject(
            new CallbackError('scope', new TypeError(`it returned ${got}, not a string or undefined`)),
          );
        }
      }
      const raw = message.headers[KEY_HEADER];
      let fingerprint: unknown;
      try {
        fingerprint = fingerprintInput(message);
      } catch (error) {
        return Promise.reject(error);
      }
      let pending = mapping.begin({
        key: Array.isArray(raw) ? raw.join(', ') : raw,
        fingerprint,
        scope: namespace,
      });
      if (onStoreError !== undefined) {
        pending = pending.then((decision) => {
          if (decision.action === 'respond' && decision.reason === 'store-unavailable')
            onStoreError(decision.cause, 'begin', request);
          return decision;
        });
      }
      return signal === undefined ? pending : settleBefore(pending, signal, releaseLate);
    },
  };
}

/** Response headers that describe one transfer, not the resource: never stored for replay. */
const TRANSFER_HEADERS = new Set([
  'connection',
  'content-length',
  'date',
  'keep-alive',
  'set-cookie',
  'transfer-encoding',
]);

/** Response headers as node:http's `getHeaders()` gives them. */
export type SentHeaders = Readonly<Record<string, number | string | readonly string[] | undefined>>;

/**
 * A sent response as the idempotency mapping stores it, or undefined when it
 * cannot be replayed: the body is a stream or is not UTF-8 text. The headers
 * lose those of one transfer (`content-length`, `set-cookie`, ...).
 */
export function replayableResponse(
  status: number,
  headers: SentHeaders,
  body: unknown,
): HttpResponse | undefined {
  let text: string;
  if (body === null || body === undefined) text = '';
  else if (typeof body === 'string') text = body;
  else if (Buffer.isBuffer(body) && isUtf8(body)) text = body.toString('utf8');
  else return undefined;
  const stored: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || TRANSFER_HEADERS.has(name.toLowerCase())) continue;
    stored[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return { status, headers: stored, body: text };
}

/**
 * Settles a key with what the handler sent: stores the response for replay
 * (or, per `storeStatus`, releases the key), or releases the key when the
 * response cannot be replayed. Call it before the response leaves, so a retry
 * that follows it is replayed. Resolves once the store has answered.
 */
export function completeIdempotent(
  decision: ProceedDecision,
  status: number,
  headers: SentHeaders,
  body: unknown,
): Promise<unknown> {
  const response = replayableResponse(status, headers, body);
  // The store's own promise, returned as it is: no extra turn before the response may leave.
  return response === undefined ? decision.release() : decision.commit(response);
}
