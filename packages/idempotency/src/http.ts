import { CallbackError, isBulwarkError } from '@bulwark/core';
import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import type { InvalidIdempotencyKeyError } from './errors.ts';
import {
  type CompletionResult,
  type IdempotencyGuard,
  type IdempotencyOptions,
  idempotency,
  jsonResultCodec,
} from './guard.ts';
import {
  DEFAULT_IDEMPOTENCY_KEY_FORMAT,
  IDEMPOTENCY_IN_PROGRESS_HEADER,
  IDEMPOTENCY_KEY_HEADER,
  IDEMPOTENT_REPLAYED_HEADER,
  type IdempotencyKeyFormat,
  parseIdempotencyKeyHeader,
} from './header.ts';

const HTTP_IDEMPOTENCY_KEYS = optionKeys<HttpIdempotencyOptions>({
  store: true,
  ttlMs: true,
  leaseMs: true,
  fingerprint: true,
  storeTimeoutMs: true,
  clock: true,
  required: true,
  storeStatus: true,
  problemTypeBase: true,
  inProgressRetryAfterSeconds: true,
  keyFormat: true,
  maxPendingCompletions: true,
  random: true,
});

/** An HTTP response as the mapping stores and returns it. Header names in lower case. */
export interface HttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** What the mapping needs from one request. */
export interface HttpIdempotencyRequest {
  /** The raw `Idempotency-Key` header value, or undefined when absent. */
  readonly key: string | undefined;
  /**
   * What identifies the request's content (for example method, path and body).
   * Passed to the guard's `fingerprint` option.
   */
  readonly fingerprint: unknown;
  /**
   * Who is asking (for example the authenticated principal). Keys are namespaced
   * by it, so one client can never replay another's response. Default: `""`.
   */
  readonly scope?: string | undefined;
}

/** The decision for one request. */
export type HttpDecision =
  /** Send `response` as it is; do not run the handler. */
  | {
      readonly action: 'respond';
      readonly response: HttpResponse;
      readonly reason:
        | 'replayed'
        | 'missing-key'
        | 'invalid-key'
        | 'mismatch'
        | 'in-progress'
        | 'store-unavailable';
      /** Why the store could not be used (`reason: 'store-unavailable'`): the `StoreUnavailableError`. */
      readonly cause?: unknown;
    }
  /**
   * Run the handler, then call `commit(response)` with what it sent (or
   * `release()` when it threw). `key` is undefined when the request had none
   * and none was required; then `commit` and `release` do nothing.
   *
   * `commit` resolves what became of the record (a store failure resolves
   * `'store-error'`). It rejects only with a `CallbackError` from `storeStatus`
   * or the codec, with `LeaseSettledError` when the key was already settled,
   * or with a `TypeError` when `response` is not an {@link HttpResponse}; in
   * the first and last case the key is released first. `release` never rejects.
   */
  | {
      readonly action: 'proceed';
      readonly key: string | undefined;
      commit(response: HttpResponse): Promise<CompletionResult | 'unguarded'>;
      release(): Promise<void>;
    };

/** Options for {@link httpIdempotency}. */
export interface HttpIdempotencyOptions
  extends Omit<IdempotencyOptions<HttpResponse>, 'storeOutcome' | 'codec'> {
  /** Whether a request without a key is refused with 400. Default: true. */
  readonly required?: boolean | undefined;
  /**
   * Whether a response with this status is stored for replay. Default:
   * {@link defaultStoreStatus} (2xx and 4xx, except 408 and 429).
   */
  readonly storeStatus?: ((status: number) => boolean) | undefined;
  /** A URI prefix for the problem `type` members. Default: `"urn:bulwark:idempotency:"`. */
  readonly problemTypeBase?: string | undefined;
  /**
   * The `Retry-After` of an in-progress 409, in seconds (an integer >= 1):
   * how soon the client should ask again for the first request's response. It
   * is a poll interval, not the time left on the lease (that can be a minute),
   * and is never more than that time left (rounded up to a whole second).
   * Default: 1.
   */
  readonly inProgressRetryAfterSeconds?: number | undefined;
  /**
   * Which `Idempotency-Key` values are keys. `'lenient'` reads a
   * structured-field string (`"abc123"`, as the IETF draft and
   * `@bulwark/fetch` send it) and a bare key (`abc123`, as Stripe-style
   * clients send it); `'structured'` answers 400 to a bare key. Parameters
   * after a string (`"abc123";p=1`) are ignored in both. See
   * `IdempotencyKeyFormat`. Default: `'lenient'`.
   */
  readonly keyFormat?: IdempotencyKeyFormat | undefined;
}

/** The defaults of {@link httpIdempotency} beyond those of the guard. */
export const HTTP_IDEMPOTENCY_DEFAULTS = Object.freeze({
  required: true,
  problemTypeBase: 'urn:bulwark:idempotency:',
  inProgressRetryAfterSeconds: 1,
});

/**
 * Keeps 2xx and 4xx responses, except 408 (Request Timeout) and 429 (Too Many
 * Requests). After those two, 5xx and anything else the key is released, so the
 * client's retry can succeed.
 */
export function defaultStoreStatus(status: number): boolean {
  if (status === 408 || status === 429) return false;
  return (status >= 200 && status < 300) || (status >= 400 && status < 500);
}

const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The members of a problem details object (RFC 9457) that bulwark sends. */
export interface Problem {
  /** A URI naming the kind of problem, e.g. `"urn:bulwark:idempotency:in-progress"`. */
  readonly type: string;
  /** A short summary that does not change between occurrences. */
  readonly title: string;
  /** What went wrong this time, and what the client can do about it. */
  readonly detail: string;
}

/**
 * An `application/problem+json` response (RFC 9457) with `type`, `title`,
 * `status` and `detail`, and `Retry-After` (delta-seconds) when
 * `retryAfterSeconds` is given. The idempotency mapping and the server
 * plugins answer every refusal with one.
 */
export function problemResponse(status: number, problem: Problem, retryAfterSeconds?: number): HttpResponse {
  const headers: Record<string, string> = { 'content-type': PROBLEM_CONTENT_TYPE };
  if (retryAfterSeconds !== undefined)
    headers['retry-after'] = String(Math.max(0, Math.ceil(retryAfterSeconds)));
  const body = JSON.stringify({ type: problem.type, title: problem.title, status, detail: problem.detail });
  return { status, headers, body };
}

/**
 * The framework-neutral HTTP side of idempotency, after the IETF draft
 * "The Idempotency-Key HTTP Header Field":
 *
 * | situation                          | response                                    |
 * | ---------------------------------- | ------------------------------------------- |
 * | key required but missing           | 400 problem+json                            |
 * | key empty, > 255 chars, not sf-string | 400 problem+json                         |
 * | same key, different request        | 422 problem+json                            |
 * | same key, first request still runs | 409 problem+json, Retry-After (a poll interval) and Idempotency-In-Progress: true |
 * | store unreachable                  | 503 problem+json with Retry-After           |
 * | same key, completed                | the stored response + Idempotent-Replayed: true |
 */
export class HttpIdempotency {
  readonly guard: IdempotencyGuard<HttpResponse>;
  readonly required: boolean;
  /** How `Idempotency-Key` values are read. */
  readonly keyFormat: IdempotencyKeyFormat;
  readonly #problemBase: string;
  readonly #inProgressRetryAfterSeconds: number;

  constructor(options: HttpIdempotencyOptions) {
    const check = new OptionsChecker('httpIdempotency()');
    check.knownKeys(options, HTTP_IDEMPOTENCY_KEYS);
    check.boolean('required', options?.required);
    check.func('storeStatus', options?.storeStatus);
    check.string('problemTypeBase', options?.problemTypeBase);
    check.number('inProgressRetryAfterSeconds', options?.inProgressRetryAfterSeconds, {
      integer: true,
      min: 1,
    });
    check.expect(
      options?.keyFormat === undefined ||
        options.keyFormat === 'lenient' ||
        options.keyFormat === 'structured',
      'keyFormat',
      options?.keyFormat,
      "'lenient' or 'structured'",
    );
    check.clock('clock', options?.clock, true);
    check.done();
    const storeStatus = options.storeStatus ?? defaultStoreStatus;
    const {
      required,
      storeStatus: _,
      problemTypeBase,
      inProgressRetryAfterSeconds,
      keyFormat,
      ...guardOptions
    } = options;
    this.guard = idempotency<HttpResponse>({
      ...guardOptions,
      codec: jsonResultCodec,
      storeOutcome: (response) => storeStatus(response.status),
    });
    this.required = options.required ?? HTTP_IDEMPOTENCY_DEFAULTS.required;
    this.keyFormat = options.keyFormat ?? DEFAULT_IDEMPOTENCY_KEY_FORMAT;
    this.#problemBase = options.problemTypeBase ?? HTTP_IDEMPOTENCY_DEFAULTS.problemTypeBase;
    this.#inProgressRetryAfterSeconds =
      options.inProgressRetryAfterSeconds ?? HTTP_IDEMPOTENCY_DEFAULTS.inProgressRetryAfterSeconds;
  }

  /**
   * Decides what to do with a request. Never rejects, except with an
   * `UnfingerprintableError` (`ERR_UNFINGERPRINTABLE`) when the default
   * fingerprint refuses `request.fingerprint`, or a `CallbackError`
   * (`ERR_CALLBACK_FAILED`) when the `fingerprint` option throws or a stored
   * response cannot be decoded into an {@link HttpResponse} (callback `"codec.decode"`).
   */
  async begin(request: HttpIdempotencyRequest): Promise<HttpDecision> {
    if (request.key === undefined && !this.required) return UNGUARDED;
    let key: string;
    try {
      key = parseIdempotencyKeyHeader(request.key, { format: this.keyFormat });
    } catch (error) {
      const invalid = error as InvalidIdempotencyKeyError;
      const missing = invalid.reason === 'missing';
      return this.#respond(missing ? 'missing-key' : 'invalid-key', 400, {
        type: missing ? 'missing-key' : 'invalid-key',
        title: missing
          ? `The ${IDEMPOTENCY_KEY_HEADER} header is required`
          : `The ${IDEMPOTENCY_KEY_HEADER} header is malformed`,
        detail: invalid.message,
      });
    }
    const fingerprint = this.guard.fingerprintOf(request.fingerprint);
    let decision: Awaited<ReturnType<IdempotencyGuard<HttpResponse>['begin']>>;
    try {
      decision = await this.guard.begin(key, fingerprint, { scope: request.scope ?? '' });
    } catch (error) {
      if (!isBulwarkError(error, 'ERR_STORE_UNAVAILABLE')) throw error;
      const unavailable = this.#respond(
        'store-unavailable',
        503,
        {
          type: 'store-unavailable',
          title: 'Idempotency records are unavailable',
          detail: 'The request was not processed. Retry it later with the same key.',
        },
        1,
      );
      return { ...unavailable, cause: error } as HttpDecision;
    }
    switch (decision.kind) {
      case 'replayed': {
        const stored = decision.value;
        if (!isHttpResponse(stored)) {
          throw new CallbackError(
            'codec.decode',
            new TypeError(`the stored record for key ${JSON.stringify(key)} is not an HTTP response`),
          );
        }
        return {
          action: 'respond',
          reason: 'replayed',
          response: {
            status: stored.status,
            headers: { ...stored.headers, [IDEMPOTENT_REPLAYED_HEADER.toLowerCase()]: 'true' },
            body: stored.body,
          },
        };
      }
      case 'mismatch':
        return this.#respond('mismatch', 422, {
          type: 'key-reused',
          title: `The ${IDEMPOTENCY_KEY_HEADER} was already used for a different request`,
          detail: 'Use a new key for a new request.',
        });
      case 'in-progress':
        return this.#respond(
          'in-progress',
          409,
          {
            type: 'in-progress',
            title: 'A request with this key is still being processed',
            detail: 'Retry after the time given in Retry-After to get its response.',
          },
          // A poll interval: the handler may finish long before its lease ends.
          Math.max(1, Math.min(this.#inProgressRetryAfterSeconds, Math.ceil(decision.retryAfterMs / 1000))),
          IN_PROGRESS_HEADERS,
        );
      case 'acquired': {
        const lease = decision.lease;
        return {
          action: 'proceed',
          key,
          commit: (response) => {
            let normalised: HttpResponse;
            try {
              normalised = normalise(response);
            } catch (error) {
              return lease.release().then(() => Promise.reject(error));
            }
            // The store's own promise, as it is: no extra turn before the response may leave.
            return lease.complete(normalised);
          },
          release: async () => {
            await lease.release();
          },
        };
      }
    }
  }

  #respond(
    reason: Extract<HttpDecision, { action: 'respond' }>['reason'],
    status: number,
    problem: { type: string; title: string; detail: string },
    retryAfterSeconds?: number,
    extraHeaders?: Readonly<Record<string, string>>,
  ): HttpDecision {
    const problemAnswer = problemResponse(
      status,
      { ...problem, type: `${this.#problemBase}${problem.type}` },
      retryAfterSeconds,
    );
    const response =
      extraHeaders === undefined
        ? problemAnswer
        : { ...problemAnswer, headers: { ...problemAnswer.headers, ...extraHeaders } };
    return { action: 'respond', reason, response };
  }
}

function isHttpResponse(value: unknown): value is HttpResponse {
  const candidate = value as Partial<HttpResponse> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    Number.isInteger(candidate.status) &&
    typeof candidate.headers === 'object' &&
    candidate.headers !== null &&
    Object.values(candidate.headers).every((v) => typeof v === 'string') &&
    typeof candidate.body === 'string'
  );
}

/** `response` with lower-case header names and string header values. @throws TypeError when it is not an {@link HttpResponse}. */
function normalise(response: HttpResponse): HttpResponse {
  const given = response as Partial<HttpResponse> | null;
  if (
    typeof given !== 'object' ||
    given === null ||
    !Number.isInteger(given.status) ||
    typeof given.headers !== 'object' ||
    given.headers === null ||
    typeof given.body !== 'string'
  ) {
    throw new TypeError(
      'commit(response) takes an HttpResponse: { status: integer, headers: object, body: string }',
    );
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(given.headers)) {
    if (typeof value === 'symbol') throw new TypeError(`commit(response): header ${name} is a symbol`);
    headers[name.toLowerCase()] = String(value);
  }
  return { status: given.status!, headers, body: given.body };
}

const IN_PROGRESS_HEADERS = Object.freeze({ [IDEMPOTENCY_IN_PROGRESS_HEADER.toLowerCase()]: 'true' });

const UNGUARDED: HttpDecision = Object.freeze({
  action: 'proceed',
  key: undefined,
  commit: () => Promise.resolve('unguarded' as const),
  release: () => Promise.resolve(),
});

/** The HTTP mapping of idempotency, for framework plugins. See {@link HttpIdempotency}. */
export function httpIdempotency(options: HttpIdempotencyOptions): HttpIdempotency {
  return new HttpIdempotency(options);
}
