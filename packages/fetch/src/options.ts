import { CircuitBreakerRegistry, type CircuitBreakerRegistryOptions } from '@bulwark/circuit-breaker';
import { type Clock, type Random, systemClock, wallClockNow } from '@bulwark/clock';
import { type Backoff, InvalidOptionsError, isRefusal, type Outcome, type Policy } from '@bulwark/core';
import { KeyedRegistry, type OptionHints, OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import { type AdaptiveTimeoutOptions, AdaptiveTimeoutPolicy } from '@bulwark/deadline';
import { checkAdaptiveTimeoutOptions } from '@bulwark/deadline/authoring';
import { type HedgingOptions, HedgingPolicy } from '@bulwark/hedging';
import { newIdempotencyKey } from '@bulwark/idempotency';
import { RetryBudget, type RetryBudgetOptions } from '@bulwark/retry';
import { RETRY_OPTION_HINTS } from '@bulwark/retry/authoring';
import { type EquivalentOrigins, type OriginGroups, resolveOrigins } from './equivalent-origins.ts';
import { type OriginBulkheadOptions, OriginBulkheads } from './origin-bulkheads.ts';
import { composePolicies, type FetchPolicies } from './policies.ts';

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

/** The options `adaptiveAttemptTimeout` may tune, and hints for names that are not. */
const FETCH_ADAPTIVE_KEYS = optionKeys<FetchAdaptiveTimeoutOptions>({
  percentile: true,
  multiplier: true,
  minMs: true,
  minSamples: true,
  sampleSize: true,
  sampleTtlMs: true,
});
const FETCH_ADAPTIVE_HINTS: OptionHints = {
  maxMs: 'the largest limit is attemptTimeoutMs',
  timeout: 'the largest limit is attemptTimeoutMs',
  floorMs: 'use minMs',
  factor: 'use multiplier',
};
/** The adaptive timeout's options that are the fetch's own. */
const FETCH_OWN_ADAPTIVE = new Set(['clock', 'sampleOn', 'propagate']);

/** The most origins `adaptiveAttemptTimeout` keeps a latency window for. */
const MAX_TIMED_ORIGINS = 1_000;

/** A function with the signature of the global `fetch`. */
export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

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
   * past the deadline. By default an attempt then gets 1.5 × the p99.9 of its
   * origin's recent answers, at least 100 ms; until 100 answers are known it
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
   * bulkhead. A keyed request may reach several origins of its group: its
   * `Idempotency-Key` keeps it from running twice only when they share one
   * idempotency store. An origin may be in one group only. Default: none (every
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

function isFiniteNumberList(value: unknown): value is readonly number[] {
  return (
    Array.isArray(value) &&
    value.every((v) => typeof v === 'number' && Number.isInteger(v) && v >= 100 && v <= 599)
  );
}

function isInstanceOf<T>(value: unknown, ctor: abstract new (...args: never[]) => T): value is T {
  return value instanceof ctor;
}

/**
 * The options of {@link createFetch}, checked, with every default filled in
 * and the parts they describe built: the retry budget, the per-origin
 * breakers, bulkheads and adaptive timeouts, the hedging policy, and the
 * `policies` composed. Frozen.
 */
export interface ResolvedFetchOptions {
  readonly fetch: FetchFunction;
  readonly clock: Clock;
  readonly random: Random | undefined;
  readonly wallClock: () => number;
  readonly name: string;
  readonly deadlineMs: number;
  readonly attemptTimeoutMs: number;
  /** One adaptive timeout per origin, when `adaptiveAttemptTimeout` is on. */
  readonly adaptiveTimeouts: KeyedRegistry<string, AdaptiveTimeoutPolicy> | undefined;
  readonly maxAttempts: number;
  readonly backoff: Backoff | undefined;
  readonly minAttemptMs: number;
  readonly budget: RetryBudget | undefined;
  readonly retryStatuses: ReadonlySet<number>;
  readonly maxRetryAfterMs: number;
  readonly idempotencyKeys: boolean;
  readonly generateIdempotencyKey: () => string;
  readonly pollInProgress: boolean;
  readonly breakers: CircuitBreakerRegistry | undefined;
  readonly bulkheads: OriginBulkheads | undefined;
  readonly deadlineHeader: boolean;
  readonly safetyMarginMs: number;
  readonly attemptHeader: boolean;
  readonly maxDrainBytes: number;
  readonly spans: false | 'call' | 'attempts';
  /** `policies.call`, composed into one; undefined when there are none. */
  readonly callPolicy: Policy | undefined;
  /** `policies.attempt`, composed into one; undefined when there are none. */
  readonly attemptPolicy: Policy | undefined;
  readonly hedging: HedgingPolicy | undefined;
  readonly originGroups: OriginGroups | undefined;
}

/**
 * Option resolution of {@link createFetch}: checks `options` (the nested
 * `breakers`, `bulkheads`, `budget`, `hedging` and `adaptiveAttemptTimeout`
 * options included) and resolves them into a frozen object.
 *
 * @throws InvalidOptionsError (a RangeError) listing every invalid option.
 */
export function resolveFetchOptions(options: CreateFetchOptions = {}): ResolvedFetchOptions {
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
      // Unknown keys named against what the fetch lets you tune (the fetch's own are refused above).
      const others = Object.fromEntries(
        Object.entries(tuned).filter(([key]) => !FETCH_OWN_ADAPTIVE.has(key)),
      );
      const known = check.knownKeys(
        others,
        FETCH_ADAPTIVE_KEYS,
        FETCH_ADAPTIVE_HINTS,
        'adaptiveAttemptTimeout',
      );
      const policyOptions: AdaptiveTimeoutOptions = { ...tuned, clock, sampleOn: isLatencySample };
      const validMax = known && typeof attemptTimeoutMs === 'number' && attemptTimeoutMs > 0;
      // Checked and resolved once here (its invalid options join this call's
      // list); every origin's adaptive timeout is built from the one result.
      const resolvedTimeout = validMax
        ? build('adaptiveAttemptTimeout', () =>
            checkAdaptiveTimeoutOptions('adaptiveTimeout()', attemptTimeoutMs, policyOptions),
          )
        : undefined;
      if (resolvedTimeout !== undefined) {
        adaptiveTimeouts = new KeyedRegistry({
          maxKeys: MAX_TIMED_ORIGINS,
          create: () => new AdaptiveTimeoutPolicy(resolvedTimeout),
        });
      }
    }
  }

  check.done();

  return Object.freeze({
    fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    clock,
    random: options.random,
    wallClock,
    name,
    deadlineMs,
    attemptTimeoutMs,
    adaptiveTimeouts,
    maxAttempts: options.maxAttempts ?? FETCH_DEFAULTS.maxAttempts,
    backoff,
    minAttemptMs: options.minAttemptMs ?? FETCH_DEFAULTS.minAttemptMs,
    budget,
    retryStatuses,
    maxRetryAfterMs,
    idempotencyKeys: options.idempotencyKeys ?? FETCH_DEFAULTS.idempotencyKeys,
    generateIdempotencyKey: options.generateIdempotencyKey ?? newIdempotencyKey,
    pollInProgress: options.pollInProgress ?? FETCH_DEFAULTS.pollInProgress,
    breakers,
    bulkheads,
    deadlineHeader: options.deadlineHeader ?? FETCH_DEFAULTS.deadlineHeader,
    safetyMarginMs: options.safetyMarginMs ?? FETCH_DEFAULTS.safetyMarginMs,
    attemptHeader: options.attemptHeader ?? FETCH_DEFAULTS.attemptHeader,
    maxDrainBytes: options.maxDrainBytes ?? FETCH_DEFAULTS.maxDrainBytes,
    spans: options.spans ?? FETCH_DEFAULTS.spans,
    callPolicy,
    attemptPolicy,
    hedging: hedger,
    originGroups,
  });
}
