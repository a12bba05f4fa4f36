import type { Clock } from '@bulwark/clock';
import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import { CountWindow, type OutcomeWindow, TimeWindow } from './windows.ts';

const SLOW_CALL_RATE_KEYS = optionKeys<SlowCallRateOptions>({
  threshold: true,
  slowerThanMs: true,
  minimumCalls: true,
  window: true,
});

const FAILURE_RATE_KEYS = optionKeys<FailureRateOptions>({
  threshold: true,
  minimumCalls: true,
  window: true,
});

const COUNT_WINDOW_KEYS: ReadonlySet<string> = new Set(['kind', 'size']);
const TIME_WINDOW_KEYS: ReadonlySet<string> = new Set(['kind', 'ms', 'buckets']);

/** The window a rate-based trip judges over. */
export type WindowSpec =
  | { readonly kind: 'count'; readonly size: number }
  | { readonly kind: 'time'; readonly ms: number; readonly buckets: number };

/** The live state of a trip inside one breaker. */
export interface TripState {
  /** Records one settled call admitted while closed. */
  record(failure: boolean, durationMs: number): void;
  /** True when this trip says the breaker should open. */
  shouldOpen(): boolean;
  /** Forgets everything (the breaker closed again). */
  reset(): void;
}

/**
 * A rule for when a closed breaker opens. A trip is an immutable description;
 * every breaker creates its own state from it, so one trip can be shared by a
 * whole registry.
 */
export interface Trip {
  readonly kind: 'consecutive' | 'failure-rate' | 'slow-call-rate';
  /** Whether the trip needs call durations (the breaker then reads the clock per call). */
  readonly timed: boolean;
  create(clock: Clock): TripState;
}

class ConsecutiveState implements TripState {
  readonly #n: number;
  #failures = 0;
  constructor(n: number) {
    this.#n = n;
  }
  record(failure: boolean): void {
    this.#failures = failure ? this.#failures + 1 : 0;
  }
  shouldOpen(): boolean {
    return this.#failures >= this.#n;
  }
  reset(): void {
    this.#failures = 0;
  }
}

/** Opens after `n` failures in a row. */
export class ConsecutiveTrip implements Trip {
  readonly kind = 'consecutive' as const;
  readonly timed = false;
  readonly n: number;
  constructor(n: number) {
    const check = new OptionsChecker('consecutive()');
    check.number('n', n, { integer: true, min: 1, required: true });
    check.done();
    this.n = n;
    Object.freeze(this);
  }
  create(): TripState {
    return new ConsecutiveState(this.n);
  }
}

function checkWindow(check: OptionsChecker, window: unknown): void {
  const w = window as Partial<{ kind: unknown; size: unknown; ms: unknown; buckets: unknown }> | undefined;
  if (w === undefined || typeof w !== 'object' || w === null) {
    check.expect(false, 'window', window, "{ kind: 'count', size } or { kind: 'time', ms, buckets }");
    return;
  }
  if (w.kind === 'count') {
    check.knownKeys(w, COUNT_WINDOW_KEYS, undefined, 'window');
    check.number('window.size', w.size, { integer: true, min: 1, max: 1_000_000, required: true });
  } else if (w.kind === 'time') {
    check.knownKeys(w, TIME_WINDOW_KEYS, undefined, 'window');
    check.number('window.ms', w.ms, { above: 0, required: true });
    check.number('window.buckets', w.buckets, { integer: true, min: 1, max: 10_000, required: true });
  } else {
    check.expect(false, 'window.kind', w.kind, "'count' or 'time'");
  }
}

/**
 * A count window can never hold more than `size` calls, so a larger
 * `minimumCalls` would keep the trip from ever firing.
 */
function checkMinimumCalls(check: OptionsChecker, minimumCalls: unknown, window: unknown): void {
  const w = window as { kind?: unknown; size?: unknown } | undefined;
  if (typeof minimumCalls !== 'number' || w?.kind !== 'count' || typeof w.size !== 'number') return;
  check.expect(
    minimumCalls <= w.size,
    'minimumCalls',
    minimumCalls,
    `at most window.size (${w.size}): a count window never holds more calls, so the trip could never open`,
  );
}

/** The `minimumCalls` to use: the given one, or the default capped at a count window's size. */
function minimumCallsFor(minimumCalls: number | undefined, window: WindowSpec): number {
  if (minimumCalls !== undefined) return minimumCalls;
  const fallback = RATE_TRIP_DEFAULTS.minimumCalls;
  return window.kind === 'count' ? Math.min(fallback, window.size) : fallback;
}

function makeWindow(spec: WindowSpec, clock: Clock): OutcomeWindow {
  return spec.kind === 'count' ? new CountWindow(spec.size) : new TimeWindow(spec.ms, spec.buckets, clock);
}

/** Options for {@link failureRate}. */
export interface FailureRateOptions {
  /** The failure share at or above which the breaker opens, in (0, 1]. */
  readonly threshold: number;
  /**
   * Calls the window must hold before the rate is judged. Default: 10, or the
   * size of a count window smaller than that. At most the size of a count window.
   */
  readonly minimumCalls?: number | undefined;
  /** The window. Default: the last 100 calls. */
  readonly window?: WindowSpec | undefined;
}

/** Options for {@link slowCallRate}. */
export interface SlowCallRateOptions {
  /** The share of slow calls at or above which the breaker opens, in (0, 1]. */
  readonly threshold: number;
  /** A call that takes this many milliseconds or more is slow. */
  readonly slowerThanMs: number;
  /**
   * Calls the window must hold before the rate is judged. Default: 10, or the
   * size of a count window smaller than that. At most the size of a count window.
   */
  readonly minimumCalls?: number | undefined;
  /** The window. Default: the last 100 calls. */
  readonly window?: WindowSpec | undefined;
}

/** The defaults of the rate-based trips. */
export const RATE_TRIP_DEFAULTS = Object.freeze({
  minimumCalls: 10,
  window: Object.freeze({ kind: 'count', size: 100 }) as WindowSpec,
});

class RateState implements TripState {
  readonly #window: OutcomeWindow;
  readonly #threshold: number;
  readonly #minimumCalls: number;
  readonly #slowerThanMs: number | undefined;
  constructor(
    window: OutcomeWindow,
    threshold: number,
    minimumCalls: number,
    slowerThanMs: number | undefined,
  ) {
    this.#window = window;
    this.#threshold = threshold;
    this.#minimumCalls = minimumCalls;
    this.#slowerThanMs = slowerThanMs;
  }
  record(failure: boolean, durationMs: number): void {
    this.#window.record(failure, this.#slowerThanMs !== undefined && durationMs >= this.#slowerThanMs);
  }
  shouldOpen(): boolean {
    const w = this.#window;
    const calls = w.calls;
    if (calls < this.#minimumCalls || calls === 0) return false;
    const bad = this.#slowerThanMs === undefined ? w.failures : w.slow;
    return bad / calls >= this.#threshold;
  }
  reset(): void {
    this.#window.reset();
  }
}

/** Opens when the share of failures in the window reaches `threshold`. */
export class FailureRateTrip implements Trip {
  readonly kind = 'failure-rate' as const;
  readonly timed: boolean;
  readonly threshold: number;
  readonly minimumCalls: number;
  readonly window: WindowSpec;
  constructor(options: FailureRateOptions) {
    const check = new OptionsChecker('failureRate()');
    check.knownKeys(options, FAILURE_RATE_KEYS);
    check.number('threshold', options?.threshold, { above: 0, max: 1, required: true });
    check.number('minimumCalls', options?.minimumCalls, { integer: true, min: 1 });
    if (options?.window !== undefined) checkWindow(check, options.window);
    checkMinimumCalls(check, options?.minimumCalls, options?.window);
    check.done();
    this.threshold = options.threshold;
    this.window = Object.freeze({ ...(options.window ?? RATE_TRIP_DEFAULTS.window) });
    this.minimumCalls = minimumCallsFor(options.minimumCalls, this.window);
    this.timed = this.window.kind === 'time';
    Object.freeze(this);
  }
  create(clock: Clock): TripState {
    return new RateState(makeWindow(this.window, clock), this.threshold, this.minimumCalls, undefined);
  }
}

/** Opens when the share of slow calls (failed or not) in the window reaches `threshold`. */
export class SlowCallRateTrip implements Trip {
  readonly kind = 'slow-call-rate' as const;
  readonly timed = true;
  readonly threshold: number;
  readonly slowerThanMs: number;
  readonly minimumCalls: number;
  readonly window: WindowSpec;
  constructor(options: SlowCallRateOptions) {
    const check = new OptionsChecker('slowCallRate()');
    check.knownKeys(options, SLOW_CALL_RATE_KEYS);
    check.number('threshold', options?.threshold, { above: 0, max: 1, required: true });
    check.number('slowerThanMs', options?.slowerThanMs, { min: 0, required: true });
    check.number('minimumCalls', options?.minimumCalls, { integer: true, min: 1 });
    if (options?.window !== undefined) checkWindow(check, options.window);
    checkMinimumCalls(check, options?.minimumCalls, options?.window);
    check.done();
    this.threshold = options.threshold;
    this.slowerThanMs = options.slowerThanMs;
    this.window = Object.freeze({ ...(options.window ?? RATE_TRIP_DEFAULTS.window) });
    this.minimumCalls = minimumCallsFor(options.minimumCalls, this.window);
    Object.freeze(this);
  }
  create(clock: Clock): TripState {
    return new RateState(
      makeWindow(this.window, clock),
      this.threshold,
      this.minimumCalls,
      this.slowerThanMs,
    );
  }
}

/** Opens after `n` consecutive failures. */
export function consecutive(n: number): ConsecutiveTrip {
  return new ConsecutiveTrip(n);
}

/** Opens when failures reach `threshold` of the calls in the window (at least `minimumCalls`). */
export function failureRate(options: FailureRateOptions): FailureRateTrip {
  return new FailureRateTrip(options);
}

/** Opens when calls taking `slowerThanMs` or more reach `threshold` of the window. */
export function slowCallRate(options: SlowCallRateOptions): SlowCallRateTrip {
  return new SlowCallRateTrip(options);
}
