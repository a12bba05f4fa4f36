import type { Clock } from '@bulwark/clock';
import { describeValue } from '@bulwark/clock/authoring';

/**
 * A sliding time window of counters, in `buckets` fixed buckets of `bucketMs`
 * milliseconds on a monotonic clock. Each bucket holds `fields` counters (say
 * calls and failures); the window keeps their running sums.
 *
 * The window slides lazily, when its owner calls {@link slide}: it holds no
 * timer, and a slide clears at most `buckets` buckets however long the window
 * sat idle, so each record costs O(1) amortised. Buckets are aligned to the
 * clock's origin (bucket `i` covers `[i × bucketMs, (i + 1) × bucketMs)`), and
 * the sums cover the current bucket and the `buckets − 1` before it: between
 * `(buckets − 1) × bucketMs` and `buckets × bucketMs` of history.
 *
 * Memory is allocated at the first {@link add} unless `eager` is set, so an
 * idle owner (a breaker nobody calls) holds none.
 *
 * Use: `slide()` once, then `add()` and `sum()` as often as needed; they act
 * on the window as of the last slide.
 */
export class BucketedWindow {
  /** Buckets in the window. */
  readonly buckets: number;
  /** The length of one bucket, in milliseconds. */
  readonly bucketMs: number;
  /** Counters per bucket. */
  readonly fields: number;
  readonly #clock: Clock;
  readonly #eager: boolean;
  /** `fields` counters per bucket, bucket-major; allocated at the first add. */
  #counts: Float64Array | undefined;
  readonly #sums: Float64Array;
  /** The index of the newest bucket (on the clock's timeline) as of the last slide. */
  #head = Number.NEGATIVE_INFINITY;
  /** Where the newest bucket's counters start in #counts. */
  #at = 0;

  /**
   * @param clock the monotonic clock the window slides on.
   * @param bucketMs the length of one bucket in milliseconds (> 0).
   * @param buckets buckets in the window (an integer >= 1).
   * @param fields counters per bucket (an integer >= 1). Default: 1.
   * @param eager allocate the buckets now rather than at the first add. Default: false.
   * @throws TypeError when `clock` has no `now()`; RangeError for a bad number. Each names the value.
   */
  constructor(clock: Clock, bucketMs: number, buckets: number, fields = 1, eager = false) {
    if (typeof (clock as Partial<Clock> | null | undefined)?.now !== 'function')
      throw new TypeError(
        `BucketedWindow: clock must be a Clock (an object with now()), got ${describeValue(clock)}`,
      );
    if (!(bucketMs > 0) || !Number.isFinite(bucketMs))
      throw new RangeError(`BucketedWindow: bucketMs must be a finite number > 0, got ${bucketMs}`);
    if (!Number.isInteger(buckets) || buckets < 1)
      throw new RangeError(`BucketedWindow: buckets must be an integer >= 1, got ${buckets}`);
    if (!Number.isInteger(fields) || fields < 1)
      throw new RangeError(`BucketedWindow: fields must be an integer >= 1, got ${fields}`);
    this.#clock = clock;
    this.bucketMs = bucketMs;
    this.buckets = buckets;
    this.fields = fields;
    this.#sums = new Float64Array(fields);
    this.#eager = eager;
    if (eager) this.#counts = new Float64Array(buckets * fields);
  }

  /**
   * Moves the window to `now` (default: the clock's reading), dropping the
   * buckets that fell out of it. Reading an earlier time than the last slide
   * changes nothing: the window never moves back.
   */
  slide(now: number = this.#clock.now()): void {
    const bucket = Math.floor(now / this.bucketMs);
    if (bucket <= this.#head) return;
    const n = this.buckets;
    const f = this.fields;
    const counts = this.#counts;
    if (counts !== undefined) {
      const sums = this.#sums;
      const stale = Math.min(n, bucket - this.#head);
      for (let i = 1; i <= stale; i++) {
        const at = ((((bucket - stale + i) % n) + n) % n) * f;
        for (let j = 0; j < f; j++) {
          sums[j]! -= counts[at + j]!;
          counts[at + j] = 0;
        }
      }
      // Sums of whole numbers stay exact; never let rounding leave one below zero.
      for (let j = 0; j < f; j++) if (sums[j]! < 0) sums[j] = 0;
    }
    this.#head = bucket;
    this.#at = (((bucket % n) + n) % n) * f;
  }

  /** Adds `n` (>= 0, default 1) to counter `field` of the newest bucket (as of the last slide). */
  add(field: number, n = 1): void {
    let counts = this.#counts;
    if (counts === undefined) counts = this.#counts = new Float64Array(this.buckets * this.fields);
    counts[this.#at + field]! += n;
    this.#sums[field]! += n;
  }

  /** The sum of counter `field` over the window (as of the last slide). */
  sum(field: number): number {
    return this.#sums[field]!;
  }

  /** Forgets every count, and frees the buckets unless they were allocated eagerly. */
  reset(): void {
    this.#counts = this.#eager ? this.#counts?.fill(0) : undefined;
    this.#sums.fill(0);
    this.#head = Number.NEGATIVE_INFINITY;
    this.#at = 0;
  }
}
