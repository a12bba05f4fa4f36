/** The brand every bulwark error carries, shared across duplicate copies of the package. */
export const bulwarkErrorBrand: unique symbol = Symbol.for('bulwark.error') as never;

/** Codes of the errors bulwark's own packages raise. */
export type BulwarkErrorCode =
  | 'ERR_DEADLINE_EXCEEDED'
  | 'ERR_INVALID_DEADLINE_HEADER'
  | 'ERR_INVALID_OPTIONS'
  | 'ERR_CALLBACK_FAILED'
  | 'ERR_CIRCUIT_OPEN'
  | 'ERR_THROTTLED'
  | 'ERR_HEDGE_LOST'
  | 'ERR_INJECTED_FAULT'
  | 'ERR_BULKHEAD_FULL'
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
}

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
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryAfterMs = options?.retryAfterMs;
  }
}
Object.defineProperty(BulwarkError.prototype, bulwarkErrorBrand, { value: true });

/** True when `error` is a bulwark error, optionally with the given `code`. */
export function isBulwarkError<C extends string = BulwarkErrorCode>(
  error: unknown,
  code?: C,
): error is BulwarkError<C> {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { [bulwarkErrorBrand]?: unknown })[bulwarkErrorBrand] === true &&
    (code === undefined || (error as { code?: unknown }).code === code)
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
    options?: BulwarkErrorOptions & { message?: string },
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

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `1500` → `"1500 ms"`, rounded to a tenth of a millisecond. */
export function formatMs(ms: number): string {
  return `${Math.round(ms * 10) / 10} ms`;
}
