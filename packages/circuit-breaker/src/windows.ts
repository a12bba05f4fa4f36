import type { Clock } from '@bulwark/clock';
import { BucketedWindow } from '@bulwark/core/authoring';

/** Counts in a window: calls, failures and slow calls. */
export interface WindowCounts {
  readonly calls: number;
  readonly failures: number;
  readonly slow: number;
}

/** A sliding window of call outcomes. */
export interface OutcomeWindow extends WindowCounts {
  record(failure: boolean, slow: boolean): void;
  reset(): void;
}

const FAILURE = 1;
const SLOW = 2;

/** The last `size` calls. Memory is allocated at the first record, so an idle breaker holds none. */
export class CountWindow implements OutcomeWindow {
  readonly size: number;
  #ring: Uint8Array | undefined;
  #next = 0;
  calls = 0;
  failures = 0;
  slow = 0;

  constructor(size: number) {
    this.size = size;
  }

  record(failure: boolean, slow: boolean): void {
    if (this.#ring === undefined) this.#ring = new Uint8Array(this.size);
    const ring = this.#ring;
    const at = this.#next;
    if (this.calls === this.size) {
      const old = ring[at]!;
      if (old & FAILURE) this.failures--;
      if (old & SLOW) this.slow--;
    } else {
      this.calls++;
    }
    ring[at] = (failure ? FAILURE : 0) | (slow ? SLOW : 0);
    if (failure) this.failures++;
    if (slow) this.slow++;
    this.#next = at + 1 === this.size ? 0 : at + 1;
  }

  reset(): void {
    this.#ring = undefined;
    this.#next = 0;
    this.calls = 0;
    this.failures = 0;
    this.slow = 0;
  }
}

/** The counters of a time window's buckets. */
const CALLS = 0;
const FAILURES = 1;
const SLOW_CALLS = 2;

/**
 * The calls of the last `ms` milliseconds, in `buckets` fixed buckets on the
 * monotonic clock (a {@link BucketedWindow} of three counters: calls, failures,
 * slow calls). The window slides lazily when it is read or written: it holds
 * no timer. Counts cover between `ms − ms/buckets` and `ms` of history.
 */
export class TimeWindow implements OutcomeWindow {
  readonly ms: number;
  readonly buckets: number;
  readonly #window: BucketedWindow;

  constructor(ms: number, buckets: number, clock: Clock) {
    this.ms = ms;
    this.buckets = buckets;
    this.#window = new BucketedWindow(clock, ms / buckets, buckets, 3);
  }

  get calls(): number {
    this.#window.slide();
    return this.#window.sum(CALLS);
  }
  get failures(): number {
    this.#window.slide();
    return this.#window.sum(FAILURES);
  }
  get slow(): number {
    this.#window.slide();
    return this.#window.sum(SLOW_CALLS);
  }

  record(failure: boolean, slow: boolean): void {
    const w = this.#window;
    w.slide();
    w.add(CALLS);
    if (failure) w.add(FAILURES);
    if (slow) w.add(SLOW_CALLS);
  }

  reset(): void {
    this.#window.reset();
  }
}
