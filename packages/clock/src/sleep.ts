import { type Clock, describeValue } from './clock.ts';
import { systemClock } from './system-clock.ts';

/** Options for {@link sleep}. */
export interface SleepOptions {
  /** Ends the sleep at once, rejecting with `signal.reason`. */
  readonly signal?: AbortSignal | undefined;
  /** The clock to sleep on. Default: {@link systemClock}. */
  readonly clock?: Clock | undefined;
  /** When true, the sleep does not keep the process alive. Default: false. */
  readonly unref?: boolean | undefined;
}

/**
 * Resolves after `ms` milliseconds on the clock. `ms` is a number >= 0:
 * 0 resolves on the clock's next timer turn, and `Infinity` never resolves
 * (only the signal ends it).
 *
 * Rejects with `signal.reason`, unchanged, the moment the signal aborts (or at
 * once when it already has). The abort listener is removed on every path.
 *
 * A negative delay is a caller's bug (a deadline computed from stale readings,
 * a sign error), so it is rejected rather than clamped to 0; a caller whose
 * computed delay can dip below 0 clamps it itself.
 * @throws TypeError (as a rejection) when `ms` is not a number; RangeError (as a
 * rejection) when it is NaN, negative or -Infinity. Both name the value.
 */
export function sleep(ms: number, options?: SleepOptions): Promise<void> {
  const clock = options?.clock ?? systemClock;
  const signal = options?.signal;
  if (typeof ms !== 'number')
    return Promise.reject(
      new TypeError(`sleep: ms must be a number of milliseconds >= 0, got ${describeValue(ms)}`),
    );
  if (!(ms >= 0))
    return Promise.reject(
      new RangeError(`sleep: ms must be a number of milliseconds >= 0, got ${describeValue(ms)}`),
    );
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      timer.clear();
      reject(signal!.reason);
    };
    const timer = clock.setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      ms,
      options?.unref ? { unref: true } : undefined,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
