import { type Clock, systemClock } from '@bulwark/clock';
import { OptionsChecker } from '@bulwark/core';
import type { Detector } from './detector.ts';
import { RingBuffer } from './ring-buffer.ts';

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
  /** The clock heartbeats are timed on. Default: the system clock. */
  readonly clock?: Clock | undefined;
}

/** The defaults of {@link chenDetector}. */
export const CHEN_DEFAULTS = Object.freeze({
  windowSize: 1000,
  intervalMs: 1000,
  reanchor: true,
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
 * That inference cannot tell a loss from a delay, so a channel that stalls and
 * then delivers a burst skews the estimate until the window has moved past it.
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
  /** Aᵢ − η·sᵢ for the arrivals in the window. */
  readonly #lateness: RingBuffer;
  #sequence = 0;
  #last: number | undefined;
  /** The lateness of the last heartbeat when it was late (it arrived past the freshness point), else undefined. */
  #pending: number | undefined;
  #reanchors = 0;
  #stale = 0;

  constructor(options: ChenDetectorOptions) {
    const check = new OptionsChecker('chenDetector()');
    check.number('windowSize', options?.windowSize, { integer: true, min: 2 });
    check.number('safetyMarginMs', options?.safetyMarginMs, { min: 0, required: true });
    check.number('intervalMs', options?.intervalMs, { above: 0 });
    check.expect(
      options?.reanchor === undefined || typeof options.reanchor === 'boolean',
      'reanchor',
      options?.reanchor,
      'a boolean',
    );
    check.clock('clock', options?.clock);
    check.done();
    this.clock = options.clock ?? systemClock;
    this.windowSize = options.windowSize ?? CHEN_DEFAULTS.windowSize;
    this.safetyMarginMs = options.safetyMarginMs;
    this.intervalMs = options.intervalMs ?? CHEN_DEFAULTS.intervalMs;
    this.reanchor = options.reanchor ?? CHEN_DEFAULTS.reanchor;
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

  /**
   * Records a heartbeat arriving now, with its sequence number when the
   * transport carries one. A sequence number that does not increase is stale:
   * the heartbeat is ignored.
   */
  heartbeat(sequence?: number): void {
    const now = this.clock.now();
    const last = this.#last;
    let s: number;
    if (sequence !== undefined && Number.isFinite(sequence)) {
      if (last !== undefined && sequence <= this.#sequence) {
        this.#stale++;
        return;
      }
      s = sequence;
    } else {
      s = last === undefined ? 0 : this.#sequence + Math.max(1, Math.round((now - last) / this.intervalMs));
    }
    const lateness = now - this.intervalMs * s;
    const window = this.#lateness;
    if (this.reanchor && last !== undefined) {
      if (lateness > window.mean + this.safetyMarginMs) {
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
    this.#sequence = s;
    this.#last = now;
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
    const last = this.#last;
    if (last === undefined) return 0;
    const elapsed = Math.max(0, this.clock.now() - last);
    const allowed = this.suspectAt() - last;
    if (allowed <= 0) return Number.POSITIVE_INFINITY;
    return elapsed / allowed;
  }

  isAvailable(): boolean {
    return this.#last === undefined || this.clock.now() < this.suspectAt();
  }
}

/** Chen, Toueg and Aguilera's adaptive detector. See {@link ChenDetector}. */
export function chenDetector(options: ChenDetectorOptions): ChenDetector {
  return new ChenDetector(options);
}
