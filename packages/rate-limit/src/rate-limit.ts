import { type Clock, sleep } from '@bulwark/clock';
import {
  CallbackError,
  type Disposable,
  type ExecutionContext,
  type Listener,
  type Operation,
  remainingMs,
} from '@bulwark/core';
import { BasePolicy, EventHub, OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import { RateLimitedError } from './errors.ts';
import {
  MEMORY_RATE_LIMIT_STORE_DEFAULTS,
  MemoryRateLimitStore,
  type RateLimitDecision,
  type RateLimitRule,
  type RateLimitStore,
} from './store.ts';

/** Options for {@link rateLimit}. */
export interface RateLimitOptions {
  /** The sustained rate, in calls per second (a finite number > 0). Required. */
  readonly ratePerSecond: number;
  /**
   * How many calls may pass at once after the key has been idle (an integer
   * >= 1). Over any span of `t` seconds at most `burst + ratePerSecond × t`
   * calls pass. Required.
   */
  readonly burst: number;
  /**
   * The key a call is counted under (per tenant, per route): a string, or a
   * function of the call's context. Default: `"default"` (one limit for every call).
   */
  readonly key?: string | ((ctx: ExecutionContext) => string) | undefined;
  /**
   * Where the per-key state lives. Default: a {@link MemoryRateLimitStore} of
   * `maxKeys` keys in this process; give a shared store (`redisRateLimitStore`
   * from `@bulwark/redis`) to limit a whole fleet.
   */
  readonly store?: RateLimitStore | undefined;
  /** The key bound of the default in-memory store (an integer >= 1). Default: 10,000. Not with `store`. */
  readonly maxKeys?: number | undefined;
  /**
   * When true, a call over the limit waits for its slot (reserved at once, so
   * waiters pass in order at the rate) instead of being refused, if the wait
   * fits both `maxWaitMs` and the deadline in the call's context. The wait
   * ends at once when the caller aborts, with the caller's reason; the slot it
   * had reserved stays used (the limiter errs toward admitting fewer). Default: false.
   */
  readonly wait?: boolean | undefined;
  /**
   * The longest a call may wait for its slot in wait mode, in milliseconds
   * (from 0 to {@link RATE_LIMIT_MAX_WAIT_MS}, 60,000). It also bounds how far
   * a shared store's state may run ahead of its clock (see
   * `RateLimitRule.horizonMs`). Default: 10,000. Only with `wait`.
   */
  readonly maxWaitMs?: number | undefined;
  /**
   * When false, a refusal's `RateLimitedError` is built without a stack trace
   * (its `stack` holds only the name and the message), which makes a refusal
   * about three times cheaper: for a limit that refuses at a high rate, as a
   * hot key of a shared limit does under overload. Its code, `retryAfterMs`,
   * key and message are the same. Default: true.
   */
  readonly refusalStacks?: boolean | undefined;
  /** A name for messages and events. */
  readonly name?: string | undefined;
  /** The clock to measure on and to wait on. Default: the system clock. */
  readonly clock?: Clock | undefined;
}

const RATE_LIMIT_KEYS = optionKeys<RateLimitOptions>({
  ratePerSecond: true,
  burst: true,
  key: true,
  store: true,
  maxKeys: true,
  wait: true,
  maxWaitMs: true,
  refusalStacks: true,
  name: true,
  clock: true,
});

/** Other libraries' names for rateLimit() options. */
const RATE_LIMIT_HINTS = Object.freeze({
  points: 'use burst (and ratePerSecond for the refill rate)',
  duration: 'use ratePerSecond (points per duration seconds is ratePerSecond: points / duration)',
  limit: 'use burst and ratePerSecond',
  max: 'use burst and ratePerSecond',
  windowMs: 'GCRA has no window: use ratePerSecond and burst',
});

/**
 * The longest wait any limiter may reserve, in milliseconds (one minute): the
 * bound on `maxWaitMs`. A shared store relies on it: no limiter puts a key's
 * state further ahead of the clock than the rule's drain time plus this, so
 * state further ahead can only come from a step back of the store's clock, and
 * the store may correct it without forgetting any limiter's reserved waits. A
 * wait longer than a minute belongs in a queue, not in a call's path.
 */
export const RATE_LIMIT_MAX_WAIT_MS = 60_000;

/** The defaults of {@link RateLimitOptions}. */
export const RATE_LIMIT_DEFAULTS = Object.freeze({
  key: 'default',
  maxKeys: MEMORY_RATE_LIMIT_STORE_DEFAULTS.maxKeys,
  wait: false,
  maxWaitMs: 10_000,
  refusalStacks: true,
});

/** Payload of {@link RateLimitPolicy.onRefuse}. */
export interface RateLimitRefuseEvent {
  readonly key: string;
  /** Milliseconds until one call of this key would be admitted. */
  readonly retryAfterMs: number;
}

/** Options for {@link RateLimitPolicy.take}. */
export interface TakeOptions {
  /** The longest to wait for a slot, in milliseconds. Default: 0 (refuse at once). */
  readonly maxDelayMs?: number | undefined;
  /** Milliseconds left before the caller's deadline, for a shared store's timeout. Default: Infinity. */
  readonly budgetMs?: number | undefined;
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown })?.then === 'function';
}

/**
 * A rate limit (GCRA): admits at most `burst` calls at once and
 * `ratePerSecond` on average, per key, refusing the rest with
 * {@link RateLimitedError} (`ERR_RATE_LIMITED`, with `retryAfterMs`) or, in
 * wait mode, delaying them within the deadline.
 *
 * `take(key)` is the primitive (a decision, nothing run); `execute` and `run`
 * decide and then act.
 */
export class RateLimitPolicy extends BasePolicy {
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly name: string | undefined;
  /** The rule every decision applies (frozen). */
  readonly rule: RateLimitRule;
  readonly store: RateLimitStore;
  readonly #key: string | ((ctx: ExecutionContext) => string);
  readonly #wait: boolean;
  readonly #maxWaitMs: number;
  readonly #errorOptions: { readonly stack: boolean };
  readonly #refused = new EventHub<RateLimitRefuseEvent>('rateLimit.onRefuse');

  constructor(options: RateLimitOptions) {
    const check = new OptionsChecker('rateLimit()');
    const o = (options ?? {}) as Partial<RateLimitOptions>;
    check.knownKeys(o, RATE_LIMIT_KEYS, RATE_LIMIT_HINTS);
    check.number('ratePerSecond', o.ratePerSecond, { above: 0, required: true });
    check.number('burst', o.burst, { integer: true, min: 1, required: true });
    check.expect(
      o.key === undefined || typeof o.key === 'string' || typeof o.key === 'function',
      'key',
      o.key,
      'a string or a function of the context',
    );
    check.expect(
      o.store === undefined || typeof (o.store as { take?: unknown })?.take === 'function',
      'store',
      o.store,
      'a RateLimitStore (with take())',
    );
    check.number('maxKeys', o.maxKeys, { integer: true, min: 1 });
    check.expect(
      o.maxKeys === undefined || o.store === undefined,
      'maxKeys',
      o.maxKeys,
      'left out when a store is given (it bounds the default in-memory store)',
    );
    check.boolean('wait', o.wait);
    check.number('maxWaitMs', o.maxWaitMs, { min: 0, max: RATE_LIMIT_MAX_WAIT_MS });
    check.expect(
      o.maxWaitMs === undefined || o.wait === true,
      'maxWaitMs',
      o.maxWaitMs,
      'given only with wait: true',
    );
    check.boolean('refusalStacks', o.refusalStacks);
    check.string('name', o.name);
    check.clock('clock', o.clock, true);
    check.done();
    super(o.clock);
    this.ratePerSecond = o.ratePerSecond!;
    this.burst = o.burst!;
    this.name = o.name;
    this.#key = o.key ?? RATE_LIMIT_DEFAULTS.key;
    this.#wait = o.wait ?? RATE_LIMIT_DEFAULTS.wait;
    this.#errorOptions = Object.freeze({
      stack: o.refusalStacks ?? RATE_LIMIT_DEFAULTS.refusalStacks,
    });
    this.#maxWaitMs = this.#wait ? (o.maxWaitMs ?? RATE_LIMIT_DEFAULTS.maxWaitMs) : 0;
    const intervalMs = 1000 / this.ratePerSecond;
    this.rule = Object.freeze({
      intervalMs,
      burst: this.burst,
      horizonMs: this.burst * intervalMs + this.#maxWaitMs,
    });
    this.store = o.store ?? new MemoryRateLimitStore({ maxKeys: o.maxKeys ?? RATE_LIMIT_DEFAULTS.maxKeys });
  }

  /**
   * The primitive: decides for one call of `key` and records it when admitted.
   * Nothing runs and nothing waits; a caller that is told `delayMs > 0` owns a
   * slot that starts after that delay. The in-memory store answers
   * synchronously, a shared one with a promise: await the result.
   */
  take(
    key: string = RATE_LIMIT_DEFAULTS.key,
    options?: TakeOptions,
  ): RateLimitDecision | PromiseLike<RateLimitDecision> {
    return this.store.take(key, this.rule, {
      now: this.clock.now(),
      maxDelayMs: options?.maxDelayMs ?? 0,
      budgetMs: options?.budgetMs ?? Number.POSITIVE_INFINITY,
    });
  }

  /** Subscribes to refusals; dispose the result to unsubscribe. */
  onRefuse(listener: Listener<RateLimitRefuseEvent>): Disposable {
    return this.#refused.subscribe(listener);
  }

  run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
    const key = this.#keyOf(ctx);
    const budgetMs = remainingMs(ctx);
    const maxDelayMs = this.#wait ? Math.min(this.#maxWaitMs, budgetMs) : 0;
    const decision = this.store.take(key, this.rule, { now: ctx.clock.now(), maxDelayMs, budgetMs });
    if (isPromiseLike(decision)) return decision.then((d) => this.#act(d, key, fn, ctx));
    return this.#act(decision, key, fn, ctx);
  }

  #keyOf(ctx: ExecutionContext): string {
    const key = this.#key;
    if (typeof key === 'string') return key;
    let value: unknown;
    try {
      value = key(ctx);
    } catch (error) {
      throw new CallbackError('key', error);
    }
    if (typeof value !== 'string')
      throw new CallbackError('key', new TypeError(`key must return a string, got ${String(value)}`));
    return value;
  }

  #act<T>(
    decision: RateLimitDecision,
    key: string,
    fn: Operation<T>,
    ctx: ExecutionContext,
  ): T | PromiseLike<T> {
    if (!decision.allowed) {
      if (this.#refused.listening) this.#refused.emit({ key, retryAfterMs: decision.retryAfterMs });
      // Returned rejected, not thrown: a function that only ever throws is never
      // optimised by V8, and a refused hot key would run this path alone.
      return Promise.reject(
        new RateLimitedError(
          key,
          decision.retryAfterMs,
          { ratePerSecond: this.ratePerSecond, burst: this.burst },
          this.name,
          this.#errorOptions,
        ),
      );
    }
    if (decision.delayMs > 0) {
      return sleep(decision.delayMs, { clock: ctx.clock, signal: ctx.signal }).then(() => fn(ctx));
    }
    return fn(ctx);
  }
}

/**
 * A rate limit: `rateLimit({ ratePerSecond: 100, burst: 20 })` admits 20 calls
 * at once, then 100 per second, refusing the rest with `ERR_RATE_LIMITED`.
 * @throws InvalidOptionsError listing every invalid option.
 */
export function rateLimit(options: RateLimitOptions): RateLimitPolicy {
  return new RateLimitPolicy(options);
}
