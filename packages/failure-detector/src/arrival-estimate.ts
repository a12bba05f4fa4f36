import { type Clock, systemClock } from '@bulwark/clock';
import type { OptionsChecker } from '@bulwark/core/authoring';
import { type Detector, silenceSuspicion } from './detector.ts';

/** The options of every detector that estimates the next arrival from sequence numbers (Chen, two-window). */
export interface ArrivalEstimateOptions {
  /**
   * The safety margin α, in milliseconds, added to the expected arrival of the
   * next heartbeat: a finite number >= 0. Required.
   */
  readonly safetyMarginMs: number;
  /**
   * The interval η, in milliseconds, at which the peer sends heartbeats (Chen
   * et al. take it as known): a finite number > 0. Default: 1000.
   */
  readonly intervalMs?: number | undefined;
  /**
   * Count a burst of heartbeats delivered together as one observation of the
   * channel: a heartbeat that arrives less than a hundredth of an interval
   * after the previous one was queued behind it (a FIFO channel delivering a
   * backlog), and its lateness replaces the previous one's in the estimate's
   * windows instead of adding to them, so only the freshest heartbeat of a
   * burst is kept. Default: true. `false` gives the published algorithm.
   */
  readonly coalesceBursts?: boolean | undefined;
  /** The clock heartbeats are timed on. Default: the system clock. */
  readonly clock?: Clock | undefined;
}

/** The defaults the Chen and two-window detectors share. */
export const ARRIVAL_ESTIMATE_DEFAULTS = Object.freeze({
  intervalMs: 1000,
  coalesceBursts: true,
  /** A heartbeat arriving less than this fraction of the interval after the previous one is part of a burst. */
  burstFraction: 0.01,
});

/** Records the violations of the shared options into `check`. */
export function checkArrivalOptions(
  check: OptionsChecker,
  options: ArrivalEstimateOptions | undefined,
): void {
  check.number('safetyMarginMs', options?.safetyMarginMs, { min: 0, required: true });
  check.number('intervalMs', options?.intervalMs, { above: 0 });
  check.boolean('coalesceBursts', options?.coalesceBursts);
  check.clock('clock', options?.clock);
}

/**
 * What the detectors built on Chen, Toueg and Aguilera's estimate share: the
 * numbering of arriving heartbeats (given sequence numbers, or numbers inferred
 * from the silence before each), stale heartbeats ignored, bursts told apart,
 * and a suspicion that is the share of the allowed silence used. A subclass
 * keeps the windows: `record()` takes each accepted heartbeat's lateness
 * Aᵢ − η·sᵢ, and `expectedArrival()` gives the next arrival they expect.
 */
export abstract class ArrivalEstimateDetector implements Detector {
  readonly clock: Clock;
  readonly threshold = 1;
  readonly safetyMarginMs: number;
  readonly intervalMs: number;
  readonly coalesceBursts: boolean;
  #sequence = 0;
  #last: number | undefined;
  #stale = 0;
  #coalesced = 0;

  /** `options` have been checked by {@link checkArrivalOptions}. */
  protected constructor(options: ArrivalEstimateOptions) {
    this.clock = options.clock ?? systemClock;
    this.safetyMarginMs = options.safetyMarginMs;
    this.intervalMs = options.intervalMs ?? ARRIVAL_ESTIMATE_DEFAULTS.intervalMs;
    this.coalesceBursts = options.coalesceBursts ?? ARRIVAL_ESTIMATE_DEFAULTS.coalesceBursts;
  }

  get lastHeartbeatAt(): number | undefined {
    return this.#last;
  }

  /** The sequence number of the last heartbeat, given or inferred (0 for the first when inferred). */
  get sequence(): number {
    return this.#sequence;
  }

  /** How many heartbeats were ignored because their sequence number did not increase. */
  get staleHeartbeats(): number {
    return this.#stale;
  }

  /** How many heartbeats arrived in a burst and took the previous one's place in the window. */
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
      now - last < this.intervalMs * ARRIVAL_ESTIMATE_DEFAULTS.burstFraction;
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
      // An inferred number does not advance within a burst: the silence before
      // it was counted as lost heartbeats, which the burst's members are.
      s = burst ? this.#sequence : this.#sequence + Math.max(1, Math.round((now - last) / this.intervalMs));
    }
    this.#sequence = s;
    this.#last = now;
    if (burst) this.#coalesced++;
    this.record(now - this.intervalMs * s, burst, last === undefined);
  }

  /**
   * Takes an accepted heartbeat's lateness Aᵢ − η·sᵢ into the windows: in
   * place of the newest one when `burst`; `first` for the first heartbeat.
   */
  protected abstract record(lateness: number, burst: boolean, first: boolean): void;

  /** The instant the next heartbeat is expected (Infinity before the first). */
  abstract expectedArrival(): number;

  /** The next arrival a window of mean lateness `meanLateness` expects (Infinity before the first heartbeat). */
  protected arrivalAfter(meanLateness: number): number {
    if (this.#last === undefined) return Number.POSITIVE_INFINITY;
    return meanLateness + (this.#sequence + 1) * this.intervalMs;
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
