import { type Clock, systemClock } from '@bulwark/clock';
import { KeyedRegistry, OptionsChecker } from '@bulwark/core/authoring';
import type { CircuitState } from './errors.ts';

const MEMORY_STORE_KEYS = new Set(['clock', 'maxKeys']);

/** The version of {@link BreakerSnapshot} this package writes and reads. */
export const SNAPSHOT_VERSION = 1;

/**
 * A breaker's state, in a form that survives a process: durations are
 * relative (milliseconds from the moment it was taken), never instants, since
 * monotonic clocks of different processes do not agree.
 */
export interface BreakerSnapshot {
  readonly version: 1;
  readonly state: CircuitState;
  /** Milliseconds until an open breaker lets a probe through; 0 in other states. */
  readonly openRemainingMs: number;
  /** Trips since the breaker last closed (drives a backoff `openMs`). */
  readonly trips: number;
}

/**
 * Where breakers publish their transitions and read the fleet's view. Local
 * decisions never wait on it: breakers publish without awaiting, and read
 * when `syncFromStore()` is called, or on their own at most every
 * `syncIntervalMs` while calls arrive.
 */
export interface BreakerStateStore {
  /**
   * When set, a closed breaker reads the fleet's view on its own: when a call
   * arrives and `syncIntervalMs` milliseconds (on the breaker's clock) have
   * passed since its last read, it starts one read in the background (the call
   * does not wait for it). An idle breaker reads nothing. Default: unset, the
   * breaker reads only when `syncFromStore()` is called.
   */
  readonly syncIntervalMs?: number | undefined;
  /** Records the state of the breaker under `key`. */
  publish(key: string, snapshot: BreakerSnapshot): void | Promise<void>;
  /** The last state published under `key`, with `openRemainingMs` as of now. */
  read(key: string): BreakerSnapshot | undefined | Promise<BreakerSnapshot | undefined>;
}

/**
 * An in-process {@link BreakerStateStore}: breakers in one process that use the
 * same key see each other's trips. `maxKeys` bounds it (least recently
 * published first out).
 */
export class MemoryBreakerStateStore implements BreakerStateStore {
  readonly #clock: Clock;
  readonly #entries: KeyedRegistry<string, { snapshot: BreakerSnapshot; at: number }>;

  constructor(options?: { readonly clock?: Clock | undefined; readonly maxKeys?: number | undefined }) {
    const check = new OptionsChecker('memoryBreakerStateStore()');
    check.knownKeys(options, MEMORY_STORE_KEYS);
    check.number('maxKeys', options?.maxKeys, { integer: true, min: 1 });
    check.clock('clock', options?.clock);
    check.done();
    this.#clock = options?.clock ?? systemClock;
    this.#entries = new KeyedRegistry({ maxKeys: options?.maxKeys ?? 10_000 });
  }

  publish(key: string, snapshot: BreakerSnapshot): void {
    this.#entries.set(key, { snapshot, at: this.#clock.now() });
  }

  read(key: string): BreakerSnapshot | undefined {
    const entry = this.#entries.peek(key);
    if (entry === undefined) return undefined;
    const elapsed = this.#clock.now() - entry.at;
    return { ...entry.snapshot, openRemainingMs: Math.max(0, entry.snapshot.openRemainingMs - elapsed) };
  }
}

/** An in-process breaker state store. */
export function memoryBreakerStateStore(options?: {
  readonly clock?: Clock | undefined;
  readonly maxKeys?: number | undefined;
}): MemoryBreakerStateStore {
  return new MemoryBreakerStateStore(options);
}
