import { InvalidOptionsError } from '@bulwark/core';
import { OptionsChecker } from '@bulwark/core/authoring';
import { type CircuitBreakerOptions, CircuitBreakerPolicy } from './breaker.ts';
import type { Trip } from './trips.ts';

/** Options for {@link circuitBreakers}: every breaker's options, plus the bound. */
export interface CircuitBreakerRegistryOptions
  extends Omit<CircuitBreakerOptions, 'initialState' | 'storeKey'> {
  /** The most breakers kept at once. Default: 1,000. */
  readonly maxKeys?: number | undefined;
}

/** The defaults of {@link circuitBreakers}. */
export const CIRCUIT_BREAKER_REGISTRY_DEFAULTS = Object.freeze({ maxKeys: 1_000 });

/**
 * One breaker per key (per host, per tenant), created on first use, bounded by
 * `maxKeys`. When full, it evicts the least recently used idle closed breaker
 * (no call in flight), else the least recently used closed one. It never
 * evicts an open, half-open or isolated breaker: when every other breaker held
 * is one of those, the new key's breaker is handed out but not kept (it counts
 * as evicted), so the registry stays within `maxKeys` and the open breakers
 * keep their state. Breakers of one registry share its `name` in telemetry
 * (keys are not metric attributes: their number is unbounded); each breaker's
 * `storeKey` is `name + ':' + key`.
 */
export class CircuitBreakerRegistry {
  readonly maxKeys: number;
  readonly #options: CircuitBreakerRegistryOptions;
  readonly #breakers = new Map<string, CircuitBreakerPolicy>();
  #evicted = 0;
  /** The key get() handed out last, while its breaker is held: already the most recently used. */
  #lastKey: string | undefined;
  #last: CircuitBreakerPolicy | undefined;

  constructor(options?: CircuitBreakerRegistryOptions) {
    const check = new OptionsChecker('circuitBreakers()');
    check.number('maxKeys', options?.maxKeys, { integer: true, min: 1 });
    const trip = options?.trip;
    // One frozen trip list for every breaker of the registry.
    const shared: CircuitBreakerRegistryOptions = {
      ...options,
      trip:
        trip === undefined || trip === null || typeof trip !== 'object'
          ? trip
          : Object.freeze(Array.isArray(trip) ? [...trip] : [trip as Trip]),
    };
    // Validates the breaker options once, up front, rather than at the first
    // get(), and reports their violations in the same error as maxKeys.
    try {
      new CircuitBreakerPolicy({ ...shared, name: undefined, store: undefined });
    } catch (error) {
      if (!(error instanceof InvalidOptionsError)) throw error;
      for (const v of error.violations) check.expect(false, v.option, v.value, v.expected);
    }
    check.done();
    this.maxKeys = options?.maxKeys ?? CIRCUIT_BREAKER_REGISTRY_DEFAULTS.maxKeys;
    this.#options = shared;
  }

  /** The breaker for `key`, created on first use. */
  get(key: string): CircuitBreakerPolicy {
    // The same key as last time is already last in the map: nothing to move.
    if (key === this.#lastKey && this.#last !== undefined) return this.#last;
    const breakers = this.#breakers;
    let breaker = breakers.get(key);
    if (breaker !== undefined) {
      // Most recently used last: the first closed entry is the eviction candidate.
      breakers.delete(key);
      breakers.set(key, breaker);
      this.#lastKey = key;
      this.#last = breaker;
      return breaker;
    }
    if (typeof key !== 'string')
      throw new TypeError(`circuitBreakers().get(): key must be a string, got ${typeof key}`);
    breaker = new CircuitBreakerPolicy({
      ...this.#options,
      storeKey: this.#options.store === undefined ? undefined : `${this.#options.name ?? 'breaker'}:${key}`,
    });
    breakers.set(key, breaker);
    this.#lastKey = key;
    this.#last = breaker;
    // When it evicts the new key's breaker itself, #evictOne forgets it as the last one.
    if (breakers.size > this.maxKeys) this.#evictOne(key);
    return breaker;
  }

  /** The breaker for `key` if there is one; does not create it. */
  peek(key: string): CircuitBreakerPolicy | undefined {
    return this.#breakers.get(key);
  }

  /** Breakers held now. */
  get size(): number {
    return this.#breakers.size;
  }

  /** Breakers evicted so far. */
  get evicted(): number {
    return this.#evicted;
  }

  /** The keys held, least recently used first. */
  keys(): IterableIterator<string> {
    return this.#breakers.keys();
  }

  /** Removes the breaker for `key`. */
  delete(key: string): boolean {
    const breaker = this.#breakers.get(key);
    if (breaker === undefined) return false;
    breaker._detach();
    if (key === this.#lastKey) this.#forgetLast();
    return this.#breakers.delete(key);
  }

  /**
   * Evicts one breaker: the least recently used idle closed one, else the least
   * recently used closed one, else `keep` (the one just made). Never one that
   * is open, half-open or isolated.
   */
  #evictOne(keep: string): void {
    let busy: string | undefined;
    let victim: string | undefined;
    for (const [key, breaker] of this.#breakers) {
      if (key === keep || breaker.state !== 'closed') continue;
      if (breaker._inFlight() === 0) {
        victim = key;
        break;
      }
      busy ??= key;
    }
    const key = victim ?? busy ?? keep;
    this.#breakers.get(key)!._detach();
    this.#breakers.delete(key);
    if (key === this.#lastKey) this.#forgetLast();
    this.#evicted++;
  }

  #forgetLast(): void {
    this.#lastKey = undefined;
    this.#last = undefined;
  }
}

/** A keyed registry of circuit breakers; see {@link CircuitBreakerRegistry}. */
export function circuitBreakers(options?: CircuitBreakerRegistryOptions): CircuitBreakerRegistry {
  return new CircuitBreakerRegistry(options);
}
