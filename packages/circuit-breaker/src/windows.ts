import type { Clock } from '@bulwark/clock';

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

/**
 * The calls of the last `ms` milliseconds, in `buckets` fixed buckets on the
 * monotonic clock. The window slides lazily when it is read or written: it
 * holds no timer. Counts cover between `ms − ms/buckets` and `ms` of history.
 */
export class TimeWindow implements OutcomeWindow {
  readonly ms: number;
  readonly buckets: number;
  readonly #clock: Clock;
  readonly #bucketMs: number;
  #counts: Float64Array | undefined; // [calls, failures, slow] per bucket
  #head = Number.NEGATIVE_INFINITY;
  #calls = 0;
  #failures = 0;
  #slow = 0;

  constructor(ms: number, buckets: number, clock: Clock) {
    this.ms = ms;
    this.buckets = buckets;
    this.#clock = clock;
    this.#bucketMs = ms / buckets;
  }

  get calls(): number {
    this.#slide();
    return this.#calls;
  }
  get failures(): number {
    this.#slide();
    return this.#failures;
  }
  get slow(): number {
    this.#slide();
    return this.#slow;
  }

  record(failure: boolean, slow: boolean): void {
    this.#slide();
    if (this.#counts === undefined) this.#counts = new Float64Array(this.buckets * 3);
    const counts = this.#counts;
    const at = (((this.#head % this.buckets) + this.buckets) % this.buckets) * 3;
    counts[at]! += 1;
    this.#calls++;
    if (failure) {
      counts[at + 1]! += 1;
      this.#failures++;
    }
    if (slow) {
      counts[at + 2]! += 1;
      this.#slow++;
    }
  }

  reset(): void {
    this.#counts = undefined;
    this.#head = Number.NEGATIVE_INFINITY;
    this.#calls = 0;
    this.#failures = 0;
    this.#slow = 0;
  }

  #slide(): void {
    const bucket = Math.floor(this.#clock.now() / this.#bucketMs);
    if (bucket <= this.#head) return;
    const counts = this.#counts;
    if (counts !== undefined) {
      const stale = Math.min(this.buckets, bucket - this.#head);
      for (let i = 1; i <= stale; i++) {
        const at = ((((bucket - stale + i) % this.buckets) + this.buckets) % this.buckets) * 3;
        this.#calls -= counts[at]!;
        this.#failures -= counts[at + 1]!;
        this.#slow -= counts[at + 2]!;
        counts[at] = 0;
        counts[at + 1] = 0;
        counts[at + 2] = 0;
      }
    }
    this.#head = bucket;
  }
}
