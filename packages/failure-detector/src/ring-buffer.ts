/**
 * A fixed-capacity ring of numbers with O(1) running mean and variance.
 *
 * Pushing into a full ring evicts the oldest sample. The storage is one
 * `Float64Array` allocated at construction, so memory never grows however many
 * samples pass through.
 *
 * The sums are kept relative to a shift (a recent mean), which keeps the
 * variance exact for large values with a small spread (monotonic timestamps,
 * say). Once every `capacity` pushes the sums are recomputed from the samples,
 * so rounding errors from adding and removing cannot accumulate: the cost stays
 * O(1) amortized.
 */
export class RingBuffer {
  readonly #values: Float64Array;
  #start = 0;
  #size = 0;
  #shift = 0;
  #sum = 0;
  #sumSquares = 0;
  #sinceRecompute = 0;

  /** @param capacity the most samples it holds: an integer >= 1. */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`RingBuffer: capacity must be an integer >= 1, got ${capacity}`);
    }
    this.#values = new Float64Array(capacity);
  }

  /** The most samples it holds. */
  get capacity(): number {
    return this.#values.length;
  }

  /** How many samples it holds now. */
  get size(): number {
    return this.#size;
  }

  /** Adds a sample, evicting the oldest when full. */
  push(value: number): void {
    const values = this.#values;
    const capacity = values.length;
    if (this.#size === 0) this.#shift = value;
    const d = value - this.#shift;
    if (this.#size === capacity) {
      const old = values[this.#start]! - this.#shift;
      this.#sum -= old;
      this.#sumSquares -= old * old;
      values[this.#start] = value;
      this.#start = this.#start + 1 === capacity ? 0 : this.#start + 1;
    } else {
      const end = this.#start + this.#size;
      values[end >= capacity ? end - capacity : end] = value;
      this.#size++;
    }
    this.#sum += d;
    this.#sumSquares += d * d;
    if (++this.#sinceRecompute >= capacity) this.#recompute();
  }

  /**
   * Replaces the newest sample (pushes it when empty): the sample count and
   * the order stay as they are.
   */
  replaceNewest(value: number): void {
    if (this.#size === 0) {
      this.push(value);
      return;
    }
    const values = this.#values;
    const i = this.#start + this.#size - 1;
    const j = i >= values.length ? i - values.length : i;
    const old = values[j]! - this.#shift;
    const d = value - this.#shift;
    values[j] = value;
    this.#sum += d - old;
    this.#sumSquares += d * d - old * old;
    if (++this.#sinceRecompute >= values.length) this.#recompute();
  }

  /** The mean of the samples (NaN when empty). */
  get mean(): number {
    return this.#size === 0 ? Number.NaN : this.#shift + this.#sum / this.#size;
  }

  /** The population variance of the samples (NaN when empty, never negative). */
  get variance(): number {
    const n = this.#size;
    if (n === 0) return Number.NaN;
    const m = this.#sum / n;
    return Math.max(0, this.#sumSquares / n - m * m);
  }

  /** The population standard deviation of the samples (NaN when empty). */
  get standardDeviation(): number {
    return Math.sqrt(this.variance);
  }

  /** The oldest sample (undefined when empty). */
  get oldest(): number | undefined {
    return this.#size === 0 ? undefined : this.#values[this.#start];
  }

  /** The newest sample (undefined when empty). */
  get newest(): number | undefined {
    if (this.#size === 0) return undefined;
    const i = this.#start + this.#size - 1;
    return this.#values[i >= this.#values.length ? i - this.#values.length : i];
  }

  /** The samples, oldest first (a copy). */
  toArray(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.#size; i++) {
      const j = this.#start + i;
      out.push(this.#values[j >= this.#values.length ? j - this.#values.length : j]!);
    }
    return out;
  }

  /** Removes every sample (the storage is kept). */
  clear(): void {
    this.#start = 0;
    this.#size = 0;
    this.#sum = 0;
    this.#sumSquares = 0;
    this.#shift = 0;
    this.#sinceRecompute = 0;
  }

  /** Re-centres the sums on the current mean and recomputes them exactly. */
  #recompute(): void {
    this.#sinceRecompute = 0;
    const n = this.#size;
    const values = this.#values;
    const capacity = values.length;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const j = this.#start + i;
      total += values[j >= capacity ? j - capacity : j]!;
    }
    const shift = total / n;
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < n; i++) {
      const j = this.#start + i;
      const d = values[j >= capacity ? j - capacity : j]! - shift;
      sum += d;
      squares += d * d;
    }
    this.#shift = shift;
    this.#sum = sum;
    this.#sumSquares = squares;
  }
}
