import type { IncomingMessage, ServerResponse } from 'node:http';
import { type OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import type { HttpResponse } from '@bulwark/idempotency';
import { problemResponse } from '@bulwark/idempotency';
import type { RateLimitDecision, RateLimitPolicy } from '@bulwark/rate-limit';
import type { BulwarkRequestContext } from './context.ts';
import { errorResponse } from './errors.ts';
import { REFUSED, refusalsCounter } from './telemetry.ts';

/**
 * An inbound rate limit: every admitted request takes one call of `limit` under
 * the key `key(request)`, and a request over the limit is answered 429 with
 * `Retry-After`, without running its handler. Every answer carries the IETF
 * `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers).
 */
export interface InboundRateLimitOptions {
  /**
   * The limit (`rateLimit({ ratePerSecond, burst, store })` from
   * @bulwark/rate-limit); give it a shared store to limit a whole fleet. Its
   * own `key` and `wait` options do not apply: a request never waits, it is
   * answered 429.
   */
  readonly limit: RateLimitPolicy;
  /**
   * The key a request is counted under (a client, a tenant, an API key), from
   * the node:http request (Fastify's `request.raw`, Express's `req`). Default:
   * the client's address (`socket.remoteAddress`), which behind a proxy is the
   * proxy's: give a key of your own there.
   */
  readonly key?: (request: IncomingMessage) => string | undefined;
  /** The policy's name in the `RateLimit-Policy` and `RateLimit` fields (a token). Default: `"default"`. */
  readonly name?: string | undefined;
}

/** The outcome of {@link limitRequest}: header fields to send, and the answer when refused. */
export interface InboundRateLimitOutcome {
  /** `RateLimit-Policy` and `RateLimit` (absent when the store could not decide). */
  readonly headers: Readonly<Record<string, string>>;
  /** The 429 (over the limit) or 503 (the store could not decide, fail-closed) to send instead of serving. */
  readonly refused: HttpResponse | undefined;
}

const INBOUND_KEYS = optionKeys<InboundRateLimitOptions>({ limit: true, key: true, name: true });

const TOKEN = /^[A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]*$/;

/** Adds the violations of the `rateLimit` server option to `check`. */
export function checkInboundRateLimit(check: OptionsChecker, value: unknown): void {
  if (value === undefined) return;
  const o = value as Partial<InboundRateLimitOptions> | null;
  const isObject = typeof o === 'object' && o !== null;
  check.expect(isObject, 'rateLimit', value, 'an object ({ limit, key, name })');
  if (!isObject) return;
  for (const key of Object.keys(o!))
    check.expect(
      INBOUND_KEYS.has(key) || (o as Record<string, unknown>)[key] === undefined,
      `rateLimit.${key}`,
      (o as Record<string, unknown>)[key],
      'a known option (limit, key, name)',
    );
  const limit = o!.limit as { take?: unknown; rule?: unknown } | undefined;
  check.expect(
    typeof limit?.take === 'function' && typeof limit.rule === 'object',
    'rateLimit.limit',
    o!.limit,
    'a rate limit from rateLimit() (with take())',
  );
  check.func('rateLimit.key', o!.key);
  check.expect(
    o!.name === undefined || (typeof o!.name === 'string' && TOKEN.test(o!.name)),
    'rateLimit.name',
    o!.name,
    'a structured-field token (e.g. "default")',
  );
}

function remoteAddress(request: IncomingMessage): string {
  return request.socket?.remoteAddress ?? 'unknown';
}

function seconds(ms: number): number {
  return Math.max(0, Math.ceil(ms / 1000));
}

/**
 * The `RateLimit-Policy` of a GCRA limit: `q` is the burst and `w` the whole
 * seconds it takes to refill it (at least 1), so a client that sends at most
 * `q` requests per `w` seconds, even all at once, is never refused.
 */
export function rateLimitPolicyField(limit: RateLimitPolicy, name: string): string {
  const window = Math.max(1, Math.ceil(limit.burst / limit.ratePerSecond));
  return `${name};q=${limit.burst};w=${window}`;
}

function fields(limit: RateLimitPolicy, name: string, decision: RateLimitDecision): Record<string, string> {
  return {
    'ratelimit-policy': rateLimitPolicyField(limit, name),
    ratelimit: `${name};r=${decision.remaining};t=${seconds(decision.resetMs)}`,
  };
}

function tooMany(decision: RateLimitDecision, headers: Record<string, string>): HttpResponse {
  const response = problemResponse(
    429,
    {
      type: 'urn:bulwark:server:rate-limited',
      title: 'Too many requests',
      detail: 'The request was not processed. Retry it after the time given in Retry-After.',
    },
    Math.max(1, seconds(decision.retryAfterMs)),
  );
  return { ...response, headers: { ...response.headers, ...headers } };
}

function settle(limit: RateLimitPolicy, name: string, decision: RateLimitDecision): InboundRateLimitOutcome {
  const headers = fields(limit, name, decision);
  if (decision.allowed) return { headers, refused: undefined };
  refusalsCounter.add(1, REFUSED.rateLimited);
  return { headers, refused: tooMany(decision, headers) };
}

function storeFailed(error: unknown, retryAfterSeconds: number): InboundRateLimitOutcome {
  const response = errorResponse(error, { retryAfterSeconds });
  if (response === undefined) throw error;
  refusalsCounter.add(1, REFUSED.rateLimitStore);
  return { headers: {}, refused: response };
}

/**
 * Takes one call of the inbound limit for `request`: synchronously with the
 * in-memory store or a refused key the shared store remembers, else with a
 * promise. A shared store that cannot decide and fails closed gives a 503
 * (`errorResponse()`); the store's timeout is cut to the request's deadline.
 */
export function limitRequest(
  request: IncomingMessage,
  options: InboundRateLimitOptions,
  context: BulwarkRequestContext | undefined,
  retryAfterSeconds: number,
): InboundRateLimitOutcome | Promise<InboundRateLimitOutcome> {
  const limit = options.limit;
  const name = options.name ?? 'default';
  const key = (options.key ?? remoteAddress)(request);
  const budgetMs = context?.deadline?.remaining() ?? Number.POSITIVE_INFINITY;
  let decision: RateLimitDecision | PromiseLike<RateLimitDecision>;
  try {
    decision = limit.take(key, { maxDelayMs: 0, budgetMs });
  } catch (error) {
    return storeFailed(error, retryAfterSeconds);
  }
  if (typeof (decision as PromiseLike<RateLimitDecision>).then === 'function') {
    return Promise.resolve(decision).then(
      (d) => settle(limit, name, d),
      (error: unknown) => storeFailed(error, retryAfterSeconds),
    );
  }
  return settle(limit, name, decision as RateLimitDecision);
}

/**
 * Acts on an inbound rate limit's outcome for a node:http response: sends the
 * refusal (429 or 503) through `send`, or sets the `RateLimit-Policy` and
 * `RateLimit` fields on `res` and calls `proceed`. `decide` throwing (a key
 * function that threw) or rejecting goes to `fail`. Does nothing once the
 * response has ended (its deadline answered it while the store was deciding).
 */
export function applyRateLimit(
  decide: () => InboundRateLimitOutcome | Promise<InboundRateLimitOutcome>,
  res: ServerResponse,
  send: (response: HttpResponse) => void,
  proceed: () => void,
  fail: (error: unknown) => void,
): void {
  const apply = (outcome: InboundRateLimitOutcome): void => {
    if (res.writableEnded || res.destroyed) return;
    if (outcome.refused !== undefined) {
      send(outcome.refused);
      return;
    }
    if (!res.headersSent)
      for (const [name, value] of Object.entries(outcome.headers)) res.setHeader(name, value);
    proceed();
  };
  let outcome: InboundRateLimitOutcome | Promise<InboundRateLimitOutcome>;
  try {
    outcome = decide();
  } catch (error) {
    fail(error);
    return;
  }
  if (outcome instanceof Promise) outcome.then(apply, fail);
  else apply(outcome);
}
