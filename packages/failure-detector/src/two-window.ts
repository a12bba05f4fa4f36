import { type Clock, systemClock } from '@bulwark/clock';
import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import { type Detector, silenceSuspicion } from './detector.ts';
import { RingBuffer } from './ring-buffer.ts';

const TWO_WINDOW_KEYS = optionKeys<TwoWindowDetectorOptions>({
  safetyMarginMs: true,
  longWindowSize: true,
  shortWindowSize: true,
  intervalMs: true,
  coalesceBursts: true,
  clock: true,
});

/** Options for {@link twoWindowDetector}. */
export interface TwoWindowDetectorOptions {
  /**
   * The safety margin α, in milliseconds, added to the later of the two
   * expected arrivals: a finite number >= 0. Required.
   */
  readonly safetyMarginMs: number;
  /** How many recent arrivals the long window holds (n₁): an integer >= 1. Default: 1000. */
  readonly longWindowSize?: number | undefined;
  /**
   * How many recent arrivals the short window holds (n₂): an integer >= 1 and
   * at most `longWindowSize`. Default: 1 (the last arrival alone).
   */
  readonly shortWindowSize?: number | undefined;
  /**
   * The interval η, in milliseconds, at which the peer sends heartbeats: a
   * finite number > 0. Default: 1000.
   */
  readonly intervalMs?: number | undefined;
  /**
   * Count a burst of heartbeats delivered together as one observation of the
   * channel: a heartbeat that arrives less than a hundredth of an interval
   * after the previous one was queued behind it (a FIFO channel delivering a
   * backlog), and its lateness replaces the previous one's in both windows
   * instead of adding to them, so only the freshest heartbeat of a burst is
   * kept. Default: true. `false` gives the 2015 algorithm unchanged.
   */
  readonly coalesceBursts?: boolean | undefined;
  /** The clock heartbeats are timed on. Default: the system clock. */
  readonly clock?: Clock | undefined;
}

/** The defaults of {@link twoWindowDetector}. */
export const TWO_WINDOW_DEFAULTS = Object.freeze({
  longWindowSize: 1000,
  shortWindowSize: 1,
  intervalMs: 1000,
  coalesceBursts: true,
  /** A heartbeat arriving less than this fraction of the interval after the previous one is part of a burst. */
  burstFraction: 0.01,
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
export class TwoWindowDetector implements Detector {
  readonly clock: Clock;
  readonly threshold = 1;
  readonly longWindowSize: number;
  readonly shortWindowSize: number;
  readonly safetyMarginMs: number;
  readonly intervalMs: number;
  readonly coalesceBursts: boolean;
  /** Aᵢ − η·sᵢ for the arrivals in each window. */
  readonly #long: RingBuffer;
  readonly #short: RingBuffer;
  #sequence = 0;
  #last: number | undefined;
  #stale = 0;
  #coalesced = 0;

  constructor(options: TwoWindowDetectorOptions) {
    const check = new OptionsChecker('twoWindowDetector()');
    check.knownKeys(options, TWO_WINDOW_KEYS);
    check.number('safetyMarginMs', options?.safetyMarginMs, { min: 0, required: true });
    const longOk = check.number('longWindowSize', options?.longWindowSize, { integer: true, min: 1 });
    const shortOk = check.number('shortWindowSize', options?.shortWindowSize, { integer: true, min: 1 });
    check.number('intervalMs', options?.intervalMs, { above: 0 });
    check.expect(
      options?.coalesceBursts === undefined || typeof options.coalesceBursts === 'boolean',
      'coalesceBursts',
      options?.coalesceBursts,
      'a boolean',
    );
    check.clock('clock', options?.clock);
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
    this.clock = options.clock ?? systemClock;
    this.longWindowSize = longSize;
    this.shortWindowSize = shortSize;
    this.safetyMarginMs = options.safetyMarginMs;
    this.intervalMs = options.intervalMs ?? TWO_WINDOW_DEFAULTS.intervalMs;
    this.coalesceBursts = options.coalesceBursts ?? TWO_WINDOW_DEFAULTS.coalesceBursts;
    this.#long = new RingBuffer(longSize);
    this.#short = new RingBuffer(shortSize);
  }

  get lastHeartbeatAt(): number | undefined {
    return this.#last;
  }

  /** The sequence number of the last heartbeat, given or inferred (0 for the first when inferred). */
  get sequence(): number {
    return this.#sequence;
  }

  /** The arrivals the long window holds (at most `longWindowSize`). */
  get samples(): number {
    return this.#long.size;
  }

  /** How many heartbeats were ignored because their sequence number did not increase. */
  get staleHeartbeats(): number {
    return this.#stale;
  }

  /** How many heartbeats arrived in a burst and took the previous one's place in the windows. */
  get coalescedHeartbeats(): number {
    return this.#coalesced;
  }

  /**
   * Records a heartbeat arriving now, with its sequence number when the
   * transport carries one. A sequence number that does not increase is stale:
   * the heartbeat is ignored.
   */
  heartbeat(sequence?: number): void {
    const now = this.clock.now();
    const last = this.#last;
    // Queued behind the previous heartbeat: the burst is one observation, its freshest heartbeat.
    const burst =
      this.coalesceBursts &&
      last !== undefined &&
      now - last < this.intervalMs * TWO_WINDOW_DEFAULTS.burstFraction;
    let s: number;
    if (sequence !== undefined && Number.isFinite(sequence)) {
      if (last !== undefined && sequence <= this.#sequence) {
        this.#stale++;
        return;
      }
      s = sequence;
    } else if (last === undefined) {
      s = 0;
    } else {
      // An inferred number does not advance within a burst (see ChenDetector).
      s = burst ? this.#sequence : this.#sequence + Math.max(1, Math.round((now - last) / this.intervalMs));
    }
    this.#sequence = s;
    this.#last = now;
    const lateness = now - this.intervalMs * s;
    if (burst) {
      this.#long.replaceNewest(lateness);
      this.#short.replaceNewest(lateness);
      this.#coalesced++;
    } else {
      this.#long.push(lateness);
      this.#short.push(lateness);
    }
  }

  /** The next arrival the long window expects (Infinity before the first heartbeat). */
  longWindowArrival(): number {
    if (this.#last === undefined) return Number.POSITIVE_INFINITY;
    return this.#long.mean + (this.#sequence + 1) * this.intervalMs;
  }

  /** The next arrival the short window expects (Infinity before the first heartbeat). */
  shortWindowArrival(): number {
    if (this.#last === undefined) return Number.POSITIVE_INFINITY;
    return this.#short.mean + (this.#sequence + 1) * this.intervalMs;
  }

  /** The later of the two windows' expected arrivals (Infinity before the first heartbeat). */
  expectedArrival(): number {
    return Math.max(this.longWindowArrival(), this.shortWindowArrival());
  }

  suspectAt(): number {
    return this.expectedArrival() + this.safetyMarginMs;
  }

  suspicion(): number {
    return silenceSuspicion(this.clock.now(), this.#last, this.suspectAt());
  }

  isAvailable(): boolean {
    return this.#last === undefined || this.clock.now() < this.suspectAt();
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
