import { type BulkheadOptions, BulkheadPolicy } from '@bulwark/bulkhead';
import type { Clock } from '@bulwark/clock';
import { InvalidOptionsError } from '@bulwark/core';
import { OptionsChecker } from '@bulwark/core/authoring';

/** Options for {@link OriginBulkheads}: every bulkhead's options, plus the bound. */
export interface OriginBulkheadOptions {
  /** Requests to one origin in flight at once: an integer >= 1. Default: 64. */
  readonly maxConcurrent?: number | undefined;
  /** Requests to one origin waiting for a slot, in FIFO order. Default: 256. */
  readonly maxQueue?: number | undefined;
  /**
   * The longest a request may wait for a slot, in milliseconds. Default: no
   * limit of its own (the call's deadline and signal still end the wait).
   */
  readonly queueTimeoutMs?: number | undefined;
  /** The most origins given a bulkhead at once. Default: 1,000. */
  readonly maxOrigins?: number | undefined;
}

/** The defaults of {@link OriginBulkheads}. */
export const ORIGIN_BULKHEAD_DEFAULTS = Object.freeze({
  maxConcurrent: 64,
  maxQueue: 256,
  queueTimeoutMs: Number.POSITIVE_INFINITY,
  maxOrigins: 1_000,
});

/**
 * One bulkhead per origin, created on first use and bounded by `maxOrigins`.
 * When full, it drops the least recently used bulkhead that is idle (nothing
 * running, nothing queued); while every one of them is busy it holds one more
 * rather than drop a busy one, and trims back on a later call. All of them share
 * one `name` in telemetry (origins are not metric attributes: their number is
 * unbounded).
 */
export class OriginBulkheads {
  readonly maxOrigins: number;
  readonly #options: BulkheadOptions;
  readonly #bulkheads = new Map<string, BulkheadPolicy>();
  /** The bulkhead get() returned last (and its origin): already the most recently used. */
  #lastOrigin: string | undefined;
  #last: BulkheadPolicy | undefined;

  constructor(options: OriginBulkheadOptions & { readonly name?: string; readonly clock?: Clock } = {}) {
    const check = new OptionsChecker('OriginBulkheads');
    check.number('maxOrigins', options.maxOrigins, { integer: true, min: 1 });
    this.maxOrigins = options.maxOrigins ?? ORIGIN_BULKHEAD_DEFAULTS.maxOrigins;
    this.#options = Object.freeze({
      maxConcurrent: options.maxConcurrent ?? ORIGIN_BULKHEAD_DEFAULTS.maxConcurrent,
      maxQueue: options.maxQueue ?? ORIGIN_BULKHEAD_DEFAULTS.maxQueue,
      queueTimeoutMs: options.queueTimeoutMs ?? ORIGIN_BULKHEAD_DEFAULTS.queueTimeoutMs,
      name: options.name,
      clock: options.clock,
    });
    // Validates the bulkhead options once, up front, rather than at the first get(),
    // and reports them together with maxOrigins.
    try {
      new BulkheadPolicy(this.#options);
    } catch (error) {
      if (!(error instanceof InvalidOptionsError)) throw error;
      for (const v of error.violations) check.expect(false, v.option, v.value, v.expected);
    }
    check.done();
  }

  /** The bulkhead for `origin`, created on first use. */
  get(origin: string): BulkheadPolicy {
    // The same origin as last time is already last in the map: nothing to move.
    // Only get() adds or moves entries, and #trim() never drops the one it keeps.
    if (origin === this.#lastOrigin) return this.#last!;
    const bulkheads = this.#bulkheads;
    let bulkhead = bulkheads.get(origin);
    if (bulkhead !== undefined) {
      // Most recently used last: the first idle entry is the eviction candidate.
      bulkheads.delete(origin);
      bulkheads.set(origin, bulkhead);
    } else {
      bulkhead = new BulkheadPolicy(this.#options);
      bulkheads.set(origin, bulkhead);
      if (bulkheads.size > this.maxOrigins) this.#trim(origin);
    }
    this.#lastOrigin = origin;
    this.#last = bulkhead;
    return bulkhead;
  }

  /** The bulkhead for `origin` if there is one; does not create it. */
  peek(origin: string): BulkheadPolicy | undefined {
    return this.#bulkheads.get(origin);
  }

  /** Bulkheads held now. */
  get size(): number {
    return this.#bulkheads.size;
  }

  /** The origins held, least recently used first. */
  keys(): IterableIterator<string> {
    return this.#bulkheads.keys();
  }

  /** Drops idle bulkheads, least recently used first, until the bound holds again. */
  #trim(keep: string): void {
    for (const [origin, bulkhead] of this.#bulkheads) {
      if (this.#bulkheads.size <= this.maxOrigins) return;
      if (origin === keep || bulkhead.active > 0 || bulkhead.queued > 0) continue;
      this.#bulkheads.delete(origin);
    }
  }
}
