import type { BulkheadPolicy } from '@bulwark/bulkhead';
import {
  type CircuitBreakerPolicy,
  CircuitBreakerRegistry,
  type CircuitBreakerRegistryOptions,
} from '@bulwark/circuit-breaker';
import { type Clock, type Random, sleep, systemClock, wallClockNow } from '@bulwark/clock';
import {
  type Backoff,
  DeadlineExceededError,
  type ExecutionContext,
  InvalidOptionsError,
  isRefusal,
  type Outcome,
  remainingMs,
} from '@bulwark/core';
import {
  ambientDeadline,
  KeyedRegistry,
  type OptionHints,
  OptionsChecker,
  optionKeys,
} from '@bulwark/core/authoring';
import {
  type AdaptiveTimeoutOptions,
  AdaptiveTimeoutPolicy,
  type TimeoutPolicy,
  timeout,
} from '@bulwark/deadline';
import { type HedgingOptions, HedgingPolicy } from '@bulwark/hedging';
import { IDEMPOTENCY_IN_PROGRESS_HEADER, newIdempotencyKey } from '@bulwark/idempotency';
import {
  isRetryableError,
  RETRY_OPTION_HINTS,
  RetryBudget,
  type RetryBudgetOptions,
  RetryPolicy,
  type RetryVerdict,
} from '@bulwark/retry';
import { type EquivalentOrigins, OriginChooser, resolveOrigins, retarget } from './equivalent-origins.ts';
import { discardResponse } from './http.ts';
import { type OriginBulkheadOptions, OriginBulkheads } from './origin-bulkheads.ts';
import { composePolicies, type FetchPolicies, runUnder } from './policies.ts';
import { callPreparer, type PreparedCall } from './prepared-call.ts';
import { parseRetryAfter } from './retry-after.ts';
import { markStatus, requestAttributes, telemetry } from './telemetry.ts';
import { attemptSenders, CallDeadline, raceHedged } from './transport.ts';

const CREATE_FETCH_KEYS = optionKeys<CreateFetchOptions>({
  spans: true,
  fetch: true,
  deadlineMs: true,
  attemptTimeoutMs: true,
  adaptiveAttemptTimeout: true,
  maxAttempts: true,
  backoff: true,
  minAttemptMs: true,
  budget: true,
  retryStatuses: true,
  maxRetryAfterMs: true,
  idempotencyKeys: true,
  generateIdempotencyKey: true,
  pollInProgress: true,
  breakers: true,
  bulkheads: true,
  deadlineHeader: true,
  safetyMarginMs: true,
  attemptHeader: true,
  maxDrainBytes: true,
  policies: true,
  hedging: true,
  origins: true,
  name: true,
  clock: true,
  random: true,
  wallClock: true,
});

const FETCH_OPTION_HINTS: OptionHints = {
  ...RETRY_OPTION_HINTS,
  timeout: 'use attemptTimeoutMs for one attempt, deadlineMs for the whole call',
  timeoutMs: 'use attemptTimeoutMs for one attempt, deadlineMs for the whole call',
  maxRetryTime: 'use deadlineMs (the whole call, every attempt and wait included)',
  retryOn: 'use retryStatuses (the statuses to retry); network errors and attempt timeouts are retried',
  statusCodes: 'use retryStatuses',
  retryOnStatus: 'use retryStatuses',
  breaker: 'use breakers (per-origin circuit breakers: options, a registry, or false)',
  circuitBreaker: 'use breakers (per-origin circuit breakers: options, a registry, or false)',
  bulkhead: 'use bulkheads (per-origin bulkheads: options, or false)',
  resetTimeout: 'use breakers: { openMs }',
  errorThresholdPercentage: 'use breakers: { trip: failureRate({ threshold }) }',
  capacity: 'use bulkheads: { maxConcurrent }',
  idempotencyKey:
    'use idempotencyKeys: true (adds one to non-idempotent requests) or set the header yourself',
};

/** What `adaptiveAttemptTimeout` may tune: the options of `adaptiveTimeout()` that are not the fetch's own. */
export type FetchAdaptiveTimeoutOptions = Omit<AdaptiveTimeoutOptions, 'clock' | 'sampleOn' | 'propagate'>;

/** The most origins `adaptiveAttemptTimeout` keeps a latency window for. */
const MAX_TIMED_ORIGINS = 1_000;

/** A function with the signature of the global `fetch`. */
export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * What {@link createFetch} returns: a function with the signature and
 * behaviour of the global `fetch`, plus the parts it is built from, for
 * events and inspection.
 */
export interface ResilientFetch {
  (input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** The retry policy: subscribe to `onRetry`, `onGiveUp`, `onSuccess`. */
  readonly retry: RetryPolicy;
  /** The retry budget shared by every call of this fetch, or undefined when disabled. */
  readonly budget: RetryBudget | undefined;
  /** One circuit breaker per origin (`https://host:port`), or undefined when disabled. */
  readonly breakers: CircuitBreakerRegistry | undefined;
  /** One bulkhead per origin, or undefined when disabled. */
  readonly bulkheads: OriginBulkheads | undefined;
  /** The hedging policy (subscribe to `onHedge`, `onDenied`), or undefined when hedging is off. */
  readonly hedging: HedgingPolicy | undefined;
}

/** Options for {@link createFetch}. Every time is in milliseconds. */
export interface CreateFetchOptions {
  /** The fetch that sends each attempt. Default: the global `fetch`. */
  readonly fetch?: FetchFunction | undefined;
  /**
   * The budget for the whole call: every attempt, every wait between them, and
   * reading the response body. `Infinity` for none. An earlier deadline in
   * scope (`withDeadline`) still wins. Default: 30,000.
   */
  readonly deadlineMs?: number | undefined;
  /**
   * The budget for one attempt, until the response headers arrive (the body is
   * bounded by `deadlineMs`). `Infinity` for none. Default: 10,000.
   */
  readonly attemptTimeoutMs?: number | undefined;
  /**
   * Set each attempt's timeout from the latency observed on its origin rather
   * than a fixed `attemptTimeoutMs`: `adaptiveTimeout()` of @bulwark/deadline,
   * one per origin (at most 1,000, least recently used forgotten, about 12 KB
   * each with the default window), `attemptTimeoutMs` its largest limit, never
   * past the deadline. By default an attempt then gets 1.5 × the p99 of its
   * origin's recent answers, at least 100 ms; until 20 answers are known it
   * gets `attemptTimeoutMs`. Answers count as samples, except those the breaker
   * counts as failures (500, 502, 503, 504) and errors, which come fast and
   * say nothing of how long an answer takes. `true` for those defaults, or
   * options to change them (`percentile`, `multiplier`, `minMs`, `minSamples`,
   * `sampleSize`, `sampleTtlMs`). Default: false.
   */
  readonly adaptiveAttemptTimeout?: boolean | FetchAdaptiveTimeoutOptions | undefined;
  /** Attempts in all, counting the first: an integer >= 1 (1 turns retries off). Default: 3. */
  readonly maxAttempts?: number | undefined;
  /** The delay schedule between attempts. Default: `exponential()` from @bulwark/retry (full jitter, 100 ms → 10 s). */
  readonly backoff?: Backoff | undefined;
  /** No retry starts with less than this left before the deadline. Default: 0. */
  readonly minAttemptMs?: number | undefined;
  /**
   * The retry budget: a `RetryBudget` to share with other clients, options for
   * one of its own, or `false` for none. Default: `retryBudget()` (10 retries/s
   * plus 20% of requests), one per `createFetch`.
   */
  readonly budget?: RetryBudget | RetryBudgetOptions | false | undefined;
  /** Response statuses retried (for eligible requests). Default: 408, 429, 502, 503, 504. */
  readonly retryStatuses?: readonly number[] | undefined;
  /**
   * A `Retry-After` longer than this is not waited for: the response is
   * returned as it is. Default: 30,000.
   */
  readonly maxRetryAfterMs?: number | undefined;
  /**
   * Add an `Idempotency-Key` to POST and PATCH requests (and any other
   * non-idempotent method) that have none, the same one on every attempt, so
   * that they can be retried. Default: false.
   */
  readonly idempotencyKeys?: boolean | undefined;
  /** Makes the keys `idempotencyKeys` adds. Default: `newIdempotencyKey` (a ULID). */
  readonly generateIdempotencyKey?: (() => string) | undefined;
  /**
   * When a request with an `Idempotency-Key` is answered by a bulwark
   * server's in-progress 409 (`Idempotency-In-Progress: true`: an earlier
   * attempt with that key is still running there), ask again after its
   * `Retry-After` (1 s when absent, at least 100 ms) for that attempt's
   * response, for as long as the deadline allows. These polls are not retries:
   * they take nothing from the retry budget nor from `maxAttempts`, and they
   * carry the attempt's number. A wait longer than `maxRetryAfterMs`, or one
   * that would reach the deadline, returns the 409. Any other 409 is final.
   * Default: true.
   */
  readonly pollInProgress?: boolean | undefined;
  /**
   * Per-origin circuit breakers: a registry to share, options for one of its
   * own (its `failureOn` defaults to network errors, timeouts and 500, 502,
   * 503, 504 responses), or `false` for none. Default: `circuitBreakers()`
   * defaults (5 consecutive failures open it for 10 s, at most 1,000 origins).
   */
  readonly breakers?: CircuitBreakerRegistry | CircuitBreakerRegistryOptions | false | undefined;
  /**
   * Per-origin bulkheads, or `false` for none. Default: 64 requests at once and
   * 256 waiting per origin, at most 1,000 origins.
   */
  readonly bulkheads?: OriginBulkheadOptions | false | undefined;
  /** Send the time left in `x-request-timeout-ms`. Default: true. */
  readonly deadlineHeader?: boolean | undefined;
  /**
   * Milliseconds taken off the time left before it is sent, for the answer's
   * trip back. Default: 10.
   */
  readonly safetyMarginMs?: number | undefined;
  /** Send the attempt number in `x-retry-attempt`. Default: true. */
  readonly attemptHeader?: boolean | undefined;
  /**
   * A discarded response whose `Content-Length` is at most this many bytes is
   * read to the end so its connection can be reused; any other is cancelled.
   * Default: 65,536.
   */
  readonly maxDrainBytes?: number | undefined;
  /**
   * Spans of bulwark's own, for traces without HTTP auto-instrumentation
   * (where span events on the active span would otherwise vanish):
   * - `'call'`: one span per call (kind INTERNAL, named `"<name> <METHOD>"`),
   *   active while the call runs, so retry, deadline and breaker events land on
   *   it, with `http.request.method`, `url.full`, `server.address`,
   *   `server.port`, the final `http.response.status_code`, `bulwark.attempts`
   *   and, for an error or a status >= 400, `error.type` and status ERROR;
   * - `'attempts'`: that, plus one CLIENT span per attempt named `<METHOD>`,
   *   following the OpenTelemetry HTTP client conventions (a resent request
   *   carries `http.request.resend_count`), whose context is sent in the
   *   request's headers through the registered propagator (`traceparent`).
   *   Leave this to HTTP auto-instrumentation when it is installed: it would
   *   make a second CLIENT span per attempt.
   *
   * With no tracer provider registered, spans cost one global lookup per call.
   * Default: false (none, and no cost).
   */
  readonly spans?: false | 'call' | 'attempts' | undefined;
  /**
   * Policies of your own composed into every call, by place: `call` (around
   * the whole call, inside the deadline, outside the retries) and `attempt`
   * (around each attempt, inside the breaker, the bulkhead and the attempt
   * timeout). See {@link FetchPolicies}. Default: none.
   */
  readonly policies?: FetchPolicies | undefined;
  /**
   * Hedged requests, for GET and HEAD requests and requests that carry an
   * `Idempotency-Key` (and whose body can be sent again): when an attempt has
   * not answered within the hedging delay, another one starts, and the first
   * answer wins. Each attempt of the retries is hedged on its own, between the
   * retries and the origin's breaker, so every hedge passes the breaker, the
   * bulkhead and the attempt timeout. The attempts that lose are aborted
   * through their signals, and the body of any response they brought is read
   * out or cancelled.
   *
   * Hedging options (`@bulwark/hedging`), with this fetch's clock, name and
   * retry budget unless they give their own: hedges and retries are withdrawn
   * from one budget, and each call is counted in it once. Or a
   * `HedgingPolicy` to use as it is (on this fetch's clock), or `false`.
   * Default: false (no hedging).
   */
  readonly hedging?: HedgingOptions | HedgingPolicy | false | undefined;
  /**
   * Groups of equivalent origins (`scheme://host[:port]`), for example
   * `[['https://a.example', 'https://b.example', 'https://c.example']]`: a
   * request to an origin of a group may be sent to any other, its URL's origin
   * replaced and its path, query and fragment kept. Each attempt picks its
   * origin: the first the requested one, unless its circuit breaker is open
   * (then the next of the group whose breaker admits); a retry or a hedge one
   * not yet tried in this call whose breaker admits, never the one that just
   * failed while another admits. Each origin keeps its own breaker and
   * bulkhead. An origin may be in one group only. Default: none (every
   * attempt goes to the requested URL).
   */
  readonly origins?: EquivalentOrigins | undefined;
  /** The name of the breakers and bulkheads in telemetry, and the operation name. Default: `"fetch"`. */
  readonly name?: string | undefined;
  /** The monotonic clock every duration is measured on. Default: the system clock. */
  readonly clock?: Clock | undefined;
  /** The random source for backoff jitter. Default: `Math.random`. */
  readonly random?: Random | undefined;
  /**
   * The wall clock (milliseconds since the Unix epoch), read only to turn a
   * `Retry-After` HTTP-date into a duration. Default: `wallClockNow` from @bulwark/clock.
   */
  readonly wallClock?: (() => number) | undefined;
}

/** The defaults of {@link createFetch}. */
export const FETCH_DEFAULTS = Object.freeze({
  deadlineMs: 30_000,
  attemptTimeoutMs: 10_000,
  maxAttempts: 3,
  minAttemptMs: 0,
  retryStatuses: Object.freeze([408, 429, 502, 503, 504]) as readonly number[],
  maxRetryAfterMs: 30_000,
  idempotencyKeys: false,
  pollInProgress: true,
  breakerFailureStatuses: Object.freeze([500, 502, 503, 504]) as readonly number[],
  deadlineHeader: true,
  safetyMarginMs: 10,
  attemptHeader: true,
  maxDrainBytes: 65_536,
  spans: false,
  name: 'fetch',
});

const BREAKER_FAILURE_STATUSES: ReadonlySet<number> = new Set(FETCH_DEFAULTS.breakerFailureStatuses);

const IN_PROGRESS_HEADER = IDEMPOTENCY_IN_PROGRESS_HEADER.toLowerCase();
/** The wait before polling an in-progress 409 that has no usable `Retry-After`. */
const IN_PROGRESS_POLL_MS = 1_000;
/** The shortest wait between two polls, whatever `Retry-After` says. */
const MIN_POLL_MS = 100;

/** A bulwark server's answer that an earlier request with this key is still running. */
function isInProgress(response: Response): boolean {
  return response.status === 409 && response.headers.get(IN_PROGRESS_HEADER)?.trim().toLowerCase() === 'true';
}

/** Network errors, timeouts and 5xx overload answers count against an origin; a refusal (our own bulkhead's) does not. */
function breakerFailureOn(outcome: Outcome): boolean {
  if (outcome.ok) {
    const value = outcome.value;
    return value instanceof Response && BREAKER_FAILURE_STATUSES.has(value.status);
  }
  return !isRefusal(outcome.error);
}

/** An attempt's latency is a sample of its origin's: an answer the breaker does not count as a failure. */
function isLatencySample(outcome: Outcome): boolean {
  return outcome.ok && !breakerFailureOn(outcome);
}

/** The context a call starts from: the caller's signal joined with the deadline. */
class CallContext implements ExecutionContext {
  readonly attempt = 1;
  readonly signal: AbortSignal;
  readonly deadline: number | undefined;
  readonly clock: Clock;
  readonly operation: string;
  readonly idempotencyKey: string | undefined;
  constructor(
    signal: AbortSignal,
    deadline: number | undefined,
    clock: Clock,
    operation: string,
    key: string | undefined,
  ) {
    this.signal = signal;
    this.deadline = deadline;
    this.clock = clock;
    this.operation = operation;
    this.idempotencyKey = key;
  }
}

const neverAborts = new AbortController().signal;

function isFiniteNumberList(value: unknown): value is readonly number[] {
  return (
    Array.isArray(value) &&
    value.every((v) => typeof v === 'number' && Number.isInteger(v) && v >= 100 && v <= 599)
  );
}

function isInstanceOf<T>(value: unknown, ctor: abstract new (...args: never[]) => T): value is T {
  return value instanceof ctor;
}

/** What a call's span learns from its attempts. */
interface CallTrace {
  attempts: number;
}

/**
 * A drop-in `fetch` with bulwark's policies around every call, outermost first:
 * an overall deadline (`deadlineMs`), your call-level `policies`, retries with
 * jittered backoff and a budget, hedging (when on), a circuit breaker and a
 * bulkhead per origin, a timeout per attempt (`attemptTimeoutMs`), and your
 * attempt-level `policies`.
 *
 * HTTP semantics:
 * - retries network errors, attempt timeouts, and 408, 429, 502, 503 and 504
 *   responses, waiting as long as `Retry-After` asks (delta-seconds or an
 *   HTTP-date) when the response has one;
 * - retries GET, HEAD, OPTIONS, TRACE, PUT and DELETE; any other method only
 *   when the request carries an `Idempotency-Key` (`idempotencyKeys: true`
 *   adds one, kept on every attempt); a body that is a stream is never retried;
 * - polls a bulwark server's in-progress 409 (`Idempotency-In-Progress: true`)
 *   after its `Retry-After` until the stored response comes, within the
 *   deadline, without spending retries on it (`pollInProgress`); other 409s
 *   are final;
 * - reads or cancels the body of every response it does not return;
 * - sends a retry or a hedge to another origin of the request's group of
 *   equivalent origins (`origins`) whose breaker admits it;
 * - sends the time left in `x-request-timeout-ms` and the attempt number in
 *   `x-retry-attempt`;
 * - errors the returned response's body with `DeadlineExceededError` when the
 *   deadline passes while it is being read.
 *
 * When retries run out, the last response is returned as it is (a 503 stays a
 * 503) and the last error is thrown. An open breaker throws
 * `BrokenCircuitError`, a full bulkhead `BulkheadRejectedError`, the deadline
 * `DeadlineExceededError`; the caller's abort rejects with the caller's reason.
 *
 * @throws InvalidOptionsError (a RangeError) listing every invalid option.
 */
export function createFetch(options: CreateFetchOptions = {}): ResilientFetch {
  const check = new OptionsChecker('createFetch()');
  check.knownKeys(options, CREATE_FETCH_KEYS, FETCH_OPTION_HINTS);
  check.func('fetch', options.fetch);
  check.deadlineAndAttempt(options.deadlineMs, options.attemptTimeoutMs);
  check.number('maxAttempts', options.maxAttempts, { integer: true, min: 1 });
  check.number('minAttemptMs', options.minAttemptMs, { min: 0 });
  check.number('maxRetryAfterMs', options.maxRetryAfterMs, { min: 0, infinite: true });
  check.number('safetyMarginMs', options.safetyMarginMs, { min: 0 });
  check.number('maxDrainBytes', options.maxDrainBytes, { integer: true, min: 0 });
  check.expect(
    options.retryStatuses === undefined || isFiniteNumberList(options.retryStatuses),
    'retryStatuses',
    options.retryStatuses,
    'an array of HTTP status codes (integers from 100 to 599)',
  );
  for (const flag of ['idempotencyKeys', 'pollInProgress', 'deadlineHeader', 'attemptHeader'] as const) {
    check.expect(
      options[flag] === undefined || typeof options[flag] === 'boolean',
      flag,
      options[flag],
      'a boolean',
    );
  }
  const backoff = options.backoff;
  check.expect(
    backoff === undefined || (typeof backoff === 'object' && typeof backoff?.delayMs === 'function'),
    'backoff',
    backoff,
    'a backoff (constant(), exponential() or fromFunction())',
  );
  check.oneOf('spans', options.spans, [false, 'call', 'attempts'] as const);
  check.func('generateIdempotencyKey', options.generateIdempotencyKey);
  check.func('random', options.random);
  check.func('wallClock', options.wallClock);
  check.expect(
    options.name === undefined || (typeof options.name === 'string' && options.name.length > 0),
    'name',
    options.name,
    'a non-empty string',
  );
  check.clock('clock', options.clock, true);

  const clock = options.clock ?? systemClock;
  const composed = composePolicies(check, options.policies, clock);
  const callPolicy = composed.call;
  const attemptPolicy = composed.attempt;
  const name = options.name ?? FETCH_DEFAULTS.name;
  /** Builds a part; its own invalid options join this call's list, prefixed with `option`. */
  const build = <T>(option: string, make: () => T): T | undefined => {
    try {
      return make();
    } catch (error) {
      if (!(error instanceof InvalidOptionsError)) throw error;
      check.adopt(option, error.violations);
      return undefined;
    }
  };

  const budgetOption = options.budget;
  let budget: RetryBudget | undefined;
  if (budgetOption instanceof RetryBudget) budget = budgetOption;
  else if (budgetOption !== false) {
    check.expect(
      budgetOption === undefined || (typeof budgetOption === 'object' && budgetOption !== null),
      'budget',
      budgetOption,
      'a RetryBudget, retry budget options, or false',
    );
    if (budgetOption === undefined || (typeof budgetOption === 'object' && budgetOption !== null)) {
      budget = build('budget', () => new RetryBudget({ clock, ...budgetOption }));
    }
  }

  const breakersOption = options.breakers;
  let breakers: CircuitBreakerRegistry | undefined;
  if (isInstanceOf(breakersOption, CircuitBreakerRegistry)) breakers = breakersOption;
  else if (breakersOption !== false) {
    const ok =
      breakersOption === undefined || (typeof breakersOption === 'object' && breakersOption !== null);
    check.expect(ok, 'breakers', breakersOption, 'a CircuitBreakerRegistry, its options, or false');
    if (ok) {
      breakers = build(
        'breakers',
        () =>
          new CircuitBreakerRegistry({
            name,
            clock,
            failureOn: breakerFailureOn,
            ...(breakersOption as CircuitBreakerRegistryOptions | undefined),
          }),
      );
    }
  }

  const bulkheadsOption = options.bulkheads;
  let bulkheads: OriginBulkheads | undefined;
  if (bulkheadsOption !== false) {
    const ok =
      bulkheadsOption === undefined || (typeof bulkheadsOption === 'object' && bulkheadsOption !== null);
    check.expect(ok, 'bulkheads', bulkheadsOption, 'per-origin bulkhead options, or false');
    if (ok) bulkheads = build('bulkheads', () => new OriginBulkheads({ name, clock, ...bulkheadsOption }));
  }

  const hedgingOption = options.hedging;
  let hedger: HedgingPolicy | undefined;
  if (isInstanceOf(hedgingOption, HedgingPolicy)) hedger = hedgingOption;
  else if (hedgingOption !== undefined && hedgingOption !== false) {
    const ok = typeof hedgingOption === 'object' && hedgingOption !== null;
    check.expect(ok, 'hedging', hedgingOption, 'hedging options, a HedgingPolicy, or false');
    if (ok) {
      // The fetch's budget, counted once per call by the fetch itself.
      const shared = hedgingOption.budget === undefined && budget !== undefined;
      hedger = build(
        'hedging',
        () =>
          new HedgingPolicy({
            clock,
            name,
            ...(shared ? { budget, countRequests: false } : {}),
            ...hedgingOption,
          }),
      );
    }
  }
  if (hedger !== undefined && hedger.clock !== clock) {
    check.expect(false, 'hedging.clock', hedger.clock, "createFetch()'s clock (give both the same clock)");
  }

  const originGroups = resolveOrigins(check, options.origins);

  const deadlineMs = options.deadlineMs ?? FETCH_DEFAULTS.deadlineMs;
  const attemptTimeoutMs = options.attemptTimeoutMs ?? FETCH_DEFAULTS.attemptTimeoutMs;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? FETCH_DEFAULTS.maxRetryAfterMs;
  const retryStatuses: ReadonlySet<number> = new Set(options.retryStatuses ?? FETCH_DEFAULTS.retryStatuses);
  const wallClock = options.wallClock ?? wallClockNow;

  const adaptiveOption = options.adaptiveAttemptTimeout;
  let adaptiveTimeouts: KeyedRegistry<string, AdaptiveTimeoutPolicy> | undefined;
  if (adaptiveOption !== undefined && adaptiveOption !== false) {
    const ok = adaptiveOption === true || (typeof adaptiveOption === 'object' && adaptiveOption !== null);
    check.expect(ok, 'adaptiveAttemptTimeout', adaptiveOption, 'a boolean, or adaptiveTimeout() options');
    if (ok) {
      const tuned: FetchAdaptiveTimeoutOptions = adaptiveOption === true ? {} : adaptiveOption;
      for (const own of ['clock', 'sampleOn', 'propagate'] as const) {
        check.expect(
          (tuned as AdaptiveTimeoutOptions)[own] === undefined,
          `adaptiveAttemptTimeout.${own}`,
          (tuned as AdaptiveTimeoutOptions)[own],
          "unset: the fetch's own",
        );
      }
      const policyOptions: AdaptiveTimeoutOptions = { ...tuned, clock, sampleOn: isLatencySample };
      const validMax = typeof attemptTimeoutMs === 'number' && attemptTimeoutMs > 0;
      // Built once here so that its invalid options join this call's list.
      if (
        validMax &&
        build('adaptiveAttemptTimeout', () => new AdaptiveTimeoutPolicy(attemptTimeoutMs, policyOptions))
      ) {
        adaptiveTimeouts = new KeyedRegistry({
          maxKeys: MAX_TIMED_ORIGINS,
          create: () => new AdaptiveTimeoutPolicy(attemptTimeoutMs, policyOptions),
        });
      }
    }
  }

  const retryOn = (outcome: Outcome): RetryVerdict => {
    if (!outcome.ok) return isRetryableError(outcome.error);
    const response = outcome.value as Response;
    if (!retryStatuses.has(response.status)) return false;
    const waitMs = parseRetryAfter(response.headers.get('retry-after'), wallClock());
    // A wait longer than maxRetryAfterMs ends the loop as a give-up (reason
    // 'retry-after'): the retry policy is told maxRetryAfterMs below.
    return waitMs === undefined ? true : { retry: true, delayMs: waitMs };
  };

  check.done();

  // Every option retry() checks was checked above, so this cannot throw.
  const retryPolicy = new RetryPolicy({
    maxAttempts: options.maxAttempts ?? FETCH_DEFAULTS.maxAttempts,
    minAttemptMs: options.minAttemptMs ?? FETCH_DEFAULTS.minAttemptMs,
    maxRetryAfterMs,
    backoff,
    budget,
    clock,
    random: options.random,
    retryOn,
  });

  const attemptTimeout: TimeoutPolicy | undefined =
    adaptiveTimeouts !== undefined || attemptTimeoutMs === Number.POSITIVE_INFINITY
      ? undefined
      : timeout(attemptTimeoutMs, { clock });
  const baseFetch: FetchFunction = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const generateKey = options.generateIdempotencyKey ?? newIdempotencyKey;
  const idempotencyKeys = options.idempotencyKeys ?? FETCH_DEFAULTS.idempotencyKeys;
  const sendDeadline = options.deadlineHeader ?? FETCH_DEFAULTS.deadlineHeader;
  const sendAttempt = options.attemptHeader ?? FETCH_DEFAULTS.attemptHeader;
  const safetyMarginMs = options.safetyMarginMs ?? FETCH_DEFAULTS.safetyMarginMs;
  const maxDrainBytes = options.maxDrainBytes ?? FETCH_DEFAULTS.maxDrainBytes;
  const pollInProgress = options.pollInProgress ?? FETCH_DEFAULTS.pollInProgress;
  const spans = options.spans ?? false;
  const attemptSpans = spans === 'attempts';
  const minAttemptMs = retryPolicy.minAttemptMs;
  const canRetry = retryPolicy.maxAttempts > 1;

  // A response the retry loop will not return: let go of its connection.
  retryPolicy.onRetry(({ outcome }) => {
    if (outcome.ok && outcome.value instanceof Response) discardResponse(outcome.value, maxDrainBytes);
  });

  const prepare = callPreparer({
    generateKey,
    idempotencyKeys,
    canRetry,
    pollInProgress,
    hedging: hedger !== undefined,
    originGroups,
  });

  const { sendOneAttempt, sendInSpan } = attemptSenders({
    baseFetch,
    attemptSpans,
    sendAttempt,
    sendDeadline,
    safetyMarginMs,
    maxDrainBytes,
  });

  /**
   * One attempt as the retries see it: hedged when the call is, and sent to
   * an origin of the call's group when it has one (see OriginChooser).
   * `route(call)` is the attempt to `call.origin`.
   */
  const attemptThrough = (
    call: PreparedCall,
    route: (to: PreparedCall) => (ctx: ExecutionContext) => Promise<Response>,
    deadline: CallDeadline | undefined,
  ): ((ctx: ExecutionContext) => Promise<Response>) => {
    const group = call.group;
    let sent: (ctx: ExecutionContext) => Promise<Response>;
    if (group === undefined) sent = route(call);
    else {
      const chooser = new OriginChooser(call.origin, group, breakers);
      const routes = new Map<string, (ctx: ExecutionContext) => Promise<Response>>();
      sent = (ctx) => {
        const origin = chooser.next();
        let send = routes.get(origin);
        if (send === undefined) {
          let moved = call;
          if (origin !== call.origin) {
            const target = retarget(call.url, origin);
            moved = { ...call, origin, url: target, target };
          }
          send = route(moved);
          routes.set(origin, send);
        }
        return send(ctx);
      };
    }
    return call.hedged && hedger !== undefined ? raceHedged(hedger, sent, deadline, maxDrainBytes) : sent;
  };

  /** One attempt to `call.origin`: its breaker, its bulkhead, the attempt timeout, attempt policies, the transport; polled while in progress. */
  const attemptTo = (
    call: PreparedCall,
    input: string | URL | Request,
    deadline: CallDeadline | undefined,
    outer: AbortSignal | undefined,
    traced: CallTrace | undefined,
  ): ((ctx: ExecutionContext) => Promise<Response>) => {
    const sendOnce = (ctx: ExecutionContext): Promise<Response> => {
      if (traced !== undefined) traced.attempts = ctx.attempt;
      return attemptSpans
        ? sendInSpan(call, input, ctx, deadline, outer)
        : sendOneAttempt(call, input, ctx, deadline, outer);
    };
    const composedSend =
      attemptPolicy === undefined
        ? sendOnce
        : (ctx: ExecutionContext) => runUnder('attempt', attemptPolicy, sendOnce, ctx);
    const limit: AdaptiveTimeoutPolicy | TimeoutPolicy | undefined =
      adaptiveTimeouts === undefined ? attemptTimeout : adaptiveTimeouts.get(call.origin);
    const timed =
      limit === undefined ? composedSend : (ctx: ExecutionContext) => limit.run(composedSend, ctx);
    const bulkhead: BulkheadPolicy | undefined = bulkheads?.get(call.origin);
    const limited = bulkhead === undefined ? timed : (ctx: ExecutionContext) => bulkhead.run(timed, ctx);
    const breaker: CircuitBreakerPolicy | undefined = breakers?.get(call.origin);
    const guarded = breaker === undefined ? limited : (ctx: ExecutionContext) => breaker.run(limited, ctx);
    return call.pollable ? (ctx: ExecutionContext) => pollWhileInProgress(guarded, ctx) : guarded;
  };

  /**
   * Sends one attempt; while the server answers that an earlier request with
   * the same key is still running there, waits as its `Retry-After` asks and
   * sends again, through the breaker, the bulkhead and the attempt timeout each
   * time. Polls are not retries: the loop around takes nothing from the budget
   * or the attempts for them. The deadline bounds them.
   */
  const pollWhileInProgress = async (
    send: (ctx: ExecutionContext) => Promise<Response>,
    ctx: ExecutionContext,
  ): Promise<Response> => {
    for (;;) {
      const response = await send(ctx);
      if (!isInProgress(response)) return response;
      const hintMs = parseRetryAfter(response.headers.get('retry-after'), wallClock());
      const waitMs = Math.max(MIN_POLL_MS, hintMs ?? IN_PROGRESS_POLL_MS);
      if (waitMs > maxRetryAfterMs) return response;
      const left = remainingMs(ctx);
      // Never sleep into the deadline: the 409 is the answer then.
      if (left !== Number.POSITIVE_INFINITY && (waitMs >= left || left - waitMs < minAttemptMs)) {
        return response;
      }
      discardResponse(response, maxDrainBytes);
      // Ends at once with the signal's reason when the caller aborts.
      await sleep(waitMs, { clock: ctx.clock, signal: ctx.signal });
    }
  };

  // Not async itself: the call without spans is one async function (callThrough), as before.
  const resilientFetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    let call: PreparedCall | undefined;
    try {
      call = prepare(input, init);
      if (call === undefined) return baseFetch(input, init);
    } catch (error) {
      return Promise.reject(error);
    }
    // Spans off, or no tracer provider: no span, and nothing built for one.
    if (spans === false || !telemetry.tracing) return callThrough(call, input, init, undefined);
    const traced: CallTrace = { attempts: 0 };
    return telemetry.inSpan(
      `${name} ${call.method}`,
      { kind: 'internal', attributes: () => requestAttributes(call.method, call.url) },
      (span) => {
        const pending = callThrough(call, input, init, span === undefined ? undefined : traced);
        if (span === undefined) return pending;
        return pending.then(
          (response) => {
            span.setAttribute('bulwark.attempts', traced.attempts);
            return markStatus(span, response);
          },
          (error: unknown) => {
            span.setAttribute('bulwark.attempts', traced.attempts);
            throw error;
          },
        );
      },
    );
  };

  const callThrough = async (
    call: PreparedCall,
    input: string | URL | Request,
    init: RequestInit | undefined,
    traced: CallTrace | undefined,
  ): Promise<Response> => {
    // As with fetch: init.signal replaces the Request's own; null means none.
    const callerSignal = init?.signal !== undefined ? (init.signal ?? undefined) : call.request?.signal;
    if (callerSignal?.aborted) throw callerSignal.reason;

    const now = clock.now();
    let at = now + deadlineMs;
    let budgetMs = deadlineMs;
    const ambient = ambientDeadline(clock);
    if (ambient !== undefined && ambient < at) {
      at = ambient;
      budgetMs = Math.max(0, ambient - now);
    }
    if (at <= now) throw new DeadlineExceededError('deadline', budgetMs);

    // The call's own signal: the caller's abort and the deadline. It is a new
    // signal even without a deadline, so that the listeners this call adds never
    // land on the caller's signal, which may live much longer than the call.
    let deadline: CallDeadline | undefined;
    let signal: AbortSignal | undefined;
    if (at !== Number.POSITIVE_INFINITY) {
      const controller = new AbortController();
      deadline = new CallDeadline(clock, at, budgetMs, controller);
      signal =
        callerSignal === undefined ? controller.signal : AbortSignal.any([callerSignal, controller.signal]);
    } else if (callerSignal !== undefined) signal = AbortSignal.any([callerSignal]);
    const ctx = new CallContext(
      signal ?? neverAborts,
      at === Number.POSITIVE_INFINITY ? undefined : at,
      clock,
      name,
      call.key,
    );
    // A body's read follows the caller's signal, when there is one, through
    // the call's own signal; the deadline aborts the answering attempt itself.
    const outer = callerSignal === undefined ? undefined : signal;
    const attempt = attemptThrough(call, (to) => attemptTo(to, input, deadline, outer, traced), deadline);
    try {
      let response: Response;
      if (callPolicy !== undefined) {
        const retryable = call.retryable;
        response = await runUnder(
          'call',
          callPolicy,
          (inner: ExecutionContext) => {
            if (retryable) return retryPolicy.run(attempt, inner);
            budget?.recordRequest();
            return attempt(inner);
          },
          ctx,
        );
      } else if (call.retryable) response = await retryPolicy.run(attempt, ctx);
      else {
        budget?.recordRequest();
        response = await attempt(ctx);
      }
      if (deadline !== undefined) {
        // The deadline keeps watching a body until the deadline passes. Without
        // a caller's signal, nothing listens to the call's signal any more.
        if (response.body === null) deadline.cancel();
        else if (callerSignal === undefined) deadline.call = undefined;
      }
      return response;
    } catch (error) {
      deadline?.cancel();
      throw error;
    }
  };

  return Object.defineProperties(resilientFetch, {
    retry: { value: retryPolicy, enumerable: true },
    budget: { value: budget, enumerable: true },
    breakers: { value: breakers, enumerable: true },
    bulkheads: { value: bulkheads, enumerable: true },
    hedging: { value: hedger, enumerable: true },
    name: { value: 'resilientFetch' },
  }) as ResilientFetch;
}
