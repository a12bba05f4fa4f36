import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import {
  ARRIVAL_ESTIMATE_DEFAULTS,
  ArrivalEstimateDetector,
  type ArrivalEstimateOptions,
  checkArrivalOptions,
} from './arrival-estimate.ts';
import { RingBuffer } from './ring-buffer.ts';

const TWO_WINDOW_KEYS = optionKeys<TwoWindowDetectorOptions>({
  safetyMarginMs: true,
  longWindowSize: true,
  shortWindowSize: true,
  intervalMs: true,
  coalesceBursts: true,
  clock: true,
});

/**
 * Options for {@link twoWindowDetector}. `safetyMarginMs` is added to the later
 * of the two expected arrivals; with `coalesceBursts: false` the detector is
 * the 2015 algorithm unchanged.
 */
export interface TwoWindowDetectorOptions extends ArrivalEstimateOptions {
  /** How many recent arrivals the long window holds (n₁): an integer >= 1. Default: 1000. */
  readonly longWindowSize?: number | undefined;
  /**
   * How many recent arrivals the short window holds (n₂): an integer >= 1 and
   * at most `longWindowSize`. Default: 1 (the last arrival alone).
   */
  readonly shortWindowSize?: number | undefined;
}

/** The defaults of {@link twoWindowDetector}. */
export const TWO_WINDOW_DEFAULTS = Object.freeze({
  longWindowSize: 1000,
  shortWindowSize: 1,
  ...ARRIVAL_ESTIMATE_DEFAULTS,
});

/**
 * The two-windows failure detector of Tomsic, Sens, Garcia, Arantes and
 * Sopena (2015): Chen, Toueg and Aguilera's estimate of the next arrival, made
 * twice, over a long window of recent arrivals (n₁) and a short one (n₂), and
 * the peer is suspected once the *later* of the two expected arrivals plus the
 * safety margin α has passed.
 *
 * With heartbeats sent every η, heartbeat i arriving at Aᵢ with sequence
 * number sᵢ, each window estimates the next arrival as
 * mean(Aᵢ − η·sᵢ) + (s_last + 1)·η over its arrivals. The long window gives a
 * stable estimate on a steady network; the short one follows a sudden change
 * (a congested link, a sender that restarted its schedule after a stall) from
 * the next heartbeat on. Taking the later of the two means a change that makes
 * heartbeats later is followed at once, while one that makes them earlier is
 * followed as the long window moves.
 *
 * Sequence numbers are used when given (the UDP receiver passes them) and
 * inferred otherwise, as {@link ChenDetector} does; a heartbeat whose sequence
 * number does not increase is stale and ignored.
 *
 * **Bursts.** As in {@link ChenDetector}, with `coalesceBursts` (the default)
 * the heartbeats a FIFO channel delivers together after holding them up count
 * once, by the freshest: their lateness is the wait behind the first, which
 * would otherwise hold the long window's mean up for n₁ heartbeats.
 *
 * `suspicion()` is the fraction of the allowed silence used: (now − last
 * arrival) / (freshness point − last arrival); 1 and above is suspected.
 */
export class TwoWindowDetector extends ArrivalEstimateDetector {
  readonly longWindowSize: number;
  readonly shortWindowSize: number;
  /** Aᵢ − η·sᵢ for the arrivals in each window. */
  readonly #long: RingBuffer;
  readonly #short: RingBuffer;

  constructor(options: TwoWindowDetectorOptions) {
    const check = new OptionsChecker('twoWindowDetector()');
    check.knownKeys(options, TWO_WINDOW_KEYS);
    const longOk = check.number('longWindowSize', options?.longWindowSize, { integer: true, min: 1 });
    const shortOk = check.number('shortWindowSize', options?.shortWindowSize, { integer: true, min: 1 });
    checkArrivalOptions(check, options);
    const longSize = options?.longWindowSize ?? TWO_WINDOW_DEFAULTS.longWindowSize;
    const shortSize = options?.shortWindowSize ?? TWO_WINDOW_DEFAULTS.shortWindowSize;
    if (longOk && shortOk) {
      check.expect(
        shortSize <= longSize,
        'shortWindowSize',
        shortSize,
        `at most longWindowSize (${longSize})`,
      );
    }
    check.done();
    super(options);
    this.longWindowSize = longSize;
    this.shortWindowSize = shortSize;
    this.#long = new RingBuffer(longSize);
    this.#short = new RingBuffer(shortSize);
  }

  /** The arrivals the long window holds (at most `longWindowSize`). */
  get samples(): number {
    return this.#long.size;
  }

  protected record(lateness: number, burst: boolean): void {
    if (burst) {
      this.#long.replaceNewest(lateness);
      this.#short.replaceNewest(lateness);
    } else {
      this.#long.push(lateness);
      this.#short.push(lateness);
    }
  }

  /** The next arrival the long window expects (Infinity before the first heartbeat). */
  longWindowArrival(): number {
    return this.arrivalAfter(this.#long.mean);
  }

  /** The next arrival the short window expects (Infinity before the first heartbeat). */
  shortWindowArrival(): number {
    return this.arrivalAfter(this.#short.mean);
  }

  /** The later of the two windows' expected arrivals (Infinity before the first heartbeat). */
  expectedArrival(): number {
    return Math.max(this.longWindowArrival(), this.shortWindowArrival());
  }
}

/**
 * The two-windows failure detector (Tomsic, Sens, Garcia et al., 2015): Chen's
 * estimate over a long and a short window, suspecting after the later of the
 * two plus the safety margin. See {@link TwoWindowDetector}.
 */
export function twoWindowDetector(options: TwoWindowDetectorOptions): TwoWindowDetector {
  return new TwoWindowDetector(options);
}
