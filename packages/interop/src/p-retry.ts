import type { Clock } from '@bulwark/clock';
import { type ExecutionContext, type Operation, remainingMs } from '@bulwark/core';
import { BasePolicy, optionKeys, ScopedContext, withAttempt } from '@bulwark/core/authoring';
import type { Options } from 'p-retry';
import { checkPRetryOptions } from './p-retry-options.ts';
import { requirePeer } from './peer.ts';

export {
  checkPRetryOptions,
  P_RETRY_DEFAULTS,
  P_RETRY_MAX_DELAY_MS,
  type PRetryContext,
  type PRetryOptions,
  pRetryStops,
  type RetryConversion,
  retryOptionsFromPRetry,
} from './p-retry-options.ts';

type PRetryModule = typeof import('p-retry');

// Loaded when this entry is imported, so that a missing peer is reported at once, by name.
const pRetryModule = requirePeer<PRetryModule>('p-retry', '@bulwark/interop/p-retry');

/**
 * p-retry's `AbortError`, from the copy of p-retry this entry loaded: throw it
 * from a function run by {@link pRetryPolicy} to stop retrying.
 */
export const AbortError: PRetryModule['AbortError'] = pRetryModule.AbortError;

/**
 * p-retry rejects with the error an `AbortError` wraps. Marks that error
 * `retryable: false` (unless it says otherwise already), so that a bulwark
 * retry around this policy does not retry what the function said must not be.
 */
function markNotRetryable(abort: InstanceType<PRetryModule['AbortError']>): void {
  let cause: unknown = abort;
  while (cause instanceof pRetryModule.AbortError && cause.originalError instanceof Error) {
    cause = cause.originalError;
  }
  if (typeof cause === 'object' && cause !== null && !Object.hasOwn(cause, 'retryable')) {
    Object.defineProperty(cause, 'retryable', { value: false, configurable: true, writable: true });
  }
}

/** Options for {@link pRetryPolicy} beyond p-retry's own. */
export interface PRetryPolicyOptions {
  /** The clock for contexts this policy creates itself. Default: the system clock. */
  readonly clock?: Clock | undefined;
}

const OWN_KEYS = optionKeys<PRetryPolicyOptions>({ clock: true });

/** A policy that runs the call through p-retry. See {@link pRetryPolicy}. */
export class PRetryPolicy extends BasePolicy {
  /** The p-retry options every call uses (`signal` and `maxRetryTime` are adjusted per call). */
  readonly options: Readonly<Options>;

  constructor(pRetryOptions?: Options, options?: PRetryPolicyOptions) {
    checkPRetryOptions('pRetryPolicy()', pRetryOptions, (check) => {
      check.knownKeys(options, OWN_KEYS);
      check.clock('clock', options?.clock);
    });
    super(options?.clock);
    this.options = Object.freeze({ ...pRetryOptions });
  }

  run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    const extra = this.options.signal ?? undefined;
    if (extra === undefined) return this.#retry(fn, ctx);
    // The context's signal, joined with the signal given in the p-retry options.
    const scope = new ScopedContext(ctx, ctx.deadline);
    const onExtraAbort = (): void => scope.abort(extra.reason);
    if (extra.aborted) onExtraAbort();
    else extra.addEventListener('abort', onExtraAbort);
    const done = (): void => {
      extra.removeEventListener('abort', onExtraAbort);
      scope.release();
    };
    return this.#retry(fn, scope).then(
      (value) => {
        done();
        return value;
      },
      (error: unknown) => {
        done();
        throw error;
      },
    );
  }

  #retry<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    const own = this.options;
    // Never let p-retry plan past the deadline in the context.
    const left = remainingMs(ctx);
    const options: Options =
      left === Number.POSITIVE_INFINITY
        ? { ...own, signal: ctx.signal }
        : { ...own, signal: ctx.signal, maxRetryTime: Math.min(own.maxRetryTime ?? left, left) };
    const first = ctx.attempt === 1;
    return pRetryModule.default(
      (attemptNumber) => attempt(fn, attemptNumber === 1 && first ? ctx : withAttempt(ctx, attemptNumber)),
      options,
    );
  }
}

/** Runs one attempt, marking the error an `AbortError` wraps so that it is not retried outside either. */
function attempt<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
  let result: T | PromiseLike<T>;
  try {
    result = fn(ctx);
  } catch (error) {
    if (error instanceof pRetryModule.AbortError) markNotRetryable(error);
    throw error;
  }
  if (typeof (result as PromiseLike<T> | undefined)?.then === 'function') {
    return (result as PromiseLike<T>).then(undefined, rethrowMarked);
  }
  return result;
}

function rethrowMarked(error: unknown): never {
  if (error instanceof pRetryModule.AbortError) markNotRetryable(error);
  throw error;
}

/**
 * A policy that runs the inner call through p-retry with `pRetryOptions`, so
 * that existing p-retry tuning keeps working inside a bulwark pipeline. Per call
 * it supplies `signal` from the execution context (a deadline or the caller's
 * abort stops the retry loop at once, with that reason) and caps
 * `maxRetryTime` at the time left on the deadline. p-retry's `AbortError`
 * keeps its meaning: the loop stops and rejects with the error it wraps, which
 * is marked `retryable: false` so that an enclosing bulwark retry does not
 * retry it either.
 */
export function pRetryPolicy(pRetryOptions?: Options, options?: PRetryPolicyOptions): PRetryPolicy {
  return new PRetryPolicy(pRetryOptions, options);
}
