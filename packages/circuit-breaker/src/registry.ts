import { InvalidOptionsError } from '@bulwark/core';
import { KeyedRegistry, OptionsChecker } from '@bulwark/core/authoring';
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
  readonly #breakers: KeyedRegistry<string, CircuitBreakerPolicy>;

  constructor(options?: CircuitBreakerRegistryOptions) {
    const check = new OptionsChecker('circuitBreakers()');
    check.number('maxKeys', options?.maxKeys, { integer: true, min: 1 });
    const trip = options?.trip;
    // One frozen trip list for every breaker of the registry.
    // Every other key is a breaker's option: circuitBreaker() checks them (unknown ones too).
    const { maxKeys: _, ...breakerOptions } = options ?? {};
    const shared: CircuitBreakerOptions = {
      ...breakerOptions,
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
      check.adopt(undefined, error.violations);
    }
    check.done();
    this.maxKeys = options?.maxKeys ?? CIRCUIT_BREAKER_REGISTRY_DEFAULTS.maxKeys;
    this.#breakers = new KeyedRegistry({
      maxKeys: this.maxKeys,
      create: (key: string) => {
        if (typeof key !== 'string')
          throw new TypeError(`circuitBreakers().get(): key must be a string, got ${typeof key}`);
        return new CircuitBreakerPolicy({
          ...shared,
          storeKey: shared.store === undefined ? undefined : `${shared.name ?? 'breaker'}:${key}`,
        });
      },
      // Idle closed breakers go first, then busy closed ones; an open,
      // half-open or isolated breaker is never evicted.
      evictable: (breaker) =>
        breaker.state !== 'closed' ? false : breaker._inFlight() === 0 ? true : 'last-resort',
      onRemove: (breaker) => breaker._detach(),
      whenFull: 'drop-new',
    });
  }

  /** The breaker for `key`, created on first use. */
  get(key: string): CircuitBreakerPolicy {
    return this.#breakers.get(key);
  }

  /** The breaker for `key` if there is one; does not create it. */
  peek(key: string): CircuitBreakerPolicy | undefined {
    return this.#breakers.peek(key);
  }

  /** Breakers held now. */
  get size(): number {
    return this.#breakers.size;
  }

  /** Breakers evicted so far. */
  get evicted(): number {
    return this.#breakers.evicted;
  }

  /** The keys held, least recently used first. */
  keys(): IterableIterator<string> {
    return this.#breakers.keys();
  }

  /** Removes the breaker for `key`. */
  delete(key: string): boolean {
    return this.#breakers.delete(key);
  }
}

/** A keyed registry of circuit breakers; see {@link CircuitBreakerRegistry}. */
export function circuitBreakers(options?: CircuitBreakerRegistryOptions): CircuitBreakerRegistry {
  return new CircuitBreakerRegistry(options);
}
