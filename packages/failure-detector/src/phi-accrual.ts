import { type Clock, systemClock } from '@bulwark/clock';
import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import type { Detector } from './detector.ts';
import { RingBuffer } from './ring-buffer.ts';

const PHI_ACCRUAL_KEYS = optionKeys<PhiAccrualOptions>({
  threshold: true,
  maxSamples: true,
  minStdDeviationMs: true,
  acceptablePauseMs: true,
  firstHeartbeatEstimateMs: true,
  clock: true,
  coalesceBursts: true,
});

/** Options for {@link phiAccrual}. */
export interface PhiAccrualOptions {
  /** The phi at which the peer is suspected: a finite number > 0. Default: 8. */
  readonly threshold?: number | undefined;
  /**
   * How many recent heartbeat intervals the distribution is fitted to: an
   * integer >= 2. Default: 1000. A short window (100) follows a network whose
   * conditions change (congestion that comes and goes) within a few minutes;
   * use it with a lower threshold (4), see docs/failure-detector.md.
   */
  readonly maxSamples?: number | undefined;
  /**
   * The least standard deviation, in milliseconds, the fitted distribution may
   * have, so that very regular heartbeats do not make phi leap at the smallest
   * delay: a finite number > 0. Default: none, and the floor is then a tenth of
   * the mean interval of the history (`minStdDeviationFraction`), at least
   * 1 ms: 100 ms for 1 s heartbeats, 10 ms for 100 ms heartbeats.
   */
  readonly minStdDeviationMs?: number | undefined;
  /**
   * A pause, in milliseconds, that is tolerated on top of the mean interval
   * (added to the mean): a finite number >= 0. Default: 0.
   */
  readonly acceptablePauseMs?: number | undefined;
  /**
   * The interval, in milliseconds, the history starts from before any interval
   * was measured: a finite number > 0. Default: 1000.
   */
  readonly firstHeartbeatEstimateMs?: number | undefined;
  /**
   * Count a burst of heartbeats delivered together as one arrival: a heartbeat
   * that arrives less than a hundredth of the history's mean interval after
   * the previous one was queued behind it (a FIFO channel delivering a
   * backlog), and its near-zero interval is not recorded. Default: true.
   * `false` records every interval, as Akka's detector does.
   */
  readonly coalesceBursts?: boolean | undefined;
  /** The clock heartbeats are timed on. Default: the system clock. */
  readonly clock?: Clock | undefined;
}

/** The defaults of {@link phiAccrual}. */
export const PHI_ACCRUAL_DEFAULTS = Object.freeze({
  threshold: 8,
  maxSamples: 1000,
  /** Without `minStdDeviationMs`, the floor of the standard deviation is this fraction of the mean interval. */
  minStdDeviationFraction: 0.1,
  acceptablePauseMs: 0,
  firstHeartbeatEstimateMs: 1000,
  coalesceBursts: true,
  /** An interval shorter than this fraction of the mean interval is part of a burst. */
  burstFraction: 0.01,
});

/** The least floor of the standard deviation when it scales with the mean interval (milliseconds). */
const MIN_SCALED_FLOOR_MS = 1;

// The logistic approximation of the standard normal CDF:
// F(y) ≈ 1 / (1 + exp(-y (A + B y²))), with an absolute error near 1.4e-4.
const A = 1.5976;
const B = 0.070566;
const LN10 = Math.LN10;

/**
 * phi for a silence `elapsedMs` under a normal distribution of intervals with
 * `meanMs` and `stdMs`: −log10(1 − F((elapsed − mean) / std)), with F the
 * logistic approximation above.
 *
 * With z = y (A + B y²) the tail is 1 − F = 1 / (1 + e^z), so
 * phi = log10(1 + e^z). It is evaluated without overflow or underflow for any
 * y, so phi keeps growing (instead of becoming Infinity) during long silences.
 */
export function phiOf(elapsedMs: number, meanMs: number, stdMs: number): number {
  const y = (elapsedMs - meanMs) / stdMs;
  const z = y * (A + B * y * y);
  const softplus = z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
  return softplus / LN10;
}

/**
 * The y (in standard deviations above the mean) at which phi equals
 * `threshold`: the real root of B y³ + A y − z = 0 with z = ln(10^threshold − 1).
 */
function deviationsAt(threshold: number): number {
  // ln(10^θ − 1), written to stay exact for large θ.
  const z = threshold * LN10 + Math.log1p(-(10 ** -threshold));
  // Depressed cubic y³ + p y + q = 0 with p > 0: one real root (Cardano).
  const p = A / B;
  const q = -z / B;
  const d = Math.sqrt((q * q) / 4 + (p * p * p) / 27);
  return Math.cbrt(-q / 2 + d) + Math.cbrt(-q / 2 - d);
}

/**
 * The phi accrual failure detector (Hayashibara, Défago, Yared and Katayama,
 * 2004), with the normal distribution and logistic approximation Akka uses.
 *
 * Intervals between heartbeats go into a ring of `maxSamples`; phi is
 * −log10 of the probability that a heartbeat would still arrive after the
 * current silence, under a normal distribution with the ring's mean (plus
 * `acceptablePauseMs`) and standard deviation (at least `minStdDeviationMs`,
 * or a tenth of the mean interval without it).
 * phi = 1 would mean a 10% chance that suspecting now is a mistake, phi = 8 a
 * 10⁻⁸ chance, *if* intervals were normally distributed. They are not (delays
 * are skewed and heavy-tailed), so phi is a suspicion level, not a calibrated
 * probability: on a heavy-tailed trace phi 8 suspects on about 6·10⁻³ of the
 * heartbeats, not 10⁻⁸ (see docs/failure-detector.md).
 *
 * A heartbeat whose sequence number does not increase is stale and ignored.
 *
 * Bootstrap (as Akka does): the history starts with two intervals,
 * `firstHeartbeatEstimateMs` ± a quarter of it, so the first real intervals are
 * judged against a sensible distribution (mean = the estimate, standard
 * deviation = a quarter of it). An interval that ends a suspicion (the peer was
 * suspected when its heartbeat arrived) is not recorded, so an outage does not
 * teach the detector to tolerate outages, unless the heartbeat before it ended
 * one too: when heartbeats keep arriving while the peer is suspected, the
 * history is wrong rather than the peer, and it must learn again.
 *
 * **Bursts.** On a FIFO channel (TCP, HTTP) one long delay holds up every
 * heartbeat sent behind it, and they arrive together: 150 heartbeats at one
 * instant after a 150 s stall. Their intervals (zero) are no observation of
 * how often heartbeats arrive, and 150 of them in a history of 1000 would
 * lower the mean by 15% and raise the standard deviation from ~100 ms to
 * ~350 ms for the next 1000 heartbeats (a short history would be filled with
 * them). With `coalesceBursts` (the default) a heartbeat that arrives less
 * than a hundredth of the mean interval after the previous one records no
 * interval: the burst is one arrival, and the next interval is measured from
 * it.
 */
export class PhiAccrualDetector implements Detector {
  readonly clock: Clock;
  readonly threshold: number;
  readonly maxSamples: number;
  /** The floor given in the options, or undefined when it scales with the mean interval. */
  readonly minStdDeviationMs: number | undefined;
  readonly acceptablePauseMs: number;
  readonly firstHeartbeatEstimateMs: number;
  readonly coalesceBursts: boolean;
  readonly #intervals: RingBuffer;
  readonly #deviationsAtThreshold: number;
  #last: number | undefined;
  #sequence = Number.NEGATIVE_INFINITY;
  /** Whether the last heartbeat arrived while the peer was suspected. */
  #lastEndedSuspicion = false;
  #coalesced = 0;

  constructor(options?: PhiAccrualOptions) {
    const check = new OptionsChecker('phiAccrual()');
    check.knownKeys(options, PHI_ACCRUAL_KEYS);
    check.number('threshold', options?.threshold, { above: 0 });
    check.number('maxSamples', options?.maxSamples, { integer: true, min: 2 });
    check.number('minStdDeviationMs', options?.minStdDeviationMs, { above: 0 });
    check.number('acceptablePauseMs', options?.acceptablePauseMs, { min: 0 });
    check.number('firstHeartbeatEstimateMs', options?.firstHeartbeatEstimateMs, { above: 0 });
    check.boolean('coalesceBursts', options?.coalesceBursts);
    check.clock('clock', options?.clock);
    check.done();
    this.clock = options?.clock ?? systemClock;
    this.threshold = options?.threshold ?? PHI_ACCRUAL_DEFAULTS.threshold;
    this.maxSamples = options?.maxSamples ?? PHI_ACCRUAL_DEFAULTS.maxSamples;
    this.minStdDeviationMs = options?.minStdDeviationMs;
    this.acceptablePauseMs = options?.acceptablePauseMs ?? PHI_ACCRUAL_DEFAULTS.acceptablePauseMs;
    this.firstHeartbeatEstimateMs =
      options?.firstHeartbeatEstimateMs ?? PHI_ACCRUAL_DEFAULTS.firstHeartbeatEstimateMs;
    this.coalesceBursts = options?.coalesceBursts ?? PHI_ACCRUAL_DEFAULTS.coalesceBursts;
    this.#deviationsAtThreshold = deviationsAt(this.threshold);
    this.#intervals = new RingBuffer(this.maxSamples);
    const estimate = this.firstHeartbeatEstimateMs;
    this.#intervals.push(estimate - estimate / 4);
    this.#intervals.push(estimate + estimate / 4);
  }

  get lastHeartbeatAt(): number | undefined {
    return this.#last;
  }

  /** How many intervals the history holds (at most `maxSamples`, bootstrap included). */
  get samples(): number {
    return this.#intervals.size;
  }

  /** The capacity of the history ring: fixed, whatever the number of heartbeats. */
  get capacity(): number {
    return this.#intervals.capacity;
  }

  /** The mean interval of the history, in milliseconds (without `acceptablePauseMs`). */
  get meanIntervalMs(): number {
    return this.#intervals.mean;
  }

  /** The standard deviation of the history, in milliseconds (before `minStdDeviationMs` applies). */
  get stdDeviationMs(): number {
    return this.#intervals.standardDeviation;
  }

  /** The floor the standard deviation has now, in milliseconds: `minStdDeviationMs`, or a tenth of the mean interval (at least 1 ms). */
  get stdDeviationFloorMs(): number {
    return (
      this.minStdDeviationMs ??
      Math.max(PHI_ACCRUAL_DEFAULTS.minStdDeviationFraction * this.#intervals.mean, MIN_SCALED_FLOOR_MS)
    );
  }

  /** How many heartbeats arrived in a burst and recorded no interval. */
  get coalescedHeartbeats(): number {
    return this.#coalesced;
  }

  /** Records a heartbeat arriving now; one whose sequence number does not increase is ignored. */
  heartbeat(sequence?: number): void {
    if (sequence !== undefined && Number.isFinite(sequence)) {
      if (this.#last !== undefined && sequence <= this.#sequence) return;
      this.#sequence = sequence;
    }
    const now = this.clock.now();
    const last = this.#last;
    if (
      last !== undefined &&
      this.coalesceBursts &&
      now - last < PHI_ACCRUAL_DEFAULTS.burstFraction * this.#intervals.mean
    ) {
      // Queued behind the previous heartbeat: the burst is one arrival.
      this.#last = now;
      this.#coalesced++;
      return;
    }
    if (last !== undefined) {
      const endsSuspicion = !this.isAvailable();
      if (!endsSuspicion || this.#lastEndedSuspicion) this.#intervals.push(now - last);
      this.#lastEndedSuspicion = endsSuspicion;
    }
    this.#last = now;
  }

  /** The current phi: 0 before the first heartbeat. */
  phi(): number {
    const last = this.#last;
    if (last === undefined) return 0;
    return phiOf(this.clock.now() - last, this.#meanMs(), this.#stdMs());
  }

  suspicion(): number {
    return this.phi();
  }

  isAvailable(): boolean {
    return this.phi() < this.threshold;
  }

  suspectAt(): number {
    const last = this.#last;
    if (last === undefined) return Number.POSITIVE_INFINITY;
    return last + this.#meanMs() + this.#deviationsAtThreshold * this.#stdMs();
  }

  #meanMs(): number {
    return this.#intervals.mean + this.acceptablePauseMs;
  }

  #stdMs(): number {
    return Math.max(this.#intervals.standardDeviation, this.stdDeviationFloorMs);
  }
}

/** The phi accrual failure detector. See {@link PhiAccrualDetector}. */
export function phiAccrual(options?: PhiAccrualOptions): PhiAccrualDetector {
  return new PhiAccrualDetector(options);
}
