import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import {
  ARRIVAL_ESTIMATE_DEFAULTS,
  ArrivalEstimateDetector,
  type ArrivalEstimateOptions,
  checkArrivalOptions,
} from './arrival-estimate.ts';
import { RingBuffer } from './ring-buffer.ts';

const CHEN_KEYS = optionKeys<ChenDetectorOptions>({
  windowSize: true,
  safetyMarginMs: true,
  intervalMs: true,
  reanchor: true,
  clock: true,
  coalesceBursts: true,
});

/** Options for {@link chenDetector}. */
export interface ChenDetectorOptions extends ArrivalEstimateOptions {
  /** How many recent arrivals the expected arrival is estimated from: an integer >= 2. Default: 1000. */
  readonly windowSize?: number | undefined;
  /**
   * Follow a shift of the sender's schedule at once instead of over
   * `windowSize` heartbeats: when two heartbeats in a row arrive past the
   * freshness point the window gives, about an interval apart, the window
   * restarts from them. Default: true. With `coalesceBursts: false` too, the
   * detector is the 2002 algorithm unchanged.
   */
  readonly reanchor?: boolean | undefined;
}

/** The defaults of {@link chenDetector}. */
export const CHEN_DEFAULTS = Object.freeze({
  windowSize: 1000,
  reanchor: true,
  ...ARRIVAL_ESTIMATE_DEFAULTS,
});

/**
 * Chen, Toueg and Aguilera's adaptive detector (2002): it estimates when the
 * next heartbeat should arrive from the last `windowSize` arrivals and suspects
 * the peer once that expected arrival plus the safety margin α has passed.
 *
 * With heartbeats sent every η, heartbeat i arriving at Aᵢ with sequence number
 * sᵢ, the expected arrival of the next one is mean(Aᵢ − η·sᵢ) + (s_last + 1)·η:
 * the average lateness of recent heartbeats, applied to the next send.
 *
 * Pass the sequence numbers to `heartbeat(sequence)` when the transport has
 * them (the UDP receiver does). Without them they are inferred from the
 * arrivals: a silence of about m intervals counts as m − 1 lost heartbeats.
 * That inference cannot tell a loss from a delay; with `coalesceBursts` the
 * heartbeats of a burst that follows such a silence get no new number (they
 * are the ones counted as lost), so the phase survives it.
 *
 * A heartbeat whose sequence number does not increase (a duplicate, a
 * reordered or replayed packet) is stale and ignored: it changes nothing.
 *
 * **Schedule shifts.** The estimate assumes heartbeat s leaves at s·η on one
 * schedule. A sender that stalls and then resumes its cadence from the end of
 * the stall (as bulwark's UDP sender does, so as not to fire a burst of
 * catch-up heartbeats) shifts every later heartbeat by the stall, and a window
 * of the old schedule would then expect every heartbeat too early, for about
 * `windowSize` heartbeats. With `reanchor` (the default) the detector watches
 * for that: a heartbeat that arrives after the freshness point the window
 * gives is *late*; until the next heartbeat, the next one is expected no
 * earlier than an interval after the late one; and when the next one is late
 * too, and arrived at least half an interval after it (so it was not queued
 * behind it), the schedule has shifted, and the window restarts from those two
 * arrivals. A stall then costs one false suspicion, not thousands.
 *
 * **Bursts.** On a FIFO channel (TCP, HTTP) one long delay holds up every
 * heartbeat sent behind it, and they all arrive at once: after a 150 s stall,
 * 150 heartbeats with lateness 150 s, 149 s, …, 1 s. Their lateness is the
 * wait behind the first, not 150 observations of the channel, and in a window
 * of 1000 it would hold the mean (and the detection time) up by about 11 s for
 * the next 1000 heartbeats. The estimate assumes independent delays (Chen et
 * al.'s model), which a queue breaks. With `coalesceBursts` (the default) a
 * heartbeat that arrives less than η/100 after the previous one takes that
 * one's place in the window: a burst counts once, by its freshest heartbeat,
 * which tells when the channel delivers once the queue has drained. The late
 * test of re-anchoring is made again for it, against the same bar.
 *
 * `suspicion()` is the fraction of the allowed silence used: (now − last
 * arrival) / (freshness point − last arrival); 1 and above is suspected.
 */
export class ChenDetector extends ArrivalEstimateDetector {
  readonly windowSize: number;
  readonly reanchor: boolean;
  /** Aᵢ − η·sᵢ for the arrivals in the window. */
  readonly #lateness: RingBuffer;
  /** The lateness of the last heartbeat when it was late (it arrived past the freshness point), else undefined. */
  #pending: number | undefined;
  /** The bar (window mean + α) the last heartbeat outside a burst was judged late against. */
  #bar = Number.POSITIVE_INFINITY;
  #reanchors = 0;

  constructor(options: ChenDetectorOptions) {
    const check = new OptionsChecker('chenDetector()');
    check.knownKeys(options, CHEN_KEYS);
    check.number('windowSize', options?.windowSize, { integer: true, min: 2 });
    check.boolean('reanchor', options?.reanchor);
    checkArrivalOptions(check, options);
    check.done();
    super(options);
    this.windowSize = options.windowSize ?? CHEN_DEFAULTS.windowSize;
    this.reanchor = options.reanchor ?? CHEN_DEFAULTS.reanchor;
    this.#lateness = new RingBuffer(this.windowSize);
  }

  /** The arrivals the estimate is made from (at most `windowSize`). */
  get samples(): number {
    return this.#lateness.size;
  }

  /** How many times the window restarted on a shift of the sender's schedule. */
  get reanchors(): number {
    return this.#reanchors;
  }

  protected record(lateness: number, burst: boolean, first: boolean): void {
    const window = this.#lateness;
    if (burst) {
      window.replaceNewest(lateness);
      if (this.#pending !== undefined) this.#pending = lateness > this.#bar ? lateness : undefined;
      return;
    }
    if (this.reanchor && !first) {
      this.#bar = window.mean + this.safetyMarginMs;
      if (lateness > this.#bar) {
        const pending = this.#pending;
        if (pending !== undefined && lateness >= pending - this.intervalMs / 2) {
          // Two late heartbeats an interval apart: the sender's schedule moved.
          window.clear();
          window.push(pending);
          this.#pending = undefined;
          this.#reanchors++;
        } else {
          this.#pending = lateness;
        }
      } else {
        this.#pending = undefined;
      }
    }
    window.push(lateness);
  }

  /** The instant the next heartbeat is expected (Infinity before the first). */
  expectedArrival(): number {
    const mean = this.#lateness.mean;
    const pending = this.#pending;
    return this.arrivalAfter(pending !== undefined && pending > mean ? pending : mean);
  }
}

/** Chen, Toueg and Aguilera's adaptive detector. See {@link ChenDetector}. */
export function chenDetector(options: ChenDetectorOptions): ChenDetector {
  return new ChenDetector(options);
}
