import type { Trip, TripState } from '@bulwark/circuit-breaker';
import type { Clock } from '@bulwark/clock';
import { BucketedWindow, OptionsChecker } from '@bulwark/core/authoring';

/** Options for {@link opossumRate}, named and defaulted as opossum names and defaults them. */
export interface OpossumRateOptions {
  /** Opens when `failures / calls × 100` is strictly above this, judged after a failure. Default: 50. */
  readonly errorThresholdPercentage?: number | undefined;
  /** Calls the window must hold before the rate is judged. Default: 0. */
  readonly volumeThreshold?: number | undefined;
  /** The window's length, in milliseconds. Default: 10,000. */
  readonly rollingCountTimeout?: number | undefined;
  /** The buckets the window is divided into. Default: 10. */
  readonly rollingCountBuckets?: number | undefined;
}

/** opossum's defaults for the options of {@link opossumRate}. */
export const OPOSSUM_RATE_DEFAULTS = Object.freeze({
  errorThresholdPercentage: 50,
  volumeThreshold: 0,
  rollingCountTimeout: 10_000,
  rollingCountBuckets: 10,
});

/** The window's counters. */
const CALLS = 0;
const FAILURES = 1;

class OpossumRateState implements TripState {
  readonly #percent: number;
  readonly #volume: number;
  /** Calls and failures per bucket, allocated at the first record. */
  readonly #window: BucketedWindow;
  /** Whether the last recorded call failed: opossum judges the rate only then. */
  #judge = false;

  constructor(clock: Clock, percent: number, volume: number, buckets: number, bucketMs: number) {
    this.#percent = percent;
    this.#volume = volume;
    this.#window = new BucketedWindow(clock, bucketMs, buckets, 2);
  }

  record(failure: boolean): void {
    this.#judge = failure;
    const w = this.#window;
    w.slide();
    w.add(CALLS);
    if (failure) w.add(FAILURES);
  }

  shouldOpen(): boolean {
    if (!this.#judge) return false;
    const w = this.#window;
    w.slide();
    const calls = w.sum(CALLS);
    if (calls < this.#volume || calls === 0) return false;
    // The very expression opossum evaluates, so the two agree to the last bit.
    return (w.sum(FAILURES) / calls) * 100 > this.#percent;
  }

  reset(): void {
    this.#judge = false;
    this.#window.reset();
  }
}

/**
 * A trip that judges the failure rate exactly as an opossum breaker does:
 * after each failure (never after a success), over a rolling window of
 * `rollingCountBuckets` buckets of `floor(rollingCountTimeout / rollingCountBuckets)`
 * milliseconds, once the window holds `volumeThreshold` calls, opening when
 * the failure percentage is strictly above `errorThresholdPercentage`.
 *
 * The window slides lazily on the breaker's monotonic clock, with no timer.
 * Its buckets are aligned to the clock's origin (opossum aligns them to the
 * breaker's construction). `breakerOptionsFromOpossum()` uses it; for new
 * code, `failureRate()` from `@bulwark/circuit-breaker` is the idiomatic trip.
 */
export class OpossumRateTrip implements Trip {
  readonly kind = 'failure-rate' as const;
  /** Untimed: it needs no call durations. It says "open" only right after a failure. */
  readonly timed = false;
  readonly errorThresholdPercentage: number;
  readonly volumeThreshold: number;
  readonly rollingCountTimeout: number;
  readonly rollingCountBuckets: number;
  /** The bucket length opossum rotates at: `max(1, floor(rollingCountTimeout / rollingCountBuckets))`. */
  readonly bucketMs: number;

  constructor(options?: OpossumRateOptions) {
    const percent = options?.errorThresholdPercentage ?? OPOSSUM_RATE_DEFAULTS.errorThresholdPercentage;
    const volume = options?.volumeThreshold ?? OPOSSUM_RATE_DEFAULTS.volumeThreshold;
    const windowMs = options?.rollingCountTimeout ?? OPOSSUM_RATE_DEFAULTS.rollingCountTimeout;
    const buckets = options?.rollingCountBuckets ?? OPOSSUM_RATE_DEFAULTS.rollingCountBuckets;
    const check = new OptionsChecker('opossumRate()');
    check.number('errorThresholdPercentage', percent, {});
    check.number('volumeThreshold', volume, { integer: true, min: 0 });
    check.number('rollingCountTimeout', windowMs, { above: 0 });
    check.number('rollingCountBuckets', buckets, { integer: true, min: 1, max: 10_000 });
    check.done();
    this.errorThresholdPercentage = percent;
    this.volumeThreshold = volume;
    this.rollingCountTimeout = windowMs;
    this.rollingCountBuckets = buckets;
    // opossum rotates its buckets with setInterval(floor(ms / buckets)); Node runs a 0 ms interval every 1 ms.
    this.bucketMs = Math.max(1, Math.floor(windowMs / buckets));
    Object.freeze(this);
  }

  create(clock: Clock): TripState {
    return new OpossumRateState(
      clock,
      this.errorThresholdPercentage,
      this.volumeThreshold,
      this.rollingCountBuckets,
      this.bucketMs,
    );
  }
}

/** A trip with opossum's failure-rate semantics; see {@link OpossumRateTrip}. */
export function opossumRate(options?: OpossumRateOptions): OpossumRateTrip {
  return new OpossumRateTrip(options);
}
