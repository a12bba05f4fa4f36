import { BulwarkError } from '@bulwark/core';

/**
 * The idempotency store could not be reached or failed a command. The guard
 * fails closed: the operation did not run. Maps to HTTP 503. The store's own
 * error is the `cause`.
 */
export class StoreUnavailableError extends BulwarkError<'ERR_STORE_UNAVAILABLE'> {
  /** The store command that failed: `"begin"`, `"complete"` or `"release"`. */
  readonly operation: string;
  constructor(operation: string, cause: unknown) {
    super(
      'ERR_STORE_UNAVAILABLE',
      `idempotency store unavailable during ${operation}: ${cause instanceof Error ? cause.message : String(cause)}; the operation did not run, retry later`,
      { cause },
    );
    this.operation = operation;
  }
}

/**
 * An idempotency key that is missing, empty, longer than 255 characters or not a
 * structured-field string. Maps to HTTP 400.
 */
export class InvalidIdempotencyKeyError extends BulwarkError<'ERR_INVALID_IDEMPOTENCY_KEY'> {
  /** The offending value (undefined when the key was missing). */
  readonly value: string | undefined;
  /** Why it was rejected: `"missing"`, `"empty"`, `"too-long"` or `"syntax"`. */
  readonly reason: 'missing' | 'empty' | 'too-long' | 'syntax';
  constructor(reason: InvalidIdempotencyKeyError['reason'], value: string | undefined, detail: string) {
    const shown =
      value === undefined ? '' : ` ${JSON.stringify(value.length > 64 ? `${value.slice(0, 61)}...` : value)}`;
    super('ERR_INVALID_IDEMPOTENCY_KEY', `invalid idempotency key${shown}: ${detail}`);
    this.value = value;
    this.reason = reason;
  }
}
