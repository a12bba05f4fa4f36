import { BulkheadPolicy } from '@bulwark/bulkhead';
import { checkBulkheadOptions, type ResolvedBulkheadOptions } from '@bulwark/bulkhead/authoring';
import type { Clock } from '@bulwark/clock';
import { KeyedRegistry, optionKeys } from '@bulwark/core/authoring';

const ORIGIN_BULKHEAD_KEYS = optionKeys<
  OriginBulkheadOptions & { readonly name?: string; readonly clock?: Clock }
>({
  maxConcurrent: true,
  maxQueue: true,
  queueTimeoutMs: true,
  maxOrigins: true,
  name: true,
  clock: true,
});

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
  /** The options every bulkhead is built from, checked and resolved once. */
  readonly #options: ResolvedBulkheadOptions;
  readonly #bulkheads: KeyedRegistry<string, BulkheadPolicy>;

  /** @throws InvalidOptionsError listing every invalid option, the bulkheads' included. */
  constructor(options: OriginBulkheadOptions & { readonly name?: string; readonly clock?: Clock } = {}) {
    // The bulkheads' options are checked here, once, with maxOrigins: every
    // bulkhead is then built from the one resolved, frozen object.
    const given =
      typeof options === 'object' && options !== null
        ? {
            ...options,
            maxConcurrent: options.maxConcurrent ?? ORIGIN_BULKHEAD_DEFAULTS.maxConcurrent,
            maxQueue: options.maxQueue ?? ORIGIN_BULKHEAD_DEFAULTS.maxQueue,
          }
        : options;
    const resolved = checkBulkheadOptions('OriginBulkheads', given, ORIGIN_BULKHEAD_KEYS, (check) =>
      check.number('maxOrigins', options?.maxOrigins, { integer: true, min: 1 }),
    );
    this.#options = resolved;
    this.maxOrigins = options?.maxOrigins ?? ORIGIN_BULKHEAD_DEFAULTS.maxOrigins;
    this.#bulkheads = new KeyedRegistry({
      maxKeys: this.maxOrigins,
      create: () => new BulkheadPolicy(this.#options),
      // Only an idle bulkhead (nothing running, nothing queued) is dropped.
      evictable: (bulkhead) => bulkhead.active === 0 && bulkhead.queued === 0,
      whenFull: 'overflow',
    });
  }

  /** The bulkhead for `origin`, created on first use. */
  get(origin: string): BulkheadPolicy {
    return this.#bulkheads.get(origin);
  }

  /** The bulkhead for `origin` if there is one; does not create it. */
  peek(origin: string): BulkheadPolicy | undefined {
    return this.#bulkheads.peek(origin);
  }

  /** Bulkheads held now. */
  get size(): number {
    return this.#bulkheads.size;
  }

  /** The origins held, least recently used first. */
  keys(): IterableIterator<string> {
    return this.#bulkheads.keys();
  }
}
