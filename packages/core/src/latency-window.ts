import { describeValue } from '@bulwark/clock/authoring';

/**
 * Recent latencies in a fixed ring, and a percentile of the fresh ones: the
 * window behind hedging's adaptive delay and the adaptive attempt timeout.
 *
 * Recording is O(1). The percentile is recomputed (copy the fresh samples,
 * select the rank, O(n)) only every `capacity / 8` records or every `ttlMs / 10` milliseconds,
 * whichever comes first, or when {@link LatencyWindow.refresh} asks for it, so
 * its cost per call is a small constant and the value lags the distribution by
 * at most that much. Times and latencies are milliseconds on one monotonic clock.
 */
export class LatencyWindow {
  readonly capacity: number;
  readonly ttlMs: number;
  readonly percentile: number;
  readonly minSamples: number;
  readonly #values: Float64Array;
  readonly #times: Float64Array;
  readonly #scratch: Float64Array;
  readonly #refreshEvery: number;
  readonly #refreshMs: number;
  #next = 0;
  #count = 0;
  #sinceRefresh = 0;
  #computedAt = Number.NEGATIVE_INFINITY;
  #current: number | undefined;
  #fresh = 0;

  /**
   * @param capacity samples kept, an integer >= 1 (the oldest is overwritten)
   * @param ttlMs a sample older than this many milliseconds is not fresh
   * @param percentile the percentile {@link value} returns, in (0, 1)
   * @param minSamples fresh samples needed before {@link value} returns one
   */
  constructor(capacity: number, ttlMs: number, percentile: number, minSamples: number) {
    this.capacity = capacity;
    this.ttlMs = ttlMs;
    this.percentile = percentile;
    this.minSamples = minSamples;
    this.#values = new Float64Array(capacity);
    this.#times = new Float64Array(capacity);
    this.#scratch = new Float64Array(capacity);
    this.#refreshEvery = Math.max(1, Math.floor(capacity / 8));
    this.#refreshMs = ttlMs / 10;
  }

  /** Adds one latency sample (milliseconds) taken at `now`. */
  record(ms: number, now: number): void {
    const at = this.#next;
    this.#values[at] = ms;
    this.#times[at] = now;
    this.#next = at + 1 === this.capacity ? 0 : at + 1;
    if (this.#count < this.capacity) this.#count++;
    if (++this.#sinceRefresh >= this.#refreshEvery) this.#compute(now);
  }

  /**
   * The percentile of the samples no older than `ttlMs`, or undefined while
   * fewer than `minSamples` are fresh.
   */
  value(now: number): number | undefined {
    if (now - this.#computedAt >= this.#refreshMs) this.#compute(now);
    return this.#current;
  }

  /**
   * Recomputes the percentile now, rather than at the next scheduled
   * refresh: for a sample that must count at once (a timed-out attempt).
   */
  refresh(now: number): void {
    this.#compute(now);
  }

  /** Forgets every sample: {@link value} is undefined until `minSamples` fresh ones are recorded again. */
  clear(now: number): void {
    this.#next = 0;
    this.#count = 0;
    this.#sinceRefresh = 0;
    this.#computedAt = now;
    this.#current = undefined;
    this.#fresh = 0;
  }

  /** How many samples the last computation used. */
  get freshSamples(): number {
    return this.#fresh;
  }

  #compute(now: number): void {
    this.#sinceRefresh = 0;
    this.#computedAt = now;
    const oldest = now - this.ttlMs;
    const scratch = this.#scratch;
    let n = 0;
    for (let i = 0; i < this.#count; i++) {
      if (this.#times[i]! >= oldest) scratch[n++] = this.#values[i]!;
    }
    this.#fresh = n;
    if (n < this.minSamples || n === 0) {
      this.#current = undefined;
      return;
    }
    // Nearest rank: the smallest sample with at least `percentile` of them at
    // or below it, found by selection in O(n) rather than a sort.
    this.#current = select(scratch, n, Math.max(0, Math.ceil(this.percentile * n) - 1));
  }
}

/** The k-th smallest (0-based) of a[0..n), reordering a (Hoare's quickselect, middle pivot). */
function select(a: Float64Array, n: number, k: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}

/**
 * Checks a latency sample given to a public `recordLatency(ms, now?)` before
 * it reaches a window: `ms` a number >= 0 (Infinity is a sample of unknown
 * latency), `now`, when given, a finite number. A NaN or a negative sample
 * would otherwise become the window's percentile.
 *
 * @param where the method, for the message (`"adaptiveTimeout().recordLatency"`)
 * @throws RangeError naming the value
 */
export function checkLatencySample(where: string, ms: unknown, now: unknown): void {
  if (typeof ms !== 'number' || !(ms >= 0))
    throw new RangeError(`${where}: ms must be a number of milliseconds >= 0, got ${describeValue(ms)}`);
  if (now !== undefined && (typeof now !== 'number' || !Number.isFinite(now)))
    throw new RangeError(
      `${where}: now must be a finite clock reading in milliseconds, got ${describeValue(now)}`,
    );
}
