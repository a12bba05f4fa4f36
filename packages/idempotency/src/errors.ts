import { BulwarkError, type LeaseLossReason, LeaseLostError, StoreUnavailableError } from '@bulwark/core';

/**
 * The guard's store failure: the idempotency store could not be reached or
 * failed a command, so the guard failed closed and the operation did not run.
 * Maps to HTTP 503. The store's own error is the `cause`.
 */
export function storeUnavailable(operation: string, cause: unknown): StoreUnavailableError {
  return new StoreUnavailableError(operation, cause, {
    store: 'idempotency',
    message: `idempotency store unavailable during ${operation}: ${cause instanceof Error ? cause.message : String(cause)}; the operation did not run, retry later`,
  });
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

/** Why {@link UnfingerprintableError} refused a value. */
export type UnfingerprintableReason =
  /** A function: JSON leaves it out. */
  | 'function'
  /** A symbol, as a value: JSON leaves it out. */
  | 'symbol'
  /** A member keyed by a symbol: JSON leaves it out. */
  | 'symbol-key'
  /** A bigint without `toJSON`: JSON cannot write it. */
  | 'bigint'
  /** `NaN`, `Infinity` or `-Infinity`: JSON writes `null`. */
  | 'non-finite-number'
  /** `undefined` or a hole in an array: JSON writes `null`. */
  | 'undefined-element'
  /** A `Date` whose time is `NaN`: JSON writes `null`. */
  | 'invalid-date'
  /** An object that contains itself. */
  | 'cycle'
  /** Arrays and objects nested deeper than `MAX_FINGERPRINT_DEPTH`. */
  | 'too-deep'
  /** An object that is neither an array nor a plain object and has no `toJSON` (a Map, a Set, a class instance). */
  | 'unsupported-object'
  /** An HTTP request body that is a stream no parser buffered. */
  | 'stream';

const REASON_TEXT: Readonly<Record<UnfingerprintableReason, string>> = {
  function: 'a function has no JSON form',
  symbol: 'a symbol has no JSON form',
  'symbol-key': 'a symbol-keyed member has no JSON form',
  bigint: 'a bigint has no JSON form (give BigInt.prototype a toJSON, or convert it to a string)',
  'non-finite-number': 'JSON would write it as null',
  'undefined-element': 'JSON would write undefined or a hole in an array as null',
  'invalid-date': 'an invalid Date has no JSON form (JSON would write null)',
  cycle: 'the value contains itself',
  'too-deep': 'arrays and objects are nested too deeply',
  'unsupported-object':
    'only plain objects, arrays and values with a toJSON() method have a faithful JSON form (convert a Map with Object.fromEntries, a Set with Array.from)',
  stream:
    'the body is a stream that no parser buffered; give the route a body parser that reads it into a string, a Buffer or parsed data',
};

function describeValue(value: unknown): string {
  if (typeof value === 'function') return value.name === '' ? 'a function' : `function ${value.name}`;
  if (typeof value === 'symbol') return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number') return String(value);
  if (value === undefined) return 'undefined';
  if (typeof value === 'object' && value !== null) {
    const name = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor
      ?.name;
    return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object';
  }
  return typeof value;
}

/**
 * The default fingerprint was given a value with no faithful JSON form (a
 * function, a Map, a cycle, NaN, ...), so two different requests could have
 * looked the same. Convert the value to plain JSON data first, or pass a
 * `fingerprint` option that knows it.
 */
export class UnfingerprintableError extends BulwarkError<'ERR_UNFINGERPRINTABLE'> {
  /** Where the value is in the input, such as `$.items[2].at` (`$` is the input itself). */
  readonly path: string;
  /** The value refused. */
  readonly value: unknown;
  /** Why it was refused. */
  readonly reason: UnfingerprintableReason;
  constructor(path: string, value: unknown, reason: UnfingerprintableReason) {
    super(
      'ERR_UNFINGERPRINTABLE',
      `cannot fingerprint ${describeValue(value)} at ${path}: ${REASON_TEXT[reason]}`,
    );
    this.path = path;
    this.value = value;
    this.reason = reason;
  }
}

/**
 * The reason an idempotency lease's `signal` aborts: `"taken-over"` when a
 * renewal found that another owner took the key (the owner was paused or cut
 * off past its lease; a completion will be refused with `lease-lost`), or
 * `"unconfirmed"` when no renewal has reached the store for a whole lease
 * interval, so a contender may be free to take over.
 */
export function leaseLost(key: string, reason: LeaseLossReason, cause?: unknown): LeaseLostError {
  return new LeaseLostError(
    key,
    reason,
    cause,
    reason === 'taken-over'
      ? `the lease on idempotency key ${JSON.stringify(key)} was taken over by another owner; this owner's result will not be stored`
      : `the lease on idempotency key ${JSON.stringify(key)} could not be renewed for a whole lease interval; another owner may take it over`,
  );
}

declare module '@bulwark/core' {
  /** This package's error codes, for `isBulwarkError(e, code)` to narrow by. */
  interface BulwarkErrorMap {
    ERR_INVALID_IDEMPOTENCY_KEY: InvalidIdempotencyKeyError;
    ERR_LEASE_SETTLED: LeaseSettledError;
    ERR_UNFINGERPRINTABLE: UnfingerprintableError;
  }
}
