import { type Clock, checkDelay, type Timer, type TimerOptions } from './clock.ts';

/** Node.js fires any delay above this after 1 ms, so longer delays are chained. */
const MAX_PLATFORM_DELAY = 2 ** 31 - 1;

class SystemTimer implements Timer {
  #handle: ReturnType<typeof globalThis.setTimeout> | undefined;
  #unref: boolean;
  readonly #due: number;
  readonly #callback: () => void;

  constructor(callback: () => void, due: number, unref: boolean) {
    this.#callback = callback;
    this.#due = due;
    this.#unref = unref;
    this.#arm();
  }

  #arm(): void {
    // Platform timers run on a coarse loop clock and can fire a fraction of a
    // millisecond early, so the delay is rounded up and re-checked on firing.
    const wait = Math.min(MAX_PLATFORM_DELAY, Math.max(1, Math.ceil(this.#due - performance.now())));
    const handle = setTimeout(this.#fire, wait);
    if (this.#unref) handle.unref();
    this.#handle = handle;
  }

  readonly #fire = (): void => {
    if (performance.now() < this.#due) {
      this.#arm();
      return;
    }
    this.#handle = undefined;
    this.#callback();
  };

  clear(): void {
    if (this.#handle !== undefined) {
      clearTimeout(this.#handle);
      this.#handle = undefined;
    }
  }

  ref(): void {
    this.#unref = false;
    this.#handle?.ref();
  }

  unref(): void {
    this.#unref = true;
    this.#handle?.unref();
  }
}

const neverFires: Timer = Object.freeze({ clear() {}, ref() {}, unref() {} });

/**
 * The process's monotonic clock: `performance.now()` and the platform timers.
 *
 * Timers never fire early, delays above 2^31-1 ms are honoured (Node.js alone
 * would fire them after 1 ms), and `{ unref: true }` lets a timer not hold the
 * process open.
 */
export const systemClock: Clock = Object.freeze({
  now(): number {
    return performance.now();
  },
  setTimeout(callback: () => void, ms: number, options?: TimerOptions): Timer {
    checkDelay(ms, 'systemClock.setTimeout');
    if (ms === Number.POSITIVE_INFINITY) return neverFires;
    return new SystemTimer(callback, performance.now() + Math.max(0, ms), options?.unref === true);
  },
});

/**
 * The wall-clock time: milliseconds since the Unix epoch, as the system clock
 * is set now. It jumps when the clock is stepped (NTP, an operator), so never
 * measure a duration with it. It exists for the one place bulwark must read a
 * wall-clock instant: turning an absolute instant from a peer (an HTTP-date in
 * `Retry-After`) into a duration, at once.
 */
export function wallClockNow(): number {
  return Date.now();
}
