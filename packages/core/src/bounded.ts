import { type Clock, deadlineTimers, type Timer } from '@bulwark/clock';
import { DeadlineExceededError } from './errors.ts';

/** Options for {@link bounded}. */
export interface BoundedOptions {
  /** The instant on `clock` the call must settle by. Default: none (Infinity is none too). */
  readonly at?: number | undefined;
  /** The monotonic clock `at` is an instant of. */
  readonly clock: Clock;
  /** The caller's signal: when it aborts, the call rejects with its reason, unchanged. */
  readonly signal?: AbortSignal | undefined;
  /**
   * The reason to reject with when `at` passes first. Default: a
   * `DeadlineExceededError` with `source: 'deadline'` and the budget the call
   * had. Called only when our deadline fired.
   */
  readonly expired?: (() => unknown) | undefined;
  /**
   * Called when the call ends early (the deadline passed or the signal
   * aborted before the work settled), with the reason the call rejects with
   * and whether it was our deadline: abort the work's own signal here.
   */
  readonly onEarly?: ((reason: unknown, ours: boolean) => void) | undefined;
  /** Whether the deadline's timer lets the process exit while it is pending. Default: false. */
  readonly unref?: boolean | undefined;
  /**
   * When true, the deadline gets a timer of its own on `clock` (`clock.setTimeout`),
   * cleared as soon as the call ends, instead of a slot in the clock's shared
   * `deadlineTimers()`. For rare, long bounds (a store's answer, a probe) where
   * no timer may stay armed once the call is over. Default: false.
   */
  readonly ownTimer?: boolean | undefined;
  /** Called once when the call ends, however it ends (after `onEarly`): release what the call held. */
  readonly onSettle?: (() => void) | undefined;
}

/**
 * Runs `work` bounded by a deadline instant and a signal: the returned promise
 * settles as `work` does, unless `at` passes first (it then rejects with a
 * `DeadlineExceededError`, or what `expired` gives) or `signal` aborts first
 * (it then rejects with the signal's reason, unchanged). The deadline's timer
 * and the signal's listener are removed as soon as the call ends, so a
 * long-lived signal does not collect listeners. A call that is already past
 * neither bound is not checked here: `at` in the past fires at the next timer
 * turn, and an aborted `signal` rejects at once without running `work`.
 *
 * This is the one race of a call against a deadline and a signal in bulwark:
 * the deadline and timeout policies, `execute()`'s caller signal, the
 * interop and failure-detector wrappers and the idempotency guard's store
 * calls all use it.
 */
export function bounded<T>(work: () => T | PromiseLike<T>, options: BoundedOptions): Promise<T> {
  const { at, clock, signal, onSettle } = options;
  if (signal?.aborted) {
    onSettle?.();
    return Promise.reject(signal.reason);
  }
  const timed = at !== undefined && at !== Number.POSITIVE_INFINITY;
  if (!timed && signal === undefined) return unbounded(work, onSettle);
  const start = timed && options.expired === undefined ? clock.now() : 0;
  return new Promise<T>((resolve, reject) => {
    let done = false;
    let timer: Timer | undefined;
    const end = (): void => {
      done = true;
      timer?.clear();
      signal?.removeEventListener('abort', onAbort);
      onSettle?.();
    };
    const early = (reason: unknown, ours: boolean): void => {
      if (done) return;
      options.onEarly?.(reason, ours);
      end();
      reject(reason);
    };
    const onAbort = (): void => early(signal!.reason, false);
    if (timed) {
      const fire = (): void => {
        const expired = options.expired;
        early(expired === undefined ? new DeadlineExceededError('deadline', at - start) : expired(), true);
      };
      const timerOptions = options.unref === true ? UNREF : undefined;
      timer =
        options.ownTimer === true
          ? clock.setTimeout(fire, at - clock.now(), timerOptions)
          : deadlineTimers(clock).schedule(at, fire, timerOptions);
    }
    signal?.addEventListener('abort', onAbort);
    let result: T | PromiseLike<T>;
    try {
      result = work();
    } catch (error) {
      if (!done) {
        end();
        reject(error);
      }
      return;
    }
    if (!isThenable(result)) {
      if (!done) {
        end();
        resolve(result);
      }
      return;
    }
    result.then(
      (value) => {
        if (done) return;
        end();
        resolve(value);
      },
      (error: unknown) => {
        if (done) return;
        end();
        reject(error);
      },
    );
  });
}

const UNREF = Object.freeze({ unref: true });

function unbounded<T>(work: () => T | PromiseLike<T>, onSettle: (() => void) | undefined): Promise<T> {
  let result: T | PromiseLike<T>;
  try {
    result = work();
  } catch (error) {
    onSettle?.();
    return Promise.reject(error);
  }
  if (onSettle === undefined) return Promise.resolve(result);
  if (!isThenable(result)) {
    onSettle();
    return Promise.resolve(result);
  }
  return Promise.resolve(result).then(
    (value) => {
      onSettle();
      return value;
    },
    (error: unknown) => {
      onSettle();
      throw error;
    },
  );
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as PromiseLike<T>).then === 'function'
  );
}
