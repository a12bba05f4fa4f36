import type { Disposable, Listener } from '@bulwark/core';
import { EventHub, KeyedRegistry } from '@bulwark/core/authoring';
import { breakerFromResolved, type CircuitBreakerPolicy, type StateChangeEvent } from './breaker.ts';
import {
  BREAKER_KEYS,
  type CircuitBreakerOptions,
  checkBreakerOptions,
  type ResolvedBreakerOptions,
} from './options.ts';

/** Payload of a registry's `onStateChange`: one breaker's transition, and its key. */
export interface KeyedStateChangeEvent extends StateChangeEvent {
  readonly key: string;
}

/** A registry's keys: a breaker's, but `initialState` and `storeKey` (it derives one per key), and `maxKeys`. */
const REGISTRY_KEYS: ReadonlySet<string> = new Set([
  ...[...BREAKER_KEYS].filter((key) => key !== 'initialState' && key !== 'storeKey'),
  'maxKeys',
]);

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

  /** The options every breaker of the registry is built from, checked and resolved once. */
  readonly #options: ResolvedBreakerOptions;
  #onStateChange: EventHub<KeyedStateChangeEvent> | undefined;

  /** @throws InvalidOptionsError listing every invalid option, the breakers' included. */
  constructor(options?: CircuitBreakerRegistryOptions) {
    // The breakers' options are checked here, once, with maxKeys: every
    // breaker is then built from the one resolved, frozen object.
    const resolved = checkBreakerOptions('circuitBreakers()', options, REGISTRY_KEYS, true, (check) =>
      check.number('maxKeys', options?.maxKeys, { integer: true, min: 1 }),
    );
    this.#options = resolved;
    this.maxKeys = options?.maxKeys ?? CIRCUIT_BREAKER_REGISTRY_DEFAULTS.maxKeys;
    const prefix = `${resolved.name ?? 'breaker'}:`;
    this.#breakers = new KeyedRegistry({
      maxKeys: this.maxKeys,
      create: (key: string) => {
        if (typeof key !== 'string')
          throw new TypeError(`circuitBreakers().get(): key must be a string, got ${typeof key}`);
        const breaker = breakerFromResolved(
          this.#options,
          resolved.store === undefined ? undefined : prefix + key,
        );
        if (this.#onStateChange !== undefined) this.#forward(breaker, key);
        return breaker;
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

  /**
   * Calls `listener` on every transition of every breaker the registry made,
   * with the breaker's key: one subscription for all origins or tenants, those
   * made later included.
   */
  onStateChange(listener: Listener<KeyedStateChangeEvent>): Disposable {
    if (this.#onStateChange === undefined) {
      // The first listener: breakers forward their transitions from now on,
      // those made already included. Until then a breaker carries no
      // subscription (an idle keyed breaker stays as small as a lone one).
      this.#onStateChange = new EventHub('circuitBreakers.onStateChange');
      for (const [key, breaker] of this.#breakers.entries()) this.#forward(breaker, key);
    }
    return this.#onStateChange.subscribe(listener);
  }

  /** Forwards `breaker`'s transitions to the registry's listeners, with its key: transitions only, nothing on a call's path. */
  #forward(breaker: CircuitBreakerPolicy, key: string): void {
    const hub = this.#onStateChange!;
    breaker.onStateChange((event) => {
      if (hub.listening) hub.emit({ ...event, key });
    });
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
