import { type Clock, defaultRandom, type Random, sleep } from '@bulwark/clock';
import {
  type Backoff,
  CallbackError,
  DeadlineExceededError,
  type Disposable,
  type ExecutionContext,
  isBulwarkError,
  type Listener,
  type Operation,
  type Outcome,
  remainingMs,
} from '@bulwark/core';
import {
  asPromise,
  BasePolicy,
  EventHub,
  formatMs,
  OptionsChecker,
  optionKeys,
  policyKind,
  withAttempt,
} from '@bulwark/core/authoring';
import { callBackoff, exponential } from './backoff.ts';
import type { RetryBudget } from './budget.ts';
import { isRetryableError, retryAfterHint } from './classify.ts';
import { RETRY_OPTION_HINTS } from './hints.ts';
import { attemptsCounter, giveupsCounter, telemetry } from './telemetry.ts';

const RETRY_KEYS = optionKeys<RetryOptions>({
  maxAttempts: true,
  backoff: true,
  retryOn: true,
  budget: true,
  clock: true,
  random: true,
  minAttemptMs: true,
  maxRetryAfterMs: true,
});

/** What `retryOn` may return: retry or not, and optionally the delay to use instead of the backoff's. */
export type RetryVerdict = boolean | { readonly retry: boolean; readonly delayMs?: number | undefined };

/**
 * Decides whether an outcome is worth another attempt. Results can be
 * retried too (an HTTP 503 response, say): `outcome.ok` tells which it is.
 * `ctx` is the context of the attempt that produced the outcome
 * (`ctx.attempt` is its number, from 1).
 */
export type RetryOn = (outcome: Outcome, ctx: ExecutionContext) => RetryVerdict;

/** Why a retry loop stopped without success. */
export type StopReason = 'attempts' | 'deadline' | 'budget' | 'not-retryable' | 'aborted' | 'retry-after';

/** The decision after an attempt: retry after `delayMs`, or stop and say why. */
export type RetryDecision =
  | { readonly retry: true; readonly delayMs: number }
  | { readonly retry: false; readonly reason: StopReason | 'success' };

/** Options for {@link retry}. */
export interface RetryOptions {
  /** Attempts in all, counting the first call: an integer >= 1. Default: 3. */
  readonly maxAttempts?: number | undefined;
  /** The delay schedule. Default: `exponential()` (full jitter, 100 ms initial, 10 s cap). */
  readonly backoff?: Backoff | undefined;
  /** Which outcomes to retry. Default: errors {@link isRetryableError} accepts; results are not retried. */
  readonly retryOn?: RetryOn | undefined;
  /** A budget shared with other policies. Default: none (only `maxAttempts` bounds retries). */
  readonly budget?: RetryBudget | undefined;
  /** The clock to sleep on and for contexts this policy creates. Default: the system clock. */
  readonly clock?: Clock | undefined;
  /** The random source for jitter. Default: `Math.random`. */
  readonly random?: Random | undefined;
  /**
   * The least time, in milliseconds, an attempt needs. An attempt that would
   * start with less than this left before the deadline is not made: a retry is
   * skipped and the last real error rethrown; a first attempt is not started
   * and the call rejects with `DeadlineExceededError` (`source: 'deadline'`).
   * Default: 0.
   */
  readonly minAttemptMs?: number | undefined;
  /**
   * The longest wait, in milliseconds, that an outcome may ask for (a
   * `delayMs` from `retryOn`, or an error's `retryAfterMs`). A retryable
   * outcome that asks for longer ends the loop: it gives up with reason
   * `'retry-after'` and the outcome is returned or thrown. Backoff delays are
   * not bounded by it. `Infinity` for no limit. Default: Infinity.
   */
  readonly maxRetryAfterMs?: number | undefined;
}

/** The defaults of {@link retry}. */
export const RETRY_DEFAULTS = Object.freeze({
  maxAttempts: 3,
  minAttemptMs: 0,
  maxRetryAfterMs: Number.POSITIVE_INFINITY,
});

/** Payload of `onRetry`. */
export interface RetryEvent {
  /** The attempt that just ended (1 for the first call). */
  readonly attempt: number;
  /** The wait before the next attempt, in milliseconds. */
  readonly delayMs: number;
  readonly outcome: Outcome;
  readonly operation: string | undefined;
}

/** Payload of `onGiveUp`. */
export interface GiveUpEvent {
  /** Attempts made in all (0 when `minAttemptMs` refused the first one). */
  readonly attempts: number;
  readonly reason: StopReason;
  /** The last attempt's outcome (a result is possible when `retryOn` retries results). */
  readonly outcome: Outcome;
  readonly operation: string | undefined;
}

/** Payload of `onSuccess`. */
export interface RetrySuccessEvent {
  /** Attempts made in all (1 when the first call succeeded). */
  readonly attempts: number;
  readonly operation: string | undefined;
}

const FIRST = Object.freeze({ retry: false });
const RETRY = Object.freeze({ retry: true });
const REASONS = Object.freeze(
  Object.fromEntries(
    (['attempts', 'deadline', 'budget', 'not-retryable', 'aborted', 'retry-after'] as const).map((r) => [
      r,
      Object.freeze({ reason: r }),
    ]),
  ) as Record<StopReason, Readonly<{ reason: StopReason }>>,
);
const STOP = Object.freeze(
  Object.fromEntries(
    (['attempts', 'deadline', 'budget', 'not-retryable', 'aborted', 'retry-after', 'success'] as const).map(
      (r) => [r, Object.freeze({ retry: false as const, reason: r })],
    ),
  ) as Record<StopReason | 'success', RetryDecision>,
);

/**
 * Retries a call with jittered backoff, within `maxAttempts`, an optional
 * shared budget, and the deadline in its context. See {@link retry}.
 */
export class RetryPolicy extends BasePolicy {
  /** What `pipeline()` checks the order of. */
  readonly [policyKind] = 'retry' as const;
  readonly maxAttempts: number;
  readonly backoff: Backoff;
  readonly budget: RetryBudget | undefined;
  readonly minAttemptMs: number;
  readonly maxRetryAfterMs: number;
  readonly random: Random;
  readonly #retryOn: RetryOn | undefined;
  readonly #onRetry = new EventHub<RetryEvent>('retry.onRetry');
  readonly #onGiveUp = new EventHub<GiveUpEvent>('retry.onGiveUp');
  readonly #onSuccess = new EventHub<RetrySuccessEvent>('retry.onSuccess');

  constructor(options?: RetryOptions) {
    const check = new OptionsChecker('retry()');
    check.knownKeys(options, RETRY_KEYS, RETRY_OPTION_HINTS);
    check.number('maxAttempts', options?.maxAttempts, { integer: true, min: 1 });
    check.number('minAttemptMs', options?.minAttemptMs, { min: 0 });
    check.number('maxRetryAfterMs', options?.maxRetryAfterMs, { min: 0, infinite: true });
    check.func('retryOn', options?.retryOn);
    check.func('random', options?.random);
    const backoff = options?.backoff;
    check.expect(
      backoff === undefined || (typeof backoff === 'object' && typeof backoff?.delayMs === 'function'),
      'backoff',
      backoff,
      'a backoff (constant(), exponential() or fromFunction())',
    );
    const budget = options?.budget;
    check.expect(
      budget === undefined || (typeof budget === 'object' && typeof budget?.tryWithdraw === 'function'),
      'budget',
      budget,
      'a retry budget from retryBudget()',
    );
    check.clock('clock', options?.clock, true);
    check.done();
    super(options?.clock);
    this.maxAttempts = options?.maxAttempts ?? RETRY_DEFAULTS.maxAttempts;
    this.minAttemptMs = options?.minAttemptMs ?? RETRY_DEFAULTS.minAttemptMs;
    this.maxRetryAfterMs = options?.maxRetryAfterMs ?? RETRY_DEFAULTS.maxRetryAfterMs;
    this.backoff = backoff ?? exponential();
    this.budget = budget;
    this.random = options?.random ?? defaultRandom;
    this.#retryOn = options?.retryOn;
  }

  /** Called after each failed attempt, before the wait. */
  onRetry(listener: Listener<RetryEvent>): Disposable {
    return this.#onRetry.subscribe(listener);
  }

  /** Called when the loop stops without success (the last outcome is returned or thrown). */
  onGiveUp(listener: Listener<GiveUpEvent>): Disposable {
    return this.#onGiveUp.subscribe(listener);
  }

  /** Called when an attempt succeeds. */
  onSuccess(listener: Listener<RetrySuccessEvent>): Disposable {
    return this.#onSuccess.subscribe(listener);
  }

  /**
   * The decision after attempt `attempt` ended with `outcome`: the primitive
   * the policy acts on, usable without it. `previousDelayMs` is the last delay
   * this loop waited (0 before the first retry). A retry it approves has
   * already been taken from the budget. Throws a `CallbackError` when `retryOn`
   * or the backoff throws.
   */
  decide(outcome: Outcome, attempt: number, previousDelayMs: number, ctx: ExecutionContext): RetryDecision {
    if (!outcome.ok && ctx.signal.aborted) {
      // The caller gave up, or an enclosing deadline fired: nothing to retry for.
      return isBulwarkError(ctx.signal.reason, 'ERR_DEADLINE_EXCEEDED') ? STOP.deadline : STOP.aborted;
    }
    let retry: boolean;
    let hintMs: number | undefined;
    const retryOn = this.#retryOn;
    if (retryOn === undefined) {
      if (outcome.ok) return STOP.success;
      retry = isRetryableError(outcome.error);
    } else {
      let verdict: RetryVerdict;
      try {
        // retryOn sees the context of the attempt that produced the outcome.
        verdict = retryOn(outcome, attempt === ctx.attempt ? ctx : withAttempt(ctx, attempt));
      } catch (error) {
        throw new CallbackError('retryOn', error);
      }
      if (typeof verdict === 'boolean') retry = verdict;
      else if (typeof verdict === 'object' && verdict !== null && typeof verdict.retry === 'boolean') {
        retry = verdict.retry;
        hintMs = verdict.delayMs;
        if (hintMs !== undefined && !(hintMs >= 0 && Number.isFinite(hintMs))) {
          throw new CallbackError(
            'retryOn',
            new RangeError(`retryOn returned delayMs ${String(hintMs)}; it must be a finite number >= 0`),
          );
        }
      } else {
        throw new CallbackError(
          'retryOn',
          new TypeError(`retryOn must return a boolean or { retry, delayMs }, got ${String(verdict)}`),
        );
      }
      if (!retry && outcome.ok) return STOP.success;
    }
    if (!retry) return STOP['not-retryable'];
    if (attempt >= this.maxAttempts) return STOP.attempts;
    if (hintMs === undefined && !outcome.ok) hintMs = retryAfterHint(outcome.error);
    if (hintMs !== undefined && hintMs > this.maxRetryAfterMs) return STOP['retry-after'];
    const delayMs = hintMs ?? callBackoff(this.backoff, attempt, previousDelayMs, this.random);
    const left = remainingMs(ctx);
    // Never sleep into the deadline, and never start an attempt that cannot get minAttemptMs.
    if (left !== Number.POSITIVE_INFINITY && (delayMs >= left || left - delayMs < this.minAttemptMs)) {
      return STOP.deadline;
    }
    if (this.budget !== undefined && !this.budget.tryWithdraw()) return STOP.budget;
    return { retry: true, delayMs };
  }

  run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    // Not an async function: the happy path is one `.then` on the first
    // attempt, with no promise of its own.
    try {
      this.budget?.recordRequest();
      if (this.minAttemptMs > 0 && ctx.deadline !== undefined) {
        const left = remainingMs(ctx);
        if (left < this.minAttemptMs) return Promise.reject(this.#refuse(left, ctx));
      }
    } catch (error) {
      return Promise.reject(error);
    }
    let result: T | PromiseLike<T>;
    try {
      result = fn(ctx.attempt === 1 ? ctx : withAttempt(ctx, 1));
    } catch (error) {
      return this.#loop(fn, ctx, { ok: false, error });
    }
    return asPromise(result).then(
      (value) => this.#firstSucceeded(value, fn, ctx),
      (error: unknown) => this.#loop(fn, ctx, { ok: false, error }),
    );
  }

  #firstSucceeded<T>(value: T, fn: Operation<T>, ctx: ExecutionContext): T | Promise<T> {
    attemptsCounter.add(1, FIRST);
    if (this.#retryOn !== undefined) {
      // retryOn may still ask for a retry (a 503, say). Decided here, so that
      // an answer it accepts (the usual case) costs no loop; what decide()
      // throws rejects the call, as it would in the loop.
      const outcome: Outcome<T> = { ok: true, value };
      const decision = this.decide(outcome, 1, 0, ctx);
      if (decision.retry || decision.reason !== 'success') return this.#loop(fn, ctx, outcome, decision);
    }
    if (this.#onSuccess.listening) this.#onSuccess.emit({ attempts: 1, operation: ctx.operation });
    return value;
  }

  /**
   * The loop after the first attempt: `first` is its outcome, and `decided`
   * the decision on it when it was already made (its attempt then counted).
   */
  async #loop<T>(
    fn: Operation<T>,
    ctx: ExecutionContext,
    first: Outcome<T>,
    decided?: RetryDecision,
  ): Promise<T> {
    if (decided === undefined) attemptsCounter.add(1, FIRST);
    let outcome = first;
    let attempt = 1;
    let previousDelayMs = 0;
    let next = decided;
    for (;;) {
      const decision = next ?? this.decide(outcome, attempt, previousDelayMs, ctx);
      next = undefined;
      if (!decision.retry) {
        if (decision.reason === 'success') {
          if (this.#onSuccess.listening)
            this.#onSuccess.emit({ attempts: attempt, operation: ctx.operation });
          return (outcome as { value: T }).value;
        }
        this.#gaveUp(decision.reason, attempt, outcome, ctx);
        if (outcome.ok) return outcome.value;
        throw outcome.error;
      }
      const { delayMs } = decision;
      if (this.#onRetry.listening)
        this.#onRetry.emit({ attempt, delayMs, outcome, operation: ctx.operation });
      telemetry.spanEvent('bulwark.retry', () => ({ attempt, delay_ms: delayMs }));
      try {
        // Ends at once with the caller's reason, unchanged, when the signal aborts.
        await sleep(delayMs, { clock: ctx.clock, signal: ctx.signal });
      } catch (reason) {
        this.#gaveUp(
          isBulwarkError(reason, 'ERR_DEADLINE_EXCEEDED') ? 'deadline' : 'aborted',
          attempt,
          outcome,
          ctx,
        );
        throw reason;
      }
      attempt++;
      previousDelayMs = delayMs;
      attemptsCounter.add(1, RETRY);
      try {
        outcome = { ok: true, value: await fn(withAttempt(ctx, attempt)) };
      } catch (error) {
        outcome = { ok: false, error };
      }
    }
  }

  /**
   * The first attempt would get less than `minAttemptMs` before the deadline:
   * it is not started, and the call fails as the deadline would have.
   */
  #refuse(leftMs: number, ctx: ExecutionContext): DeadlineExceededError {
    const error = new DeadlineExceededError('deadline', leftMs, {
      message: `retry(): only ${formatMs(leftMs)} left before the deadline, less than minAttemptMs (${formatMs(this.minAttemptMs)}); the attempt was not started`,
    });
    this.#gaveUp('deadline', 0, { ok: false, error }, ctx);
    return error;
  }

  #gaveUp(reason: StopReason, attempts: number, outcome: Outcome, ctx: ExecutionContext): void {
    giveupsCounter.add(1, REASONS[reason]);
    if (this.#onGiveUp.listening)
      this.#onGiveUp.emit({ attempts, reason, outcome, operation: ctx.operation });
  }
}

/**
 * A retry policy. Defaults: 3 attempts in all, exponential backoff with full
 * jitter from 100 ms up to 10 s, the default classifier
 * ({@link isRetryableError}), no budget, `minAttemptMs` 0.
 *
 * It never sleeps past the deadline in its context, rethrows the last real
 * error when it stops, and passes the caller's abort reason through unchanged.
 */
export function retry(options?: RetryOptions): RetryPolicy {
  return new RetryPolicy(options);
}
