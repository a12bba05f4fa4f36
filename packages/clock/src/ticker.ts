import { type Clock, checkClock, describeValue, type Timer, type TimerOptions } from './clock.ts';
import { systemClock } from './system-clock.ts';

/** Options for {@link Ticker}. */
export interface TickerOptions {
  /** Milliseconds between ticks: a finite number > 0. Required. */
  readonly intervalMs: number;
  /** The clock the ticks are timed on. Default: {@link systemClock}. */
  readonly clock?: Clock | undefined;
  /**
   * Stops the ticker for good the moment it aborts (as `stop()` does); a
   * ticker whose signal has aborted does not start. Default: none.
   */
  readonly signal?: AbortSignal | undefined;
  /**
   * When false, the ticker's timer keeps the Node.js process alive while the
   * ticker runs. Default: true (a background ticker never holds the process).
   */
  readonly unref?: boolean | undefined;
  /**
   * Whether `start()` ticks at once. When false, the first tick comes one
   * `intervalMs` after `start()`, and the cadence runs from there. Default:
   * true.
   */
  readonly tickOnStart?: boolean | undefined;
}

const TICKER_KEYS: ReadonlySet<string> = new Set(['intervalMs', 'clock', 'signal', 'unref', 'tickOnStart']);
const UNREF: TimerOptions = Object.freeze({ unref: true });

/**
 * Calls `onTick` at a fixed cadence on a clock: at once when started (or one
 * interval after, with `tickOnStart: false`), then every `intervalMs`, from
 * one timer on the clock.
 *
 * The cadence does not drift: each tick is due `intervalMs` after the one
 * before was due, not after it ran, so a timer that fires late does not push
 * the ticks after it. After a stall longer than an interval (a paused process,
 * a blocked event loop), it ticks once and resumes its cadence from then,
 * without a burst of missed ticks.
 *
 * The timer for the next tick is armed once `onTick` returns (or throws), so
 * a timer `onTick` arms for the same instant (a deadline of one interval, say)
 * fires before the next tick. `onTick` may call `stop()`. An error `onTick`
 * throws propagates out of the timer's callback (or out of `start()` for the
 * first tick, when it ticks on start) and does not stop the ticker.
 * An async `onTick` is not awaited: ticks come on time whether or not the
 * last one's work has finished, so skip the work in `onTick` if it must not
 * overlap.
 */
export class Ticker {
  /** Milliseconds between ticks. */
  readonly intervalMs: number;
  /** The clock the ticks are timed on. */
  readonly clock: Clock;
  readonly #onTick: () => void;
  readonly #signal: AbortSignal | undefined;
  readonly #timerOptions: TimerOptions | undefined;
  readonly #tickOnStart: boolean;
  #timer: Timer | undefined;
  #nextAt = 0;
  #running = false;

  /**
   * A stopped ticker; `start()` starts it.
   * @throws TypeError when `onTick` is not a function, `clock` not a Clock,
   * `signal` not an AbortSignal, or `unref` or `tickOnStart` not a boolean; RangeError when
   * `intervalMs` is not a finite number > 0 or an option key is unknown.
   * Each names the value.
   */
  constructor(onTick: () => void, options: TickerOptions) {
    if (typeof onTick !== 'function')
      throw new TypeError(`Ticker: onTick must be a function, got ${describeValue(onTick)}`);
    if (typeof options !== 'object' || options === null)
      throw new TypeError(
        `Ticker: options must be an object { intervalMs, ... }, got ${describeValue(options)}`,
      );
    for (const key of Object.keys(options)) {
      if (!TICKER_KEYS.has(key)) throw new RangeError(`Ticker: unknown option ${describeValue(key)}`);
    }
    const { intervalMs, clock = systemClock, signal, unref, tickOnStart } = options;
    if (typeof intervalMs !== 'number' || !Number.isFinite(intervalMs) || !(intervalMs > 0))
      throw new RangeError(
        `Ticker: intervalMs must be a finite number of milliseconds > 0, got ${describeValue(intervalMs)}`,
      );
    checkClock(clock, 'Ticker', true);
    if (signal !== undefined && !(signal instanceof AbortSignal))
      throw new TypeError(`Ticker: signal must be an AbortSignal, got ${describeValue(signal)}`);
    if (unref !== undefined && typeof unref !== 'boolean')
      throw new TypeError(`Ticker: unref must be a boolean, got ${describeValue(unref)}`);
    if (tickOnStart !== undefined && typeof tickOnStart !== 'boolean')
      throw new TypeError(`Ticker: tickOnStart must be a boolean, got ${describeValue(tickOnStart)}`);
    this.#onTick = onTick;
    this.intervalMs = intervalMs;
    this.clock = clock;
    this.#signal = signal;
    this.#timerOptions = unref === false ? undefined : UNREF;
    this.#tickOnStart = tickOnStart !== false;
  }

  /** Whether the ticker is running. */
  get running(): boolean {
    return this.#running;
  }

  /**
   * Ticks now (or, with `tickOnStart: false`, one `intervalMs` from now) and
   * then every `intervalMs`. Does nothing while the ticker runs, or once its
   * signal has aborted. A ticker started again after `stop()` takes its
   * cadence from the new start.
   */
  start(): this {
    if (this.#running || this.#signal?.aborted) return this;
    this.#running = true;
    this.#signal?.addEventListener('abort', this.#onAbort);
    const now = this.clock.now();
    if (this.#tickOnStart) {
      this.#nextAt = now;
      this.#tick();
    } else {
      this.#nextAt = now + this.intervalMs;
      this.#timer = this.clock.setTimeout(this.#tick, this.intervalMs, this.#timerOptions);
    }
    return this;
  }

  /** Stops ticking and clears the timer. Calling it again does nothing. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#timer?.clear();
    this.#timer = undefined;
    this.#signal?.removeEventListener('abort', this.#onAbort);
  }

  /** Same as {@link Ticker.stop}. */
  [Symbol.dispose](): void {
    this.stop();
  }

  readonly #onAbort = (): void => this.stop();

  readonly #tick = (): void => {
    this.#timer = undefined;
    if (!this.#running) return;
    try {
      this.#onTick();
    } finally {
      // Not when onTick stopped the ticker, or stopped and started it again.
      if (this.#running && this.#timer === undefined) {
        const now = this.clock.now();
        this.#nextAt += this.intervalMs;
        if (this.#nextAt <= now) this.#nextAt = now + this.intervalMs;
        this.#timer = this.clock.setTimeout(this.#tick, this.#nextAt - now, this.#timerOptions);
      }
    }
  };
}
