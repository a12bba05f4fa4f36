import { type Clock, systemClock } from '@bulwark/clock';
import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import type { Detector } from './detector.ts';

const FIXED_TIMEOUT_KEYS = optionKeys<FixedTimeoutOptions>({ timeoutMs: true, clock: true });

/** Options for {@link fixedTimeout}. */
export interface FixedTimeoutOptions {
  /** Silence, in milliseconds, after which the peer is suspected: a finite number > 0. Required. */
  readonly timeoutMs: number;
  /** The clock heartbeats are timed on. Default: the system clock. */
  readonly clock?: Clock | undefined;
}

/**
 * Suspects the peer once `timeoutMs` passed without a heartbeat. `suspicion()`
 * is the fraction of the timeout used (1 and above: suspected). A heartbeat
 * whose sequence number does not increase is stale and ignored.
 */
export class FixedTimeoutDetector implements Detector {
  readonly clock: Clock;
  readonly threshold = 1;
  readonly timeoutMs: number;
  #last: number | undefined;
  #sequence = Number.NEGATIVE_INFINITY;

  constructor(options: FixedTimeoutOptions) {
    const check = new OptionsChecker('fixedTimeout()');
    check.knownKeys(options, FIXED_TIMEOUT_KEYS);
    check.number('timeoutMs', options?.timeoutMs, { above: 0, required: true });
    check.clock('clock', options?.clock);
    check.done();
    this.clock = options.clock ?? systemClock;
    this.timeoutMs = options.timeoutMs;
  }

  get lastHeartbeatAt(): number | undefined {
    return this.#last;
  }

  heartbeat(sequence?: number): void {
    if (sequence !== undefined && Number.isFinite(sequence)) {
      if (this.#last !== undefined && sequence <= this.#sequence) return;
      this.#sequence = sequence;
    }
    this.#last = this.clock.now();
  }

  suspicion(): number {
    const last = this.#last;
    if (last === undefined) return 0;
    return Math.max(0, this.clock.now() - last) / this.timeoutMs;
  }

  isAvailable(): boolean {
    return this.suspicion() < 1;
  }

  suspectAt(): number {
    return this.#last === undefined ? Number.POSITIVE_INFINITY : this.#last + this.timeoutMs;
  }
}

/** A detector that suspects a peer after a fixed silence. See {@link FixedTimeoutDetector}. */
export function fixedTimeout(options: FixedTimeoutOptions): FixedTimeoutDetector {
  return new FixedTimeoutDetector(options);
}
