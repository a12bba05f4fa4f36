import { type Clock, checkClock } from './clock.ts';
import { systemClock } from './system-clock.ts';

/** Measures elapsed time on a monotonic clock. */
export class Stopwatch {
  readonly #clock: Clock;
  #start: number;

  private constructor(clock: Clock) {
    this.#clock = clock;
    this.#start = clock.now();
  }

  /**
   * Starts a stopwatch on `clock` (default: {@link systemClock}).
   * @throws TypeError when `clock` is given but is not a Clock (e.g. `null`).
   */
  static start(clock: Clock = systemClock): Stopwatch {
    checkClock(clock, 'Stopwatch.start', false);
    return new Stopwatch(clock);
  }

  /** Milliseconds since the stopwatch started or was last restarted. Never negative. */
  elapsed(): number {
    return Math.max(0, this.#clock.now() - this.#start);
  }

  /** Returns the elapsed milliseconds and starts counting again from now. */
  restart(): number {
    const now = this.#clock.now();
    const elapsed = Math.max(0, now - this.#start);
    this.#start = now;
    return elapsed;
  }
}
