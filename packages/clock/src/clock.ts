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
  readonly unref?: boolean;
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
