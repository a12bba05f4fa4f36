import { formatValue } from './options.ts';

/**
 * Whether an entry of a {@link KeyedRegistry} may be evicted now: `true`
 * (yes), `'last-resort'` (only when no entry says `true`) or `false` (never:
 * it holds state that must not be lost).
 */
export type Evictable = boolean | 'last-resort';

/** Options for {@link KeyedRegistry}. */
export interface KeyedRegistryOptions<K, V> {
  /** The most entries kept at once: an integer >= 1. */
  readonly maxKeys: number;
  /**
   * Makes the entry for a key on its first use by `get()`. May throw (nothing
   * is kept then). Default: none; a registry filled by `set()` alone then
   * throws a TypeError from `get()` of a key it does not hold.
   */
  readonly create?: ((key: K) => V) | undefined;
  /** Whether an entry may be evicted now. Default: every entry may. */
  readonly evictable?: ((value: V, key: K) => Evictable) | undefined;
  /** Called for every entry the registry drops, by eviction or `delete()`. */
  readonly onRemove?: ((value: V, key: K) => void) | undefined;
  /**
   * When no other entry may be evicted: `'drop-new'` hands the new entry out
   * without keeping it (it counts as evicted), so the bound always holds;
   * `'overflow'` keeps it beyond `maxKeys` and trims back at a later insert.
   * Default: `'drop-new'`.
   */
  readonly whenFull?: 'drop-new' | 'overflow' | undefined;
}

/**
 * A bounded map of entries made on first use (one breaker or bulkhead per
 * host, per tenant), in least recently used order. When an insert goes over
 * `maxKeys`, it evicts the least recently used entries that `evictable` allows
 * (those that say `true` first, then those that say `'last-resort'`), never
 * the entry just made, and never one that says `false`.
 *
 * A `get()` of the key asked for last costs one comparison; any other hit
 * moves the entry to the most recently used end of the map. `set()` puts a
 * value as the most recently used, so the registry also serves as a bounded
 * map of the keys written last.
 */
export class KeyedRegistry<K, V> {
  readonly maxKeys: number;
  readonly #create: (key: K) => V;
  readonly #evictable: ((value: V, key: K) => Evictable) | undefined;
  readonly #onRemove: ((value: V, key: K) => void) | undefined;
  readonly #overflow: boolean;
  readonly #entries = new Map<K, V>();
  #evicted = 0;
  /** The key get() handed out last, while its entry is held: already the most recently used. */
  #lastKey: K | undefined;
  #last: V | undefined;
  #hasLast = false;

  constructor(options: KeyedRegistryOptions<K, V>) {
    const { maxKeys, whenFull } = options;
    if (!Number.isInteger(maxKeys) || maxKeys < 1)
      throw new RangeError(`KeyedRegistry: maxKeys must be an integer >= 1, got ${String(maxKeys)}`);
    if (whenFull !== undefined && whenFull !== 'drop-new' && whenFull !== 'overflow')
      throw new RangeError(
        `KeyedRegistry: whenFull must be 'drop-new' or 'overflow', got ${String(whenFull)}`,
      );
    this.maxKeys = maxKeys;
    this.#create = options.create ?? noCreate;
    this.#evictable = options.evictable;
    this.#onRemove = options.onRemove;
    this.#overflow = whenFull === 'overflow';
  }

  /** The entry for `key`, made on first use. */
  get(key: K): V {
    if (this.#hasLast && key === this.#lastKey) return this.#last as V;
    const entries = this.#entries;
    let value = entries.get(key);
    if (value !== undefined || entries.has(key)) {
      // Most recently used last: eviction scans from the front.
      entries.delete(key);
      entries.set(key, value as V);
    } else {
      value = this.#create(key);
      entries.set(key, value);
      this.#remember(key, value);
      // When it drops the new entry itself, #trim forgets it as the last one.
      if (entries.size > this.maxKeys) this.#trim(key);
      return value;
    }
    this.#remember(key, value as V);
    return value as V;
  }

  /** The entry for `key` if there is one; does not make it or count as a use. */
  peek(key: K): V | undefined {
    return this.#entries.get(key);
  }

  /** Entries held now. */
  get size(): number {
    return this.#entries.size;
  }

  /** Entries evicted so far (not counting `delete()`). */
  get evicted(): number {
    return this.#evicted;
  }

  /** The keys held, least recently used first. */
  keys(): IterableIterator<K> {
    return this.#entries.keys();
  }

  /** The entries held, least recently used first. */
  entries(): IterableIterator<[K, V]> {
    return this.#entries.entries();
  }

  /**
   * Puts `value` under `key` as the most recently used entry (a different
   * value it replaces goes to `onRemove`), then evicts as an insert by
   * `get()` does: with `'drop-new'` and nothing evictable, `value` itself is
   * not kept.
   */
  set(key: K, value: V): void {
    const entries = this.#entries;
    if (entries.has(key)) {
      const old = entries.get(key) as V;
      entries.delete(key);
      if (old !== value) this.#onRemove?.(old, key);
    }
    entries.set(key, value);
    this.#remember(key, value);
    if (entries.size > this.maxKeys) this.#trim(key);
  }

  /** Drops every entry through `onRemove` (not counted as evicted). */
  clear(): void {
    for (const [key, value] of this.#entries) this.#remove(key, value);
  }

  /** Drops the entry for `key`; true when there was one. */
  delete(key: K): boolean {
    const entries = this.#entries;
    if (!entries.has(key)) return false;
    this.#remove(key, entries.get(key) as V);
    return true;
  }

  #remember(key: K, value: V): void {
    this.#lastKey = key;
    this.#last = value;
    this.#hasLast = true;
  }

  #remove(key: K, value: V): void {
    this.#entries.delete(key);
    if (this.#hasLast && key === this.#lastKey) {
      this.#lastKey = undefined;
      this.#last = undefined;
      this.#hasLast = false;
    }
    this.#onRemove?.(value, key);
  }

  /** Evicts least recently used entries, other than `keep`, until the bound holds again. */
  #trim(keep: K): void {
    const entries = this.#entries;
    const max = this.maxKeys;
    const evictable = this.#evictable;
    const lastResort: [K, V][] = [];
    for (const [key, value] of entries) {
      if (entries.size <= max) return;
      if (key === keep) continue;
      const verdict = evictable === undefined ? true : evictable(value, key);
      if (verdict === true) {
        this.#remove(key, value);
        this.#evicted++;
      } else if (verdict === 'last-resort') {
        lastResort.push([key, value]);
      }
    }
    for (const [key, value] of lastResort) {
      if (entries.size <= max) return;
      this.#remove(key, value);
      this.#evicted++;
    }
    if (entries.size > max && !this.#overflow) {
      this.#remove(keep, entries.get(keep) as V);
      this.#evicted++;
    }
  }
}

/** The `create` of a registry given none: `get()` of a key it does not hold. */
function noCreate(key: unknown): never {
  throw new TypeError(`KeyedRegistry: no entry for ${formatValue(key)}, and no create option to make one`);
}
