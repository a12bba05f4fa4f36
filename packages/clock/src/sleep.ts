import { type Clock, checkClock, describeValue } from './clock.ts';
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
 * @throws TypeError (as a rejection) when `ms` is not a number, `clock` is not
 * a Clock (with `now()` and `setTimeout()`) or `signal` is not an AbortSignal;
 * RangeError (as a rejection) when `ms` is NaN, negative or -Infinity, or an
 * option key is unknown. Each names the value.
 */
export function sleep(ms: number, options?: SleepOptions): Promise<void> {
  let clock: Clock = systemClock;
  let signal: AbortSignal | undefined;
  if (options !== undefined) {
    const invalid = invalidOption(options);
    if (invalid !== undefined) return Promise.reject(invalid);
    if (options.clock !== undefined) clock = options.clock;
    signal = options.signal;
  }
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

const SLEEP_KEYS: ReadonlySet<string> = new Set(['signal', 'clock', 'unref']);

/** The error for the first bad option of `sleep()`, or undefined when they are all good. */
function invalidOption(options: SleepOptions): Error | undefined {
  if (typeof options !== 'object' || options === null)
    return new TypeError(`sleep: options must be an object, got ${describeValue(options)}`);
  for (const key of Object.keys(options)) {
    if (!SLEEP_KEYS.has(key)) return new RangeError(`sleep: unknown option ${describeValue(key)}`);
  }
  const { clock, signal, unref } = options;
  if (clock !== undefined) {
    try {
      checkClock(clock, 'sleep', true);
    } catch (error) {
      return error as TypeError;
    }
  }
  if (signal !== undefined && !(signal instanceof AbortSignal))
    return new TypeError(`sleep: signal must be an AbortSignal, got ${describeValue(signal)}`);
  if (unref !== undefined && typeof unref !== 'boolean')
    return new TypeError(`sleep: unref must be a boolean, got ${describeValue(unref)}`);
  return undefined;
}
