import { BulwarkError, type StoreFailure, StoreUnavailableError } from '@bulwark/core';
import { formatMs, markRefusal } from '@bulwark/core/authoring';

/**
 * A call the rate limiter refused: admitting it now would exceed the rate
 * (and, in wait mode, the wait it needs is longer than the deadline or
 * `maxWaitMs` allows). `retryAfterMs` says when one call of this key would be
 * admitted, if nothing else takes the slot first. Built with
 * `{ stack: false }` (a policy's `refusalStacks: false`), it has no stack
 * trace: `stack` is the name and the message. A refusal (`isRefusal()`):
 * retry's default classifier does not retry it.
 */
export class RateLimitedError extends BulwarkError<'ERR_RATE_LIMITED'> {
  /** Milliseconds until one call of this key would be admitted. */
  declare readonly retryAfterMs: number;
  /** The key whose limit refused the call. */
  readonly key: string;
  /** The limiter's name, when it has one. */
  readonly limiter: string | undefined;

  constructor(
    key: string,
    retryAfterMs: number,
    detail: { ratePerSecond: number; burst: number },
    name?: string,
    options?: { readonly stack?: boolean | undefined },
  ) {
    const who = name === undefined ? 'the rate limit' : `rate limit "${name}"`;
    super(
      'ERR_RATE_LIMITED',
      `call refused: ${who} for key ${JSON.stringify(key)} (${detail.ratePerSecond}/s, burst ${detail.burst}) is used up; one call is admitted again in ${formatMs(retryAfterMs)}`,
      { retryAfterMs, stack: options?.stack },
    );
    this.key = key;
    this.limiter = name;
  }
}
// Refused without running: retry does not retry it (its own `wait` option
// waits for the slot), and fetch does not count it against an origin.
markRefusal(RateLimitedError);

/** Why a rate-limit store could not decide (core's `StoreFailure`). */
export type RateLimitStoreFailure = StoreFailure;

/**
 * A shared rate-limit store could not decide: it was unreachable or failed
 * (`unavailable`), did not answer within its command timeout or the caller's
 * deadline (`timeout`), or found a value at the key that it did not write
 * (`corrupt`). With `onStoreError: 'fail-closed'` the call is refused with this
 * error; with `'fail-open'` it is admitted and the error is only reported. A
 * core `StoreUnavailableError` (`store: 'rate-limit'`, `operation: 'take'`).
 */
export class RateLimitStoreError extends StoreUnavailableError {
  /** Why the store could not decide (the same as `reason`). */
  readonly failure: RateLimitStoreFailure;
  /** The key the decision was for. */
  declare readonly key: string;

  constructor(failure: RateLimitStoreFailure, key: string, detail: string, cause?: unknown) {
    super('take', cause, {
      store: 'rate-limit',
      reason: failure,
      key,
      message: `rate-limit store could not decide for key ${JSON.stringify(key)} (${failure}): ${detail}`,
    });
    this.failure = failure;
  }
}

declare module '@bulwark/core' {
  /** This package's error codes, for `isBulwarkError(e, code)` to narrow by. */
  interface BulwarkErrorMap {
    ERR_RATE_LIMITED: RateLimitedError;
  }
}
