import { type Clock, systemClock } from '@bulwark/clock';
import type { Disposable, Listener } from '@bulwark/core';
import { EventHub, KeyedRegistry, OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import { listenForClientErrors } from '@bulwark/idempotency/authoring';
import {
  RATE_LIMIT_MAX_WAIT_MS,
  type RateLimitDecision,
  type RateLimitRule,
  type RateLimitStore,
  RateLimitStoreError,
  type RateLimitStoreFailure,
  type TakeRequest,
} from '@bulwark/rate-limit';
import { FleetStoreError } from './errors.ts';
import { GCRA } from './rate-limit-script.ts';
import { checkScriptClient, type RedisScriptClient, runScriptWithin, script } from './run-script.ts';

/** What a shared limit does when Redis cannot decide. */
export type StoreErrorChoice = 'fail-open' | 'fail-closed';

/** Options for {@link redisRateLimitStore}. */
export interface RedisRateLimitStoreOptions {
  /**
   * What a call gets when Redis cannot decide (unreachable, slower than
   * `timeoutMs`, a script error, a value at the key that bulwark did not
   * write). Required, with no default, because the right answer depends on
   * what the limit protects:
   * - `'fail-closed'`: the call is refused with `RateLimitStoreError`
   *   (`ERR_STORE_UNAVAILABLE`). Choose it when the limit protects something
   *   that breaks when overrun (a fragile dependency, a paid quota).
   * - `'fail-open'`: the call is admitted (or judged by `insurance`), and the
   *   error only reported through `onStoreError`. Choose it when the limit is
   *   fairness between tenants and an outage of Redis must not become an
   *   outage of the service.
   */
  readonly onStoreError: StoreErrorChoice;
  /**
   * With `'fail-open'` only: a local store that judges calls while Redis cannot
   * (a `memoryRateLimitStore()`), applying the limit scaled by
   * `insuranceShare`. Default: none (every call is admitted while Redis cannot decide).
   */
  readonly insurance?: RateLimitStore | undefined;
  /**
   * The share of the fleet-wide limit one instance applies through
   * `insurance` (a number in (0, 1], typically 1 / the number of instances):
   * the rate is multiplied by it and the burst too (at least 1). Default: 1.
   */
  readonly insuranceShare?: number | undefined;
  /**
   * Prepended to every key; the key itself is wrapped in a hash tag
   * (`prefix{key}`) so that every Redis key of one limit key lands in one slot
   * of a Redis Cluster. Must not contain `{` or `}`. Default: `"bulwark:rate:"`.
   */
  readonly prefix?: string | undefined;
  /**
   * The longest a decision waits for Redis, in milliseconds (a finite number
   * > 0), measured on `clock`. The caller's deadline shortens it further.
   * Past it, the decision follows `onStoreError`. Default: 100.
   */
  readonly timeoutMs?: number | undefined;
  /**
   * The most keys remembered as refused (an integer >= 0; 0 turns the cache
   * off). A key Redis refused is refused locally, with no round trip, until its
   * `retryAfterMs` has passed on `clock`. Default: 10,000.
   */
  readonly maxCachedKeys?: number | undefined;
  /** The clock for timeouts and the refused-key cache. Default: the system clock. */
  readonly clock?: Clock | undefined;
}

/** The defaults of {@link RedisRateLimitStoreOptions}. */
export const REDIS_RATE_LIMIT_STORE_DEFAULTS = Object.freeze({
  prefix: 'bulwark:rate:',
  timeoutMs: 100,
  maxCachedKeys: 10_000,
  insuranceShare: 1,
});

const RATE_LIMIT_STORE_KEYS = optionKeys<RedisRateLimitStoreOptions>({
  onStoreError: true,
  insurance: true,
  insuranceShare: true,
  prefix: true,
  timeoutMs: true,
  maxCachedKeys: true,
  clock: true,
});

/** Counters of a {@link RedisRateLimitStore}. */
export interface RedisRateLimitStoreStats {
  /** Decisions sent to Redis (each one script call; a first call on a server without the script costs one more). */
  readonly roundTrips: number;
  /** Refusals answered from the refused-key cache, with no round trip. */
  readonly cachedRefusals: number;
  /** Decisions Redis could not make (each reported through `onStoreError`). */
  readonly storeErrors: number;
}

const gcraScript = script(GCRA);

const ADMITTED_BLIND: RateLimitDecision = Object.freeze({
  allowed: true,
  delayMs: 0,
  retryAfterMs: 0,
  remaining: 0,
  resetMs: 0,
});

/**
 * The period a key's expiry moves by, in whole milliseconds: the rule's drain
 * time (burst + 1 intervals), at least 1 ms and at most 1 s. A key expires at
 * the end of the period that holds its TAT, so a drained key outlives its
 * drain by less than one period, and a busy key's expiry is set once per
 * period instead of on every decision. It depends on the rule alone, so every
 * instance sharing a limit (and so its rule) uses the same periods.
 */
function expiryPeriodMs(rule: RateLimitRule): number {
  const drainMs = (rule.burst + 1) * rule.intervalMs;
  return Math.min(1_000, Math.max(1, Math.ceil(drainMs)));
}

/**
 * A rate-limit store on Redis shared by every instance of a service: GCRA in
 * one Lua script per decision (EVALSHA, falling back to EVAL once when the
 * server lacks the script), judged on the server's clock (`TIME` inside the
 * script), so all instances agree. A key Redis refused is then refused locally
 * until its `retryAfterMs`, so a hot refused key costs no round trip.
 */
export class RedisRateLimitStore implements RateLimitStore {
  readonly prefix: string;
  /** What a call gets when Redis cannot decide (the `onStoreError` option). */
  readonly failMode: StoreErrorChoice;
  readonly timeoutMs: number;
  readonly maxCachedKeys: number;
  readonly #client: RedisScriptClient;
  readonly #clock: Clock;
  readonly #insurance: RateLimitStore | undefined;
  readonly #share: number;
  readonly #insuranceRules = new WeakMap<RateLimitRule, RateLimitRule>();
  readonly #argsByRule = new WeakMap<RateLimitRule, readonly [string, string, string, string]>();
  /** Per rule: keys Redis refused, and until when (on `clock`) they stay refused. */
  readonly #refused = new WeakMap<RateLimitRule, KeyedRegistry<string, { until: number }>>();
  readonly #errors = new EventHub<RateLimitStoreError>('redisRateLimitStore.onStoreError');
  /** The rule of the last decision and its arguments: one comparison instead of a map read. */
  #lastRule: RateLimitRule | undefined;
  #lastRuleArgs: readonly [string, string, string, string] | undefined;
  #anyRefused = false;
  #roundTrips = 0;
  #cachedRefusals = 0;
  #storeErrors = 0;

  constructor(client: RedisScriptClient, options: RedisRateLimitStoreOptions) {
    const check = new OptionsChecker('redisRateLimitStore()');
    checkScriptClient(check, client);
    const o = (options ?? {}) as Partial<RedisRateLimitStoreOptions>;
    check.knownKeys(o, RATE_LIMIT_STORE_KEYS);
    check.oneOf('onStoreError', o.onStoreError, ['fail-open', 'fail-closed'] as const, true);
    check.expect(
      o.insurance === undefined || typeof (o.insurance as { take?: unknown })?.take === 'function',
      'insurance',
      o.insurance,
      'a RateLimitStore (with take())',
    );
    check.expect(
      o.insurance === undefined || o.onStoreError !== 'fail-closed',
      'insurance',
      o.insurance,
      "left out with onStoreError: 'fail-closed' (it only judges calls that would fail open)",
    );
    check.number('insuranceShare', o.insuranceShare, { above: 0, max: 1 });
    check.expect(
      o.prefix === undefined || (typeof o.prefix === 'string' && !/[{}]/.test(o.prefix)),
      'prefix',
      o.prefix,
      'a string without { or } (the key goes in the hash tag)',
    );
    check.number('timeoutMs', o.timeoutMs, { above: 0 });
    check.number('maxCachedKeys', o.maxCachedKeys, { integer: true, min: 0 });
    check.clock('clock', o.clock, true);
    check.done();
    listenForClientErrors(client);
    this.#client = client;
    this.failMode = o.onStoreError!;
    this.#insurance = o.insurance;
    this.#share = o.insuranceShare ?? REDIS_RATE_LIMIT_STORE_DEFAULTS.insuranceShare;
    this.prefix = o.prefix ?? REDIS_RATE_LIMIT_STORE_DEFAULTS.prefix;
    this.timeoutMs = o.timeoutMs ?? REDIS_RATE_LIMIT_STORE_DEFAULTS.timeoutMs;
    this.maxCachedKeys = o.maxCachedKeys ?? REDIS_RATE_LIMIT_STORE_DEFAULTS.maxCachedKeys;
    this.#clock = o.clock ?? systemClock;
  }

  /** The Redis key of limit key `key`: `prefix{key}`. */
  redisKey(key: string): string {
    return `${this.prefix}{${key}}`;
  }

  take(
    key: string,
    rule: RateLimitRule,
    request: TakeRequest,
  ): RateLimitDecision | Promise<RateLimitDecision> {
    const now = this.#clock.now();
    // Until Redis has refused something, there is no cache to look in.
    const cache = this.#anyRefused ? this.#refused.get(rule) : undefined;
    if (cache !== undefined) {
      const until = cache.peek(key)?.until;
      if (until !== undefined) {
        const left = until - now;
        if (left <= 0) cache.delete(key);
        else if (left > request.maxDelayMs) {
          this.#cachedRefusals++;
          return { allowed: false, delayMs: 0, retryAfterMs: left, remaining: 0, resetMs: left };
        }
      }
    }
    return this.#remote(key, rule, request, now);
  }

  #remote(
    key: string,
    rule: RateLimitRule,
    request: TakeRequest,
    startedAt: number,
  ): Promise<RateLimitDecision> {
    const tolerance = rule.burst * rule.intervalMs;
    const maxDelayMs = Math.max(
      0,
      Math.min(request.maxDelayMs, rule.horizonMs - tolerance, RATE_LIMIT_MAX_WAIT_MS),
    );
    const ruleArgs = this.#ruleArgs(rule);
    const args = [
      ruleArgs[0],
      ruleArgs[1],
      ruleArgs[2],
      maxDelayMs === 0 ? '0' : String(Math.floor(maxDelayMs * 1000)),
      ruleArgs[3],
    ];
    const budget = Math.min(this.timeoutMs, request.budgetMs);
    this.#roundTrips++;
    return runScriptWithin(
      this.#client,
      gcraScript,
      [this.redisKey(key)],
      args,
      budget,
      this.#clock,
      'rate-limit',
      'take',
      startedAt,
    ).then(
      (reply) => this.#decide(reply, key, rule, request, startedAt),
      (error: unknown) => {
        const reason = error instanceof FleetStoreError ? error.reason : 'unavailable';
        const detail =
          reason === 'timeout'
            ? `no answer within ${budget} ms`
            : error instanceof FleetStoreError && error.cause instanceof Error
              ? error.cause.message
              : String(error instanceof Error ? error.message : error);
        return this.#fail(reason, key, rule, request, detail, error);
      },
    );
  }

  /** The decision in the script's reply. */
  #decide(
    reply: unknown,
    key: string,
    rule: RateLimitRule,
    request: TakeRequest,
    startedAt: number,
  ): RateLimitDecision | PromiseLike<RateLimitDecision> {
    if (typeof reply === 'number' && Number.isInteger(reply)) {
      const intervalUs = rule.intervalMs * 1000;
      const toleranceUs = rule.burst * rule.intervalMs * 1000;
      if (reply >= 0) {
        // Admitted now; the reply is the new TAT minus now (rounded to a microsecond).
        const remaining = Math.floor((toleranceUs - reply + 0.5) / intervalUs + 1e-6);
        return {
          allowed: true,
          delayMs: 0,
          retryAfterMs: 0,
          remaining: Math.max(0, Math.min(rule.burst - 1, remaining)),
          resetMs: reply / 1000,
        };
      }
      const retryAfterMs = -reply / 1000;
      this.#remember(rule, key, startedAt + retryAfterMs);
      return {
        allowed: false,
        delayMs: 0,
        retryAfterMs,
        remaining: 0,
        resetMs: (-reply + toleranceUs - intervalUs) / 1000,
      };
    }
    const fields = Array.isArray(reply) && reply.length >= 2 ? (reply as unknown[]) : undefined;
    if (fields?.[0] === 'corrupt')
      return this.#fail(
        'corrupt',
        key,
        rule,
        request,
        `Redis key ${JSON.stringify(this.redisKey(key))} holds ${fields[1] === 'type' ? 'a value of another type' : 'a value bulwark did not write'}; delete it to reset the limit`,
        undefined,
      );
    // Not an array of two or more: no number is finite, so the reply is unexpected.
    const [status, a, remaining, resetUs] = (fields?.map(Number) ?? []) as [number, number, number, number];
    if (![a, remaining, resetUs].every(Number.isFinite) || (status !== 0 && status !== 1))
      return this.#fail(
        'unavailable',
        key,
        rule,
        request,
        `unexpected reply ${JSON.stringify(reply)}`,
        undefined,
      );
    if (status === 1)
      return { allowed: true, delayMs: a / 1000, retryAfterMs: 0, remaining, resetMs: resetUs / 1000 };
    const retryAfterMs = a / 1000;
    this.#remember(rule, key, startedAt + retryAfterMs);
    return { allowed: false, delayMs: 0, retryAfterMs, remaining: 0, resetMs: resetUs / 1000 };
  }

  /**
   * The script's arguments fixed by a rule (interval, tolerance, horizon and
   * expiry period, in microseconds), formatted once.
   */
  #ruleArgs(rule: RateLimitRule): readonly [string, string, string, string] {
    if (rule === this.#lastRule) return this.#lastRuleArgs!;
    let args = this.#argsByRule.get(rule);
    if (args === undefined) {
      args = [
        String(rule.intervalMs * 1000),
        String(rule.burst * rule.intervalMs * 1000),
        // No limiter reserves more than RATE_LIMIT_MAX_WAIT_MS (the script relies on it).
        String(
          Math.ceil(Math.min(rule.horizonMs, rule.burst * rule.intervalMs + RATE_LIMIT_MAX_WAIT_MS) * 1000),
        ),
        String(expiryPeriodMs(rule) * 1000),
      ];
      this.#argsByRule.set(rule, args);
    }
    this.#lastRule = rule;
    this.#lastRuleArgs = args;
    return args;
  }

  #remember(rule: RateLimitRule, key: string, until: number): void {
    if (this.maxCachedKeys === 0) return;
    this.#anyRefused = true;
    let cache = this.#refused.get(rule);
    if (cache === undefined) {
      cache = new KeyedRegistry({ maxKeys: this.maxCachedKeys, create: () => ({ until: 0 }) });
      this.#refused.set(rule, cache);
    }
    cache.get(key).until = until;
  }

  #fail(
    failure: RateLimitStoreFailure,
    key: string,
    rule: RateLimitRule,
    request: TakeRequest,
    detail: string,
    cause: unknown,
  ): RateLimitDecision | PromiseLike<RateLimitDecision> {
    const error = new RateLimitStoreError(failure, key, detail, cause);
    this.#storeErrors++;
    if (this.#errors.listening) this.#errors.emit(error);
    if (this.failMode === 'fail-closed') throw error;
    const insurance = this.#insurance;
    if (insurance === undefined) return ADMITTED_BLIND;
    return insurance.take(key, this.#insuranceRule(rule), request);
  }

  #insuranceRule(rule: RateLimitRule): RateLimitRule {
    let scaled = this.#insuranceRules.get(rule);
    if (scaled === undefined) {
      const share = this.#share;
      const intervalMs = rule.intervalMs / share;
      const burst = Math.max(1, Math.floor(rule.burst * share));
      scaled = Object.freeze({
        intervalMs,
        burst,
        horizonMs: burst * intervalMs + (rule.horizonMs - rule.burst * rule.intervalMs),
      });
      this.#insuranceRules.set(rule, scaled);
    }
    return scaled;
  }

  /**
   * Subscribes to decisions Redis could not make (each a `RateLimitStoreError`,
   * whichever way the store then failed); dispose the result to unsubscribe.
   */
  onStoreError(listener: Listener<RateLimitStoreError>): Disposable {
    return this.#errors.subscribe(listener);
  }

  /** Round trips, cached refusals and store errors so far. */
  stats(): RedisRateLimitStoreStats {
    return {
      roundTrips: this.#roundTrips,
      cachedRefusals: this.#cachedRefusals,
      storeErrors: this.#storeErrors,
    };
  }
}

/**
 * A rate-limit store on Redis, shared by every instance of a service: give it
 * to `rateLimit({ store })`. `onStoreError` is required: choose what a call gets
 * while Redis cannot decide (see {@link RedisRateLimitStoreOptions.onStoreError}).
 * @throws InvalidOptionsError listing every invalid option.
 */
export function redisRateLimitStore(
  client: RedisScriptClient,
  options: RedisRateLimitStoreOptions,
): RedisRateLimitStore {
  return new RedisRateLimitStore(client, options);
}
