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

/**
 * `lease.complete(value)` was called on a lease that was already completed or
 * released. A lease settles exactly once; the second call changes nothing in
 * the store. A programming error: call `complete` or `release` once per lease.
 */
export class LeaseSettledError extends BulwarkError<'ERR_LEASE_SETTLED'> {
  /** The key the lease was on, as stored (with its scope, when one was given). */
  readonly key: string;
  /** How the lease had settled: `"complete"` or `"release"`. */
  readonly settledBy: 'complete' | 'release';
  constructor(key: string, settledBy: LeaseSettledError['settledBy']) {
    super(
      'ERR_LEASE_SETTLED',
      `the lease on idempotency key ${JSON.stringify(key)} was already settled by ${settledBy}(); call complete() or release() once per lease`,
    );
    this.key = key;
    this.settledBy = settledBy;
  }
}

/**
 * The reason a lease's `signal` aborts: this owner can no longer count on
 * holding the key, so the operation should stop as soon as it safely can.
 * `reason` is `"taken-over"` when a renewal found that another owner took the
 * key (the owner was paused or cut off past its lease; a completion will be
 * refused with `lease-lost`), or `"unconfirmed"` when no renewal has reached the
 * store for a whole lease interval, so a contender may be free to take over.
 */
export class LeaseLostError extends BulwarkError<'ERR_LEASE_LOST'> {
  /** The key the lease was on, as stored (with its scope, when one was given). */
  readonly key: string;
  /** Why the lease cannot be counted on: `"taken-over"` or `"unconfirmed"`. */
  readonly reason: 'taken-over' | 'unconfirmed';
  constructor(key: string, reason: LeaseLostError['reason'], cause?: unknown) {
    super(
      'ERR_LEASE_LOST',
      reason === 'taken-over'
        ? `the lease on idempotency key ${JSON.stringify(key)} was taken over by another owner; this owner's result will not be stored`
        : `the lease on idempotency key ${JSON.stringify(key)} could not be renewed for a whole lease interval; another owner may take it over`,
      { cause },
    );
    this.key = key;
    this.reason = reason;
  }
}
