import type { Clock } from './clock.ts';
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
 * Resolves after `ms` milliseconds on the clock.
 *
 * Rejects with `signal.reason`, unchanged, the moment the signal aborts (or at
 * once when it already has). The abort listener is removed on every path.
 * @throws RangeError (as a rejection) when `ms` is NaN.
 */
export function sleep(ms: number, options?: SleepOptions): Promise<void> {
  const clock = options?.clock ?? systemClock;
  const signal = options?.signal;
  if (Number.isNaN(ms))
    return Promise.reject(new RangeError('sleep: ms must be a number of milliseconds, got NaN'));
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
