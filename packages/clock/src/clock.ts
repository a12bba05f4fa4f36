/**
 * A source of monotonic time and timers.
 *
 * Every duration, timeout, window and lease in bulwark is measured on a `Clock`.
 * Production code uses {@link systemClock}; tests use `VirtualClock`.
 */
export interface Clock {
  /**
   * Monotonic milliseconds (fractional) from an arbitrary origin. Never goes
   * backwards and never follows wall-clock adjustments. Only differences between
   * two readings of the same clock mean anything.
   */
  now(): number;
  /**
   * Calls `callback` once, no earlier than `ms` milliseconds from now.
   * A negative `ms` counts as 0; `Infinity` gives a timer that never fires.
   * @throws RangeError when `ms` is NaN.
   */
  setTimeout(callback: () => void, ms: number, options?: TimerOptions): Timer;
}

/** Options for {@link Clock.setTimeout}. */
export interface TimerOptions {
  /**
   * When true, the timer does not keep the Node.js process alive on its own.
   * Ignored by clocks that have no process to keep alive. Default: false.
   */
  readonly unref?: boolean | undefined;
}

/** A pending timer. */
export interface Timer {
  /** Cancels the timer. Calling it again, or after the timer fired, does nothing. */
  clear(): void;
  /** Lets the timer keep the process alive again (system clock only). */
  ref?(): void;
  /** Stops the timer from keeping the process alive (system clock only). */
  unref?(): void;
}

/** Throws the RangeError every clock raises for a NaN delay. */
export function checkDelay(ms: number, what: string): void {
  if (Number.isNaN(ms)) throw new RangeError(`${what}: delay must be a number of milliseconds, got NaN`);
}

/**
 * A short, readable rendering of a value for an error message: strings quoted
 * and cut at 80 characters, NaN and -0 as such, functions by name, objects as
 * JSON. Every bulwark error that names a bad value renders it with this
 * (`@bulwark/core`'s `formatValue` is the same function).
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return `[function ${value.name || 'anonymous'}]`;
  if (typeof value === 'symbol') return value.toString();
  if (value === null || value === undefined || typeof value === 'boolean') return String(value);
  try {
    const json = JSON.stringify(value);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * Throws a TypeError naming `what` and the value when `clock` is not a Clock
 * (an object with `now()`, and `setTimeout()` when `timers` is set). @internal
 */
export function checkClock(clock: unknown, what: string, timers: boolean): asserts clock is Clock {
  const maybeClock = clock as Partial<Clock> | null;
  const ok =
    typeof maybeClock === 'object' &&
    maybeClock !== null &&
    typeof maybeClock.now === 'function' &&
    (!timers || typeof maybeClock.setTimeout === 'function');
  if (!ok) {
    const shape = timers ? 'an object with now() and setTimeout()' : 'an object with now()';
    throw new TypeError(`${what}: clock must be a Clock (${shape}), got ${describeValue(clock)}`);
  }
}
