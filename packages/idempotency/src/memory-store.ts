import { type Clock, systemClock } from '@bulwark/clock';
import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import type { BeginOutcome, BeginRequest, IdempotencyStore } from './store.ts';

const MEMORY_STORE_KEYS = optionKeys<MemoryStoreOptions>({ maxEntries: true, clock: true });

/** Options for {@link memoryStore}. */
export interface MemoryStoreOptions {
  /**
   * The most records kept. Beyond it one record is evicted: of the 8 least
   * recently used, the first that is completed or expired, or, when all 8 are
   * in progress, the least recently used one. Keep it well above the number of
   * requests in flight at once. Default: 10,000.
   */
  readonly maxEntries?: number | undefined;
  /**
   * The clock retention and TTLs are measured on. Leases are not: the guard
   * judges them by renewals, on its own clock. Default: systemClock.
   */
  readonly clock?: Clock | undefined;
}

/** The default of {@link MemoryStoreOptions.maxEntries}. */
export const DEFAULT_MEMORY_STORE_MAX_ENTRIES = 10_000;

interface MemoryRecord {
  readonly key: string;
  completed: boolean;
  fingerprint: string;
  token: string | undefined;
  payload: string | undefined;
  /** IN_PROGRESS only: how many times the owner renewed. */
  renewals: number;
  /** The instant the record expires, on the clock. */
  expiresAt: number;
  /** Neighbours in recency order: `older` towards the eviction end. */
  older: MemoryRecord | undefined;
  newer: MemoryRecord | undefined;
}

/** How many records from the LRU end eviction looks at for one that is not a live lease. */
const EVICTION_SCAN = 8;

/**
 * An idempotency store in this process's memory: an LRU map with TTLs on a
 * monotonic clock, and a renewal counter per IN_PROGRESS record. It holds no timer; expired records are dropped when touched
 * or evicted. It protects one process only: use the Redis or PostgreSQL store
 * when several processes serve the same keys.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly maxEntries: number;
  readonly #clock: Clock;
  readonly #records = new Map<string, MemoryRecord>();
  /** The least recently used record (evicted first). */
  #oldest: MemoryRecord | undefined;
  /** The most recently used record. */
  #newest: MemoryRecord | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    const check = new OptionsChecker('memoryStore()');
    check.knownKeys(options, MEMORY_STORE_KEYS);
    check.number('maxEntries', options.maxEntries, { integer: true, min: 1 });
    check.clock('clock', options.clock);
    check.done();
    this.maxEntries = options.maxEntries ?? DEFAULT_MEMORY_STORE_MAX_ENTRIES;
    this.#clock = options.clock ?? systemClock;
  }

  /** How many records are held, expired ones included until they are touched. */
  get size(): number {
    return this.#records.size;
  }

  #live(key: string, now: number): MemoryRecord | undefined {
    const record = this.#records.get(key);
    if (record === undefined) return undefined;
    if (record.expiresAt <= now) {
      this.#remove(record);
      return undefined;
    }
    return record;
  }

  begin(request: BeginRequest): Promise<BeginOutcome> {
    const now = this.#clock.now();
    let record = this.#live(request.key, now);
    const takeover = request.takeover;
    if (
      record !== undefined &&
      takeover !== undefined &&
      !record.completed &&
      record.token === takeover.owner &&
      record.renewals === takeover.renewals
    ) {
      this.#remove(record);
      record = undefined;
    }
    if (record === undefined) {
      this.#insert({
        key: request.key,
        completed: false,
        fingerprint: request.fingerprint,
        token: request.token,
        payload: undefined,
        renewals: 0,
        expiresAt: now + request.retainMs,
        older: undefined,
        newer: undefined,
      });
      return Promise.resolve({ status: 'acquired' });
    }
    this.#unlink(record);
    this.#link(record);
    if (record.fingerprint !== request.fingerprint) return Promise.resolve({ status: 'mismatch' });
    if (record.completed) return Promise.resolve({ status: 'completed', payload: record.payload! });
    return Promise.resolve({ status: 'in-progress', owner: record.token!, renewals: record.renewals });
  }

  renew(key: string, token: string, retainMs: number): Promise<boolean> {
    const record = this.#live(key, this.#clock.now());
    if (record === undefined || record.completed || record.token !== token) return Promise.resolve(false);
    record.renewals++;
    record.expiresAt = this.#clock.now() + retainMs;
    return Promise.resolve(true);
  }

  complete(key: string, token: string, payload: string, ttlMs: number): Promise<boolean> {
    const record = this.#records.get(key);
    if (record === undefined || record.completed || record.token !== token) return Promise.resolve(false);
    record.completed = true;
    record.token = undefined;
    record.payload = payload;
    record.expiresAt = this.#clock.now() + ttlMs;
    return Promise.resolve(true);
  }

  release(key: string, token: string): Promise<boolean> {
    const record = this.#records.get(key);
    if (record === undefined || record.completed || record.token !== token) return Promise.resolve(false);
    this.#remove(record);
    return Promise.resolve(true);
  }

  #insert(record: MemoryRecord): void {
    this.#records.set(record.key, record);
    this.#link(record);
    if (this.#records.size <= this.maxEntries) return;
    const now = this.#clock.now();
    let victim = this.#oldest!;
    let candidate: MemoryRecord | undefined = victim;
    for (
      let scanned = 0;
      candidate !== undefined && candidate !== record && scanned < EVICTION_SCAN;
      scanned++
    ) {
      if (candidate.completed || candidate.expiresAt <= now) {
        victim = candidate;
        break;
      }
      candidate = candidate.newer;
    }
    this.#remove(victim);
  }

  #remove(record: MemoryRecord): void {
    this.#records.delete(record.key);
    this.#unlink(record);
  }

  /** Makes `record` the most recently used. */
  #link(record: MemoryRecord): void {
    record.older = this.#newest;
    record.newer = undefined;
    if (this.#newest !== undefined) this.#newest.newer = record;
    else this.#oldest = record;
    this.#newest = record;
  }

  #unlink(record: MemoryRecord): void {
    if (record.older !== undefined) record.older.newer = record.newer;
    else this.#oldest = record.newer;
    if (record.newer !== undefined) record.newer.older = record.older;
    else this.#newest = record.older;
    record.older = undefined;
    record.newer = undefined;
  }
}

/** An idempotency store in memory: LRU plus TTL, no timers, at most `maxEntries` records. */
export function memoryStore(options?: MemoryStoreOptions): MemoryIdempotencyStore {
  return new MemoryIdempotencyStore(options);
}
