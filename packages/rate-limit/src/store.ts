import { KeyedRegistry, OptionsChecker, optionKeys } from '@bulwark/core/authoring';

/**
 * The rule a store applies, fixed per limiter and frozen: GCRA with emission
 * interval `intervalMs` (1000 / ratePerSecond) and a tolerance of `burst`
 * intervals, so that `burst` calls pass at once on a key that has been idle.
 */
export interface RateLimitRule {
  /** Milliseconds between two calls at the sustained rate (1000 / ratePerSecond). */
  readonly intervalMs: number;
  /** How many calls may pass at once after the key has been idle (an integer >= 1). */
  readonly burst: number;
  /**
   * The furthest ahead of now, in milliseconds, that a key's theoretical
   * arrival time can legitimately be: `burst × intervalMs` plus the longest
   * wait a call may reserve. A shared store clamps a state further ahead than
   * this (after its clock stepped back) instead of refusing for the size of the step.
   */
  readonly horizonMs: number;
}

/** One request for a decision. */
export interface TakeRequest {
  /** The limiter's clock reading, in milliseconds (monotonic). */
  readonly now: number;
  /**
   * The longest the caller will wait for its slot, in milliseconds: 0 to be
   * refused at once when over the limit; more to reserve a later slot.
   */
  readonly maxDelayMs: number;
  /** Milliseconds left before the caller's deadline (Infinity when it has none). */
  readonly budgetMs: number;
}

/** A store's answer. */
export interface RateLimitDecision {
  /** Whether the call is admitted (possibly after `delayMs`). */
  readonly allowed: boolean;
  /** When admitted: milliseconds the caller must wait before its reserved slot (0: go now). */
  readonly delayMs: number;
  /** When refused: milliseconds until one call of this key would be admitted. 0 when admitted. */
  readonly retryAfterMs: number;
  /** Calls that could pass at once right after this decision (0 when refused). */
  readonly remaining: number;
  /** Milliseconds until the key is back to its full burst. */
  readonly resetMs: number;
}

/**
 * Where a limiter keeps its per-key state and decides. The in-memory store
 * answers synchronously; a shared store (Redis) answers with a promise.
 */
export interface RateLimitStore {
  take(
    key: string,
    rule: RateLimitRule,
    request: TakeRequest,
  ): RateLimitDecision | PromiseLike<RateLimitDecision>;
}

/** Float slack, in milliseconds, below which a delay counts as none. */
const EPSILON_MS = 1e-6;

/**
 * One GCRA decision. `tat` is the key's theoretical arrival time (undefined
 * for a key never seen or forgotten). Returns the decision and the new TAT
 * (unchanged when refused). O(1), no allocation but the result.
 */
export function gcra(
  tat: number | undefined,
  rule: RateLimitRule,
  now: number,
  maxDelayMs: number,
): { decision: RateLimitDecision; tat: number | undefined } {
  const base = tat === undefined || tat < now ? now : tat;
  const next = base + rule.intervalMs;
  const tolerance = rule.burst * rule.intervalMs;
  // The earliest instant at which the next call conforms, as an offset from now.
  const wait = next - tolerance - now;
  if (wait <= EPSILON_MS || wait <= maxDelayMs) {
    const delayMs = wait <= EPSILON_MS ? 0 : wait;
    return {
      decision: {
        allowed: true,
        delayMs,
        retryAfterMs: 0,
        remaining: delayMs > 0 ? 0 : Math.floor((now + tolerance - next) / rule.intervalMs + EPSILON_MS),
        resetMs: next - now,
      },
      tat: next,
    };
  }
  return {
    decision: { allowed: false, delayMs: 0, retryAfterMs: wait, remaining: 0, resetMs: base - now },
    tat,
  };
}

/** Options for {@link memoryRateLimitStore}. */
export interface MemoryRateLimitStoreOptions {
  /**
   * The most keys kept at once (an integer >= 1). Keys are kept in
   * least-recently-used order; a key whose state has fully drained (it would
   * get its whole burst anyway) is dropped first, and when every kept key is
   * still live the least recently used one is dropped, which hands it a fresh
   * burst the next time it comes (counted in `stats().evictedLive`).
   * Default: 10,000.
   */
  readonly maxKeys?: number | undefined;
}

/** The defaults of {@link MemoryRateLimitStoreOptions}. */
export const MEMORY_RATE_LIMIT_STORE_DEFAULTS = Object.freeze({ maxKeys: 10_000 });

/** Counters of a {@link MemoryRateLimitStore}. */
export interface MemoryRateLimitStoreStats {
  /** Keys kept now. */
  readonly keys: number;
  /** Keys dropped while still limited, to stay within `maxKeys`. */
  readonly evictedLive: number;
}

/** The state of one key: its theoretical arrival time. */
interface Cell {
  tat: number | undefined;
}

/**
 * Per-key GCRA state in this process: one number per key (its theoretical
 * arrival time) in a `KeyedRegistry` (least recently used order, at most
 * `maxKeys` keys). Every decision is O(1): it reads and rewrites one entry,
 * drops at most two drained entries from the cold end, and at most one entry
 * when the registry is full.
 */
export class MemoryRateLimitStore implements RateLimitStore {
  readonly maxKeys: number;
  readonly #cells: KeyedRegistry<string, Cell>;
  #now = 0;
  #sweeping = false;
  #evictedLive = 0;

  constructor(options: MemoryRateLimitStoreOptions = {}) {
    const check = new OptionsChecker('memoryRateLimitStore()');
    check.knownKeys(options, optionKeys<MemoryRateLimitStoreOptions>({ maxKeys: true }));
    check.number('maxKeys', options.maxKeys, { integer: true, min: 1 });
    check.done();
    this.maxKeys = options.maxKeys ?? MEMORY_RATE_LIMIT_STORE_DEFAULTS.maxKeys;
    this.#cells = new KeyedRegistry<string, Cell>({
      maxKeys: this.maxKeys,
      create: () => ({ tat: undefined }),
      onRemove: (cell) => {
        if (!this.#sweeping && cell.tat !== undefined && cell.tat > this.#now) this.#evictedLive++;
      },
    });
  }

  take(key: string, rule: RateLimitRule, request: TakeRequest): RateLimitDecision {
    const now = request.now;
    this.#now = now;
    this.#sweep(now);
    const cell = this.#cells.get(key);
    const { decision, tat } = gcra(cell.tat, rule, now, request.maxDelayMs);
    cell.tat = tat;
    return decision;
  }

  #sweep(now: number): void {
    // Drained keys at the cold end cost nothing to forget: they would get their
    // whole burst anyway. Two per decision keeps the work O(1).
    this.#sweeping = true;
    try {
      for (let i = 0; i < 2; i++) {
        const oldest = this.#cells.entries().next();
        if (oldest.done) break;
        const tat = oldest.value[1].tat;
        if (tat !== undefined && tat > now) break;
        this.#cells.delete(oldest.value[0]);
      }
    } finally {
      this.#sweeping = false;
    }
  }

  /** Keys kept now and keys dropped while still limited. */
  stats(): MemoryRateLimitStoreStats {
    return { keys: this.#cells.size, evictedLive: this.#evictedLive };
  }

  /** Forgets every key. */
  clear(): void {
    this.#sweeping = true;
    try {
      for (const key of [...this.#cells.keys()]) this.#cells.delete(key);
    } finally {
      this.#sweeping = false;
    }
  }
}

/** A rate-limit store in this process's memory, bounded to `maxKeys` keys. */
export function memoryRateLimitStore(options?: MemoryRateLimitStoreOptions): MemoryRateLimitStore {
  return new MemoryRateLimitStore(options);
}
