import { type Clock, defaultRandom, type Random } from '@bulwark/clock';
import {
  BulwarkError,
  CallbackError,
  type Disposable,
  type ExecutionContext,
  isRefusal,
  type Listener,
  type Operation,
  type Outcome,
} from '@bulwark/core';
import {
  BasePolicy,
  BucketedWindow,
  EventHub,
  markRefusal,
  OptionsChecker,
  optionKeys,
} from '@bulwark/core/authoring';
import { telemetry } from './telemetry.ts';

const THROTTLE_KEYS = optionKeys<AdaptiveThrottleOptions>({
  k: true,
  windowMs: true,
  buckets: true,
  maxRejectionProbability: true,
  classify: true,
  clock: true,
  random: true,
  name: true,
  refusalStacks: true,
});

/** How a call's outcome counts in the throttle's window. */
export type ThrottleVerdict = 'accepted' | 'rejected' | 'ignored';

/** What a call produced: a value or an error (core's `Outcome`). */
export type ThrottleOutcome = Outcome;

/**
 * Judges an outcome: `'accepted'` (the backend took the request),
 * `'rejected'` (it refused or failed it: overload evidence) or `'ignored'`
 * (no evidence either way, e.g. the caller gave up).
 */
export type ThrottleClassifier = (outcome: ThrottleOutcome, ctx: ExecutionContext) => ThrottleVerdict;

/** Options for {@link adaptiveThrottle}. */
export interface AdaptiveThrottleOptions {
  /**
   * The multiplier K: the throttle starts refusing once requests exceed K ×
   * accepts. Lower is more aggressive. A number >= 1. Default: 2 (Google SRE's
   * suggestion).
   */
  readonly k?: number | undefined;
  /**
   * The window requests and accepts are counted over, in milliseconds. Default:
   * 10,000. Google SRE's book uses two minutes; a shorter window forgets a
   * finished outage sooner (the refusal probability decays within one window).
   */
  readonly windowMs?: number | undefined;
  /** Buckets the window slides in (its resolution), 1 to 1000. Default: 10. */
  readonly buckets?: number | undefined;
  /**
   * The refusal probability never exceeds this, so a share of calls always
   * reaches the backend and sees it recover. A number in [0, 1]. Default: 0.9.
   */
  readonly maxRejectionProbability?: number | undefined;
  /**
   * How an outcome counts. Default: results are accepted; the caller's abort
   * and local refusals that never reached the backend (any `isRefusal()`
   * error: an open breaker's, a full bulkhead's, a rate limit's, another
   * throttle's) are ignored; every other error is rejected.
   */
  readonly classify?: ThrottleClassifier | undefined;
  /** The clock the window slides on. Default: the system clock. */
  readonly clock?: Clock | undefined;
  /** The random source for refusals. Default: `Math.random`. */
  readonly random?: Random | undefined;
  /** A name for errors, events and telemetry. Default: none. */
  readonly name?: string | undefined;
  /**
   * When false, a refused call's `ThrottledError` is built without a stack
   * trace (`stack` holds only the name and the message), about three times
   * cheaper: the throttle sheds most while the backend is overloaded. Its
   * code, probability and message are the same. Default: true.
   */
  readonly refusalStacks?: boolean | undefined;
}

/** The defaults of {@link adaptiveThrottle}. */
export const ADAPTIVE_THROTTLE_DEFAULTS = Object.freeze({
  k: 2,
  windowMs: 10_000,
  buckets: 10,
  maxRejectionProbability: 0.9,
  refusalStacks: true,
});

/**
 * A call the adaptive throttle refused locally, without sending it: the
 * backend has been refusing recent requests. `probability` is the refusal
 * probability at that moment. There is no `retryAfterMs`: the refusal is
 * random, and the next call may well pass. A refusal (`isRefusal()`): retry's
 * default classifier does not retry it.
 */
export class ThrottledError extends BulwarkError<'ERR_THROTTLED'> {
  /** The throttle's name, when it has one. */
  readonly throttle: string | undefined;
  /** The refusal probability when this call was refused, in [0, 1]. */
  readonly probability: number;

  /** `options.stack: false` builds it without a stack trace (the throttle's `refusalStacks: false`). */
  constructor(probability: number, throttle?: string, options?: { readonly stack?: boolean | undefined }) {
    const who = throttle === undefined ? 'the adaptive throttle' : `adaptive throttle "${throttle}"`;
    super(
      'ERR_THROTTLED',
      `call refused by ${who}: the backend refused recent requests, so ${Math.round(probability * 1000) / 10}% of calls are shed locally`,
      { stack: options?.stack },
    );
    this.throttle = throttle;
    this.probability = probability;
  }
}
// Shed locally without running: retrying it at once would undo the throttle.
markRefusal(ThrottledError);

/** Payload of `onThrottle`. */
export interface ThrottleEvent {
  readonly probability: number;
  readonly name: string | undefined;
  readonly operation: string | undefined;
}

/** Permission for one call, from `tryAcquire()`: report how the backend took it, once. */
export interface ThrottlePermit {
  /** The backend accepted the request. */
  accepted(): void;
  /** The backend refused or failed it. */
  rejected(): void;
  /** No evidence either way (the caller gave up): it is not counted. */
  ignore(): void;
}

const refusalsCounter = telemetry.counter('bulwark.throttle.refusals', {
  description: 'Calls an adaptive throttle refused locally (client-side throttling)',
  unit: '{call}',
});

/** The window's counters. */
const REQUESTS = 0;
const ACCEPTS = 1;

function defaultClassify(outcome: ThrottleOutcome, ctx: ExecutionContext): ThrottleVerdict {
  if (outcome.ok) return 'accepted';
  if (ctx.signal.aborted) return 'ignored';
  // Refused locally (an open breaker, a full bulkhead, a rate limit, another
  // throttle): the backend never saw it, so it is no evidence either way.
  return isRefusal(outcome.error) ? 'ignored' : 'rejected';
}

class Permit implements ThrottlePermit {
  #throttle: AdaptiveThrottlePolicy | undefined;
  constructor(throttle: AdaptiveThrottlePolicy) {
    this.#throttle = throttle;
  }
  accepted(): void {
    this.#throttle?._record(true);
    this.#throttle = undefined;
  }
  rejected(): void {
    this.#throttle?._record(false);
    this.#throttle = undefined;
  }
  ignore(): void {
    this.#throttle = undefined;
  }
}

/**
 * Client-side adaptive throttling, as Google's SRE book ("Handling Overload")
 * describes it and Envoy's admission control filter implements: over a sliding
 * window, each call is refused locally with probability
 * `max(0, (requests − K × accepts) / (requests + 1))`, capped at
 * `maxRejectionProbability`. Requests count every call, including the ones
 * refused locally; accepts count the ones the backend took. See
 * {@link adaptiveThrottle}.
 *
 * O(1) per call, fixed memory (two counters per bucket), no timer.
 */
export class AdaptiveThrottlePolicy extends BasePolicy {
  readonly k: number;
  readonly windowMs: number;
  readonly buckets: number;
  readonly maxRejectionProbability: number;
  readonly random: Random;
  readonly name: string | undefined;
  readonly #classify: ThrottleClassifier | undefined;
  /** What every refusal is built with: no stack when `refusalStacks` is false. */
  readonly #errorOptions: { readonly stack: false } | undefined;
  /** Requests and accepts per bucket. */
  readonly #window: BucketedWindow;
  readonly #onThrottle = new EventHub<ThrottleEvent>('adaptiveThrottle.onThrottle');

  constructor(options?: AdaptiveThrottleOptions) {
    const o = options ?? {};
    const check = new OptionsChecker('adaptiveThrottle()');
    check.knownKeys(options, THROTTLE_KEYS);
    check.number('k', o.k, { min: 1 });
    check.number('windowMs', o.windowMs, { above: 0 });
    check.number('buckets', o.buckets, { integer: true, min: 1, max: 1000 });
    check.number('maxRejectionProbability', o.maxRejectionProbability, { min: 0, max: 1 });
    check.func('classify', o.classify);
    check.func('random', o.random);
    check.clock('clock', o.clock);
    check.string('name', o.name);
    check.boolean('refusalStacks', o.refusalStacks);
    check.done();
    super(o.clock);
    this.k = o.k ?? ADAPTIVE_THROTTLE_DEFAULTS.k;
    this.windowMs = o.windowMs ?? ADAPTIVE_THROTTLE_DEFAULTS.windowMs;
    this.buckets = o.buckets ?? ADAPTIVE_THROTTLE_DEFAULTS.buckets;
    this.maxRejectionProbability =
      o.maxRejectionProbability ?? ADAPTIVE_THROTTLE_DEFAULTS.maxRejectionProbability;
    this.random = o.random ?? defaultRandom;
    this.name = o.name;
    this.#classify = o.classify;
    this.#errorOptions =
      (o.refusalStacks ?? ADAPTIVE_THROTTLE_DEFAULTS.refusalStacks) ? undefined : { stack: false };
    this.#window = new BucketedWindow(this.clock, this.windowMs / this.buckets, this.buckets, 2, true);
  }

  /** Called when a call is refused locally. */
  onThrottle(listener: Listener<ThrottleEvent>): Disposable {
    return this.#onThrottle.subscribe(listener);
  }

  /** The refusal probability now, in [0, `maxRejectionProbability`]. */
  probability(): number {
    const w = this.#window;
    w.slide();
    const requests = w.sum(REQUESTS);
    const p = (requests - this.k * w.sum(ACCEPTS)) / (requests + 1);
    return p <= 0 ? 0 : Math.min(p, this.maxRejectionProbability);
  }

  /** Requests and accepts counted in the current window. */
  stats(): { readonly requests: number; readonly accepts: number; readonly probability: number } {
    const probability = this.probability();
    return { requests: this.#window.sum(REQUESTS), accepts: this.#window.sum(ACCEPTS), probability };
  }

  /**
   * The primitive: a permit to send one call, or undefined when this call is
   * refused (it is then counted as a request that was not accepted). Report
   * the permit's outcome exactly once.
   */
  tryAcquire(): ThrottlePermit | undefined {
    return this.#admit() < 0 ? new Permit(this) : undefined;
  }

  /** The error to throw for a refusal, with the current probability. */
  refusal(): ThrottledError {
    return new ThrottledError(this.probability(), this.name, this.#errorOptions);
  }

  /** @internal counts one finished request. */
  _record(accepted: boolean): void {
    const w = this.#window;
    w.slide();
    w.add(REQUESTS);
    if (accepted) w.add(ACCEPTS);
  }

  run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    const refusedAt = this.#admit();
    if (refusedAt >= 0) {
      const error = new ThrottledError(refusedAt, this.name, this.#errorOptions);
      if (this.#onThrottle.listening)
        this.#onThrottle.emit({ probability: error.probability, name: this.name, operation: ctx.operation });
      // Rejected without an async frame or a throw: the refusal path stays cheap.
      return Promise.reject(error);
    }
    return this.#runAdmitted(fn, ctx);
  }

  async #runAdmitted<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    let value: T;
    try {
      value = await fn(ctx);
    } catch (error) {
      this.#report({ ok: false, error }, ctx);
      throw error;
    }
    this.#report({ ok: true, value }, ctx);
    return value;
  }

  #report(outcome: ThrottleOutcome, ctx: ExecutionContext): void {
    const classify = this.#classify;
    let verdict: ThrottleVerdict;
    if (classify === undefined) verdict = defaultClassify(outcome, ctx);
    else {
      try {
        verdict = classify(outcome, ctx);
      } catch (error) {
        throw new CallbackError('classify', error);
      }
      if (verdict !== 'accepted' && verdict !== 'rejected' && verdict !== 'ignored')
        throw new CallbackError(
          'classify',
          new TypeError(`classify must return 'accepted', 'rejected' or 'ignored', got ${String(verdict)}`),
        );
    }
    if (verdict !== 'ignored') this._record(verdict === 'accepted');
  }

  /**
   * Decides one call: -1 when it may go, else the probability it was refused
   * at. A refusal is counted as a request (not accepted) at once.
   */
  #admit(): number {
    const p = this.probability();
    if (p > 0 && this.random() < p) {
      this._record(false);
      refusalsCounter.add(1, this.name === undefined ? UNNAMED : { throttle: this.name });
      return p;
    }
    return -1;
  }
}

const UNNAMED = Object.freeze({ throttle: 'unnamed' });

/**
 * Client-side adaptive throttling (Google SRE, "Handling Overload"; Envoy's
 * admission control). It refuses calls locally, with a `ThrottledError`
 * (`ERR_THROTTLED`), with probability
 * `max(0, (requests − K·accepts) / (requests + 1))` over a sliding window, so
 * a client sends a backend that refuses work about K times what it accepts,
 * and no more. Defaults: K 2, a 10 s window in 10 buckets, probability capped
 * at 0.9.
 *
 * Use it beside a breaker (`pipeline(adaptiveThrottle(), circuitBreaker())`)
 * as an overload layer: a breaker stops a hard-down dependency at once, the
 * throttle sheds the excess of a partly overloaded one. Alone, it recovers
 * slowly from a hard outage (its pass rate grows with the accepts it sees).
 */
export function adaptiveThrottle(options?: AdaptiveThrottleOptions): AdaptiveThrottlePolicy {
  return new AdaptiveThrottlePolicy(options);
}
