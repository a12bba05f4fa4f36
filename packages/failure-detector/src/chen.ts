import { type Clock, systemClock } from '@bulwark/clock';
import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import { type Detector, silenceSuspicion } from './detector.ts';
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
export interface ChenDetectorOptions {
  /** How many recent arrivals the expected arrival is estimated from: an integer >= 2. Default: 1000. */
  readonly windowSize?: number | undefined;
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
   * Follow a shift of the sender's schedule at once instead of over
   * `windowSize` heartbeats: when two heartbeats in a row arrive past the
   * freshness point the window gives, about an interval apart, the window
   * restarts from them. Default: true.
   */
  readonly reanchor?: boolean | undefined;
  /**
   * Count a burst of heartbeats delivered together as one observation of the
   * channel: a heartbeat that arrives less than a hundredth of an interval
   * after the previous one was queued behind it (a FIFO channel delivering a
   * backlog), and its lateness replaces the previous one's in the window
   * instead of adding to it, so only the freshest heartbeat of a burst is
   * kept. Default: true. `false` (with `reanchor: false`) gives the 2002
   * algorithm unchanged.
   */
  readonly coalesceBursts?: boolean | undefined;
  /** The clock heartbeats are timed on. Default: the system clock. */
  readonly clock?: Clock | undefined;
}

/** The defaults of {@link chenDetector}. */
export const CHEN_DEFAULTS = Object.freeze({
  windowSize: 1000,
  intervalMs: 1000,
  reanchor: true,
  coalesceBursts: true,
  /** A heartbeat arriving less than this fraction of the interval after the previous one is part of a burst. */
  burstFraction: 0.01,
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
export class ChenDetector implements Detector {
  readonly clock: Clock;
  readonly threshold = 1;
  readonly windowSize: number;
  readonly safetyMarginMs: number;
  readonly intervalMs: number;
  readonly reanchor: boolean;
  readonly coalesceBursts: boolean;
  /** Aᵢ − η·sᵢ for the arrivals in the window. */
  readonly #lateness: RingBuffer;
  #sequence = 0;
  #last: number | undefined;
  /** The lateness of the last heartbeat when it was late (it arrived past the freshness point), else undefined. */
  #pending: number | undefined;
  /** The bar (window mean + α) the last heartbeat outside a burst was judged late against. */
  #bar = Number.POSITIVE_INFINITY;
  #reanchors = 0;
  #stale = 0;
  #coalesced = 0;

  constructor(options: ChenDetectorOptions) {
    const check = new OptionsChecker('chenDetector()');
    check.knownKeys(options, CHEN_KEYS);
    check.number('windowSize', options?.windowSize, { integer: true, min: 2 });
    check.number('safetyMarginMs', options?.safetyMarginMs, { min: 0, required: true });
    check.number('intervalMs', options?.intervalMs, { above: 0 });
    check.expect(
      options?.reanchor === undefined || typeof options.reanchor === 'boolean',
      'reanchor',
      options?.reanchor,
      'a boolean',
    );
    check.expect(
      options?.coalesceBursts === undefined || typeof options.coalesceBursts === 'boolean',
      'coalesceBursts',
      options?.coalesceBursts,
      'a boolean',
    );
    check.clock('clock', options?.clock);
    check.done();
    this.clock = options.clock ?? systemClock;
    this.windowSize = options.windowSize ?? CHEN_DEFAULTS.windowSize;
    this.safetyMarginMs = options.safetyMarginMs;
    this.intervalMs = options.intervalMs ?? CHEN_DEFAULTS.intervalMs;
    this.reanchor = options.reanchor ?? CHEN_DEFAULTS.reanchor;
    this.coalesceBursts = options.coalesceBursts ?? CHEN_DEFAULTS.coalesceBursts;
    this.#lateness = new RingBuffer(this.windowSize);
  }

  get lastHeartbeatAt(): number | undefined {
    return this.#last;
  }

  /** The arrivals the estimate is made from (at most `windowSize`). */
  get samples(): number {
    return this.#lateness.size;
  }

  /** The sequence number inferred for the last heartbeat (0 for the first). */
  get sequence(): number {
    return this.#sequence;
  }

  /** How many times the window restarted on a shift of the sender's schedule. */
  get reanchors(): number {
    return this.#reanchors;
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
      this.coalesceBursts && last !== undefined && now - last < this.intervalMs * CHEN_DEFAULTS.burstFraction;
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
    const lateness = now - this.intervalMs * s;
    const window = this.#lateness;
    this.#sequence = s;
    this.#last = now;
    if (burst) {
      window.replaceNewest(lateness);
      if (this.#pending !== undefined) this.#pending = lateness > this.#bar ? lateness : undefined;
      this.#coalesced++;
      return;
    }
    if (this.reanchor && last !== undefined) {
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
    if (this.#last === undefined) return Number.POSITIVE_INFINITY;
    const mean = this.#lateness.mean;
    const pending = this.#pending;
    const lateness = pending !== undefined && pending > mean ? pending : mean;
    return lateness + (this.#sequence + 1) * this.intervalMs;
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

/** Chen, Toueg and Aguilera's adaptive detector. See {@link ChenDetector}. */
export function chenDetector(options: ChenDetectorOptions): ChenDetector {
  return new ChenDetector(options);
}
