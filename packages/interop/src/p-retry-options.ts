import type { Backoff } from '@bulwark/core';
import type { OptionsChecker } from '@bulwark/core/authoring';
import { constant, exponential, fromFunction, type RetryOn, type RetryOptions } from '@bulwark/retry';
import { peerOptionsChecker } from './peer.ts';

/** What p-retry passes to its callbacks. */
export interface PRetryContext {
  readonly error: Error;
  readonly attemptNumber: number;
  readonly retriesLeft: number;
  readonly retriesConsumed: number;
  readonly retryDelay: number;
}

/**
 * The options of p-retry 9, declared here so that converting them does not
 * need p-retry. p-retry's own `Options` objects are assignable to it.
 */
export interface PRetryOptions {
  /** Retries after the first attempt; a non-negative integer or Infinity. Default: 10. */
  readonly retries?: number | undefined;
  /** The exponential factor; 0 counts as 1. Default: 2. */
  readonly factor?: number | undefined;
  /** Milliseconds before the first retry. Default: 1,000. */
  readonly minTimeout?: number | undefined;
  /** The cap on one delay, in milliseconds (rounded up). Default: Infinity. */
  readonly maxTimeout?: number | undefined;
  /** Multiplies each delay by a random factor in [1, 2). Default: false. */
  readonly randomize?: boolean | undefined;
  /** Milliseconds the whole retry loop may take. Default: Infinity. */
  readonly maxRetryTime?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly unref?: boolean | undefined;
  readonly onFailedAttempt?: ((context: PRetryContext) => void | Promise<void>) | undefined;
  readonly shouldRetry?: ((context: PRetryContext) => boolean | Promise<boolean>) | undefined;
  readonly shouldConsumeRetry?: PRetryShouldConsumeRetry | undefined;
}

/** p-retry's `shouldConsumeRetry` option. */
// biome-ignore lint/suspicious/noConfusingVoidType: p-retry's own signature, so that its options are assignable
type PRetryShouldConsumeRetry = (context: PRetryContext) => boolean | void | Promise<boolean | void>;

/** p-retry 9's defaults. */
export const P_RETRY_DEFAULTS = Object.freeze({
  retries: 10,
  factor: 2,
  minTimeout: 1_000,
  maxTimeout: Number.POSITIVE_INFINITY,
  randomize: false,
  maxRetryTime: Number.POSITIVE_INFINITY,
});

/** The longest delay p-retry schedules: what a platform timer can hold. */
export const P_RETRY_MAX_DELAY_MS = 2 ** 31 - 1;

/** What {@link retryOptionsFromPRetry} returns. */
export interface RetryConversion {
  /** Options for `retry()` from `@bulwark/retry`. */
  readonly options: RetryOptions;
  /**
   * p-retry's `maxRetryTime`, for `deadline(deadlineMs)` from `@bulwark/deadline`
   * around the retry. Undefined when it was Infinity.
   */
  readonly deadlineMs: number | undefined;
  /** One line per option that has no exact bulwark equivalent: what differs and what to do. */
  readonly warnings: readonly string[];
}

/**
 * Checks p-retry options with bulwark's rules: one InvalidOptionsError listing
 * every problem (p-retry throws a TypeError for the first one, at each call).
 * `more` adds the caller's own checks to the same list.
 */
export function checkPRetryOptions(
  component: string,
  options: unknown,
  more?: (check: OptionsChecker) => void,
): void {
  const check = peerOptionsChecker(component, options, 'p-retry');
  const o = (options ?? {}) as Record<keyof PRetryOptions | 'forever', unknown>;
  check.expect(
    o.retries == null ||
      o.retries === Number.POSITIVE_INFINITY ||
      (typeof o.retries === 'number' && Number.isInteger(o.retries) && o.retries >= 0),
    'retries',
    o.retries,
    'an integer >= 0 or Infinity',
  );
  check.number('factor', o.factor, { min: 0 });
  check.number('minTimeout', o.minTimeout, { min: 0 });
  check.number('maxTimeout', o.maxTimeout, { min: 0, infinite: true });
  check.number('maxRetryTime', o.maxRetryTime, { min: 0, infinite: true });
  check.expect(
    o.randomize == null || typeof o.randomize === 'boolean',
    'randomize',
    o.randomize,
    'a boolean',
  );
  check.expect(o.unref == null || typeof o.unref === 'boolean', 'unref', o.unref, 'a boolean');
  check.func('onFailedAttempt', o.onFailedAttempt);
  check.func('shouldRetry', o.shouldRetry);
  check.func('shouldConsumeRetry', o.shouldConsumeRetry);
  check.expect(
    o.signal == null ||
      (typeof o.signal === 'object' && typeof (o.signal as AbortSignal).aborted === 'boolean'),
    'signal',
    o.signal,
    'an AbortSignal',
  );
  check.expect(
    o.forever === undefined,
    'forever',
    o.forever,
    'absent (p-retry 9 removed it; use retries: Infinity)',
  );
  more?.(check);
  check.done();
}

/** The schedule p-retry computes: `min(round(r × minTimeout × factor^(n−1)), ceil(maxTimeout), 2^31 − 1)`. */
function pRetryDelay(
  attempt: number,
  minTimeout: number,
  factor: number,
  capMs: number,
  multiplier: number,
): number {
  if (minTimeout === 0) return 0;
  return Math.min(Math.round(multiplier * minTimeout * factor ** (attempt - 1)), capMs);
}

/**
 * The backoff that gives p-retry's delays: `exponential({ jitter: 'none' })`
 * when that is exact (whole milliseconds, a whole factor), otherwise a
 * `fromFunction` schedule with p-retry's formula. With `randomize`, the
 * multiplier in [1, 2) is drawn from bulwark's injected random source.
 */
function backoffFor(minTimeout: number, factor: number, capMs: number, randomize: boolean): Backoff {
  if (minTimeout === 0) return constant(0);
  if (randomize) {
    return fromFunction((attempt, _previous, random) =>
      pRetryDelay(attempt, minTimeout, factor, capMs, random() + 1),
    );
  }
  if (minTimeout >= capMs && factor >= 1) return constant(capMs);
  if (Number.isInteger(minTimeout) && Number.isInteger(factor) && factor >= 1) {
    return exponential({ initialMs: minTimeout, maxMs: capMs, factor, jitter: 'none' });
  }
  return fromFunction((attempt) => pRetryDelay(attempt, minTimeout, factor, capMs, 1));
}

/** Messages of fetch's network TypeErrors, which p-retry retries (every other TypeError stops it). */
const NETWORK_MESSAGES: ReadonlySet<string> = new Set([
  'fetch failed',
  'terminated',
  'Failed to fetch',
  'network error',
  'NetworkError when attempting to fetch resource.',
  'Network request failed',
  'The Internet connection appears to be offline.',
  'Network connection lost',
]);

/** What p-retry never retries: its AbortError, and a TypeError that is not a network error. */
export function pRetryStops(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  if ((error as { name?: unknown }).name === 'AbortError') return true;
  return error instanceof TypeError && !NETWORK_MESSAGES.has(error.message);
}

/**
 * Converts p-retry options to the closest bulwark retry options.
 *
 * `retries` becomes `maxAttempts` (one more: bulwark counts the first call);
 * the delays are p-retry's, exactly (see the migration guide); `retryOn`
 * retries every error except those p-retry never retries (its `AbortError`, a
 * non-network TypeError) and asks `shouldRetry`, when given. `maxRetryTime`
 * comes back as `deadlineMs`. Every option without an exact equivalent adds a
 * line to `warnings`.
 */
export function retryOptionsFromPRetry(pRetryOptions?: PRetryOptions): RetryConversion {
  checkPRetryOptions('retryOptionsFromPRetry()', pRetryOptions);
  const o = pRetryOptions ?? {};
  const warnings: string[] = [];
  const retries = o.retries ?? P_RETRY_DEFAULTS.retries;
  const factor = o.factor === 0 ? 1 : (o.factor ?? P_RETRY_DEFAULTS.factor);
  const minTimeout = o.minTimeout ?? P_RETRY_DEFAULTS.minTimeout;
  const capMs = Math.min(Math.ceil(o.maxTimeout ?? P_RETRY_DEFAULTS.maxTimeout), P_RETRY_MAX_DELAY_MS);
  const randomize = o.randomize ?? P_RETRY_DEFAULTS.randomize;
  const maxAttempts = retries === Number.POSITIVE_INFINITY ? Number.MAX_SAFE_INTEGER : retries + 1;

  const shouldRetry = o.shouldRetry;
  const retryOn: RetryOn = (outcome, ctx) => {
    if (outcome.ok || pRetryStops(outcome.error)) return false;
    if (shouldRetry === undefined) return true;
    // retryOn gets the context of the attempt that just ended.
    const attemptNumber = ctx.attempt;
    const consumed = attemptNumber - 1;
    const error =
      outcome.error instanceof Error
        ? outcome.error
        : new TypeError(`Non-error was thrown: "${String(outcome.error)}". You should only throw errors.`);
    const verdict = shouldRetry.call(o, {
      error,
      attemptNumber,
      retriesLeft: retries - consumed,
      retriesConsumed: consumed,
      retryDelay: pRetryDelay(attemptNumber, minTimeout, factor, capMs, 1),
    });
    if (typeof verdict !== 'boolean') {
      throw new TypeError(
        `shouldRetry returned ${verdict instanceof Promise ? 'a promise' : String(verdict)}; converted to bulwark's retryOn it must return a boolean synchronously`,
      );
    }
    return verdict;
  };

  if (shouldRetry !== undefined) {
    warnings.push(
      'shouldRetry: called synchronously from retryOn, with retryDelay before jitter; one that returns a promise stops the loop with a CallbackError',
    );
  }
  if (randomize) {
    warnings.push(
      "randomize: kept as p-retry's multiplier in [1, 2) drawn from the injected random source; bulwark's own jitter kinds (exponential({ jitter: 'full' | 'equal' | 'decorrelated' })) spread retries wider and never exceed maxMs",
    );
  }
  const deadlineMs =
    o.maxRetryTime === undefined || o.maxRetryTime === Number.POSITIVE_INFINITY ? undefined : o.maxRetryTime;
  if (deadlineMs !== undefined) {
    warnings.push(
      `maxRetryTime: use deadline(${deadlineMs}) from @bulwark/deadline around the retry; unlike p-retry it also aborts the attempt in flight, and no retry starts that its delay would push past the deadline (p-retry shortens the last delay and tries once more)`,
    );
  }
  if (o.onFailedAttempt !== undefined) {
    warnings.push(
      'onFailedAttempt: subscribe with policy.onRetry() and policy.onGiveUp(); listeners cannot delay the next attempt or stop the loop (use retryOn to stop it)',
    );
  }
  if (o.shouldConsumeRetry !== undefined) {
    warnings.push(
      'shouldConsumeRetry: no equivalent; every retry counts against maxAttempts (share a retryBudget() to bound retries across calls)',
    );
  }
  if (o.signal != null) {
    warnings.push('signal: pass it per call, as policy.execute(fn, { signal })');
  }
  if (o.unref === true) {
    warnings.push(
      'unref: no equivalent; a bulwark retry wait keeps the process alive, like any pending work',
    );
  }

  const options: RetryOptions = {
    maxAttempts,
    backoff: backoffFor(minTimeout, factor, capMs, randomize),
    retryOn,
  };
  return Object.freeze({ options: Object.freeze(options), deadlineMs, warnings: Object.freeze(warnings) });
}
