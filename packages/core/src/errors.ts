import type { InvalidOptionsError } from './options.ts';

/** The brand every bulwark error carries, shared across duplicate copies of the package. */
export const bulwarkErrorBrand: unique symbol = Symbol.for('bulwark.error') as never;

/**
 * Each error code and the class of the errors that carry it: what
 * {@link isBulwarkError} narrows to. Core lists its own; every package adds
 * its errors by declaration merging, so they are known wherever that package's
 * types are loaded:
 *
 * ```ts
 * declare module '@bulwark/core' {
 *   interface BulwarkErrorMap {
 *     ERR_CIRCUIT_OPEN: BrokenCircuitError;
 *   }
 * }
 * ```
 *
 * Your own `BulwarkError` subclasses can be added the same way.
 */
export interface BulwarkErrorMap {
  ERR_DEADLINE_EXCEEDED: DeadlineExceededError;
  ERR_CALLBACK_FAILED: CallbackError;
  ERR_INVALID_OPTIONS: InvalidOptionsError;
  ERR_STORE_UNAVAILABLE: StoreUnavailableError;
  ERR_LEASE_LOST: LeaseLostError;
}

/**
 * Codes of the errors bulwark's own packages raise, plus any code added to
 * {@link BulwarkErrorMap}.
 */
export type BulwarkErrorCode = KnownErrorCode | keyof BulwarkErrorMap;

/** The class of the errors with `code`: from {@link BulwarkErrorMap}, else a `BulwarkError` with that code. */
export type BulwarkErrorFor<C extends BulwarkErrorCode> = C extends keyof BulwarkErrorMap
  ? BulwarkErrorMap[C]
  : BulwarkError<C>;

/** Codes that bulwark's own packages raise, whether or not their types are loaded. */
type KnownErrorCode =
  | 'ERR_DEADLINE_EXCEEDED'
  | 'ERR_INVALID_DEADLINE_HEADER'
  | 'ERR_INVALID_OPTIONS'
  | 'ERR_CALLBACK_FAILED'
  | 'ERR_CIRCUIT_OPEN'
  | 'ERR_THROTTLED'
  | 'ERR_HEDGE_LOST'
  | 'ERR_INJECTED_FAULT'
  | 'ERR_BULKHEAD_FULL'
  | 'ERR_RATE_LIMITED'
  | 'ERR_STORE_UNAVAILABLE'
  | 'ERR_INVALID_IDEMPOTENCY_KEY'
  | 'ERR_LEASE_SETTLED'
  | 'ERR_LEASE_LOST'
  | 'ERR_PEER_SUSPECTED'
  | 'ERR_MONITOR_DISPOSED'
  | 'ERR_CIRCUIT_CLOSED'
  | 'ERR_MISSING_PEER_DEPENDENCY'
  | 'ERR_CONNECTION_LOST'
  | 'ERR_UNFINGERPRINTABLE';

/** Options shared by every {@link BulwarkError}. */
export interface BulwarkErrorOptions {
  /** The error that caused this one. */
  readonly cause?: unknown;
  /** Milliseconds after which a new attempt may succeed, when that is known. */
  readonly retryAfterMs?: number | undefined;
  /**
   * The call was refused without running (an open breaker, a full bulkhead):
   * nothing reached the dependency. Marks the error for {@link isRefusal}.
   */
  readonly refusal?: boolean | undefined;
  /**
   * When false, no stack trace is captured: `stack` holds only the name and
   * the message. Capturing one is most of what building an error costs (about
   * 1.2 µs of the 1.6 µs a refusal took), so a policy whose refusals are hot,
   * as under overload, can leave it out (see each policy's `refusalStacks`).
   * Default: true.
   */
  readonly stack?: boolean | undefined;
}

/** The brand of a refusal, shared across duplicate copies of the package. */
export const refusalBrand: unique symbol = Symbol.for('bulwark.refusal') as never;

/** The codes above that mean "refused without running": an error with one is a refusal unless it says otherwise. */
const REFUSAL_CODES: ReadonlySet<string> = new Set<BulwarkErrorCode>([
  'ERR_CIRCUIT_OPEN',
  'ERR_BULKHEAD_FULL',
]);

/**
 * The base of every error bulwark raises: a literal `code`, an optional `cause`
 * and, where it applies, `retryAfterMs`. Test for one with {@link isBulwarkError},
 * which works across duplicate copies of the package, unlike `instanceof`.
 */
export class BulwarkError<C extends string = string> extends Error {
  readonly code: C;
  readonly retryAfterMs: number | undefined;
  declare readonly [bulwarkErrorBrand]: true;

  constructor(code: C, message: string, options?: BulwarkErrorOptions) {
    const init = options?.cause === undefined ? undefined : { cause: options.cause };
    if (options?.stack === false && Error.stackTraceLimit !== 0) {
      // Error.stackTraceLimit is read when the error is built: 0 captures no frame.
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
      try {
        super(message, init);
      } finally {
        Error.stackTraceLimit = limit;
      }
    } else super(message, init);
    this.name = new.target.name;
    this.code = code;
    this.retryAfterMs = options?.retryAfterMs;
    // A class marked by markRefusal() carries the brand on its prototype: no property per error.
    const marked = (this as { [refusalBrand]?: unknown })[refusalBrand] === true;
    const refusal = options?.refusal ?? (marked || REFUSAL_CODES.has(code));
    if (refusal !== marked) Object.defineProperty(this, refusalBrand, { value: refusal });
  }
}
Object.defineProperty(BulwarkError.prototype, bulwarkErrorBrand, { value: true });

/**
 * Marks every error of `errorClass` as a refusal (see {@link isRefusal}) through
 * its prototype, so that building one adds no property for the brand. For a
 * `BulwarkError` subclass that is always a refusal; an error built with
 * `refusal: false` still says otherwise. Returns the class.
 */
export function markRefusal<E extends abstract new (...args: never[]) => BulwarkError>(errorClass: E): E {
  Object.defineProperty(errorClass.prototype, refusalBrand, { value: true });
  return errorClass;
}

/**
 * True when `error` is a bulwark error (from any copy of the packages) and,
 * when `code` is given, has that code. With a code it narrows to that code's
 * class (see {@link BulwarkErrorMap}): `isBulwarkError(e, 'ERR_DEADLINE_EXCEEDED')`
 * gives a `DeadlineExceededError`, whose `source` can be read. A code that no
 * bulwark error has is a type error. Without a code, `isBulwarkError<string>(e)`
 * widens `e.code` to any string, for codes a newer copy of a package may raise.
 */
export function isBulwarkError<C extends string = BulwarkErrorCode>(error: unknown): error is BulwarkError<C>;
export function isBulwarkError<C extends BulwarkErrorCode>(
  error: unknown,
  code: C,
): error is BulwarkErrorFor<C>;
export function isBulwarkError(error: unknown, code?: string): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { [bulwarkErrorBrand]?: unknown })[bulwarkErrorBrand] === true &&
    (code === undefined || (error as { code?: unknown }).code === code)
  );
}

/**
 * True when `error` says a call was refused without running: a policy's own
 * "no" (an open breaker, a full bulkhead, a rate limit, the adaptive
 * throttle, or any error built with `refusal: true`). Nothing reached the dependency, so it is neither worth a
 * retry by itself nor evidence against the dependency. Classifiers test this
 * one mark instead of listing each module's error codes.
 */
export function isRefusal(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { [refusalBrand]?: unknown })[refusalBrand] === true
  );
}

/** Where a {@link DeadlineExceededError} came from. */
export type DeadlineSource = 'deadline' | 'timeout';

/**
 * Our own deadline or timeout fired before the call finished.
 *
 * Raised only when bulwark's deadline fired; when the caller aborts, the
 * caller's reason is passed through instead. `source` tells an overall
 * `deadline()` (`'deadline'`, never worth retrying) from a per-attempt
 * `timeout()` (`'timeout'`, retryable while the deadline allows).
 */
export class DeadlineExceededError extends BulwarkError<'ERR_DEADLINE_EXCEEDED'> {
  readonly source: DeadlineSource;
  /** The budget that ran out, in milliseconds. */
  readonly budgetMs: number;

  constructor(
    source: DeadlineSource,
    budgetMs: number,
    options?: BulwarkErrorOptions & { message?: string | undefined },
  ) {
    super(
      'ERR_DEADLINE_EXCEEDED',
      options?.message ??
        (source === 'deadline'
          ? `deadline exceeded: the ${formatMs(budgetMs)} budget ran out`
          : `attempt timed out after ${formatMs(budgetMs)}`),
      options,
    );
    this.source = source;
    this.budgetMs = budgetMs;
  }
}

/**
 * A user-supplied callback (a classifier, a backoff function, a fingerprint)
 * threw. The original error is the `cause`.
 */
export class CallbackError extends BulwarkError<'ERR_CALLBACK_FAILED'> {
  /** Which callback threw, e.g. `"retryOn"`. */
  readonly callback: string;
  constructor(callback: string, cause: unknown) {
    super('ERR_CALLBACK_FAILED', `${callback} threw: ${describe(cause)}`, { cause });
    this.callback = callback;
  }
}

/** Why a store could not answer. */
export type StoreFailure =
  /** It was unreachable, or failed the command. */
  | 'unavailable'
  /** It did not answer within the time allowed. */
  | 'timeout'
  /** It held a value bulwark did not write (another type, a field it cannot parse). */
  | 'corrupt';

/** What a {@link StoreUnavailableError} says beyond its operation and cause. */
export interface StoreUnavailableDetails {
  /**
   * What the store keeps: `"idempotency"`, `"rate-limit"`, `"breaker-state"`,
   * `"semaphore"`, or the name of a store of your own. Default: `"idempotency"`.
   */
  readonly store?: string | undefined;
  /** Why it failed. Default: `"unavailable"`. */
  readonly reason?: StoreFailure | undefined;
  /** The key the command was for, when there is one. */
  readonly key?: string | undefined;
  /** The whole message, when the default one does not fit. */
  readonly message?: string | undefined;
}

/**
 * A store could not answer: idempotency records, a shared rate limit, shared
 * breaker state or distributed permits, on Redis, PostgreSQL or a store of
 * your own. It was unreachable or failed a command (`reason: 'unavailable'`),
 * did not answer in time (`'timeout'`), or held a value bulwark did not write
 * (`'corrupt'`). Every store failure in bulwark is one of these (some packages
 * add a subclass with a message of their own), so one check covers them all:
 * `isBulwarkError(e, 'ERR_STORE_UNAVAILABLE')` narrows to this class. What
 * the call then gets is the store's fail-open or fail-closed choice.
 */
export class StoreUnavailableError extends BulwarkError<'ERR_STORE_UNAVAILABLE'> {
  /** What the store keeps (see {@link StoreUnavailableDetails.store}). */
  readonly store: string;
  /** The store command that failed: for example `"begin"`, `"take"`, `"publish"`, `"acquire"`. */
  readonly operation: string;
  readonly reason: StoreFailure;
  /** The key the command was for, when there is one. */
  readonly key: string | undefined;

  /** `cause`: the store's own error, when there is one. */
  constructor(operation: string, cause?: unknown, details?: StoreUnavailableDetails) {
    const store = details?.store ?? 'idempotency';
    const reason = details?.reason ?? 'unavailable';
    const key = details?.key;
    const on = key === undefined ? '' : ` on key ${JSON.stringify(key)}`;
    const why = reason === 'unavailable' ? '' : ` (${reason})`;
    super(
      'ERR_STORE_UNAVAILABLE',
      details?.message ??
        `${store} store unavailable during ${operation}${on}${why}${cause === undefined ? '' : `: ${describe(cause)}`}`,
      cause === undefined ? undefined : { cause },
    );
    this.store = store;
    this.operation = operation;
    this.reason = reason;
    this.key = key;
  }
}

/** Why a lease can no longer be counted on. */
export type LeaseLossReason =
  /** A renewal found that another owner took it (this owner was paused or cut off past its lease). */
  | 'taken-over'
  /** No renewal reached the store for a whole lease interval: another owner may take it. */
  | 'unconfirmed';

/**
 * A lease held in a store (an idempotency key's, a distributed bulkhead's
 * permit) can no longer be counted on; the work it guards should stop as soon
 * as it safely can. The reason a lease's `signal` aborts with.
 * `isBulwarkError(e, 'ERR_LEASE_LOST')` narrows to this class.
 */
export class LeaseLostError extends BulwarkError<'ERR_LEASE_LOST'> {
  /** The key the lease was on. */
  readonly key: string;
  readonly reason: LeaseLossReason;

  constructor(key: string, reason: LeaseLossReason, cause?: unknown, message?: string) {
    super(
      'ERR_LEASE_LOST',
      message ??
        (reason === 'taken-over'
          ? `the lease on ${JSON.stringify(key)} was taken over by another owner`
          : `the lease on ${JSON.stringify(key)} could not be renewed for a whole lease interval; another owner may take it over`),
      cause === undefined ? undefined : { cause },
    );
    this.key = key;
    this.reason = reason;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `1500` → `"1500 ms"`, rounded to a tenth of a millisecond. */
export function formatMs(ms: number): string {
  return `${Math.round(ms * 10) / 10} ms`;
}
