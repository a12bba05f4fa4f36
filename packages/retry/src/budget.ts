import { type Clock, systemClock } from '@bulwark/clock';
import { BucketedWindow, OptionsChecker, optionKeys } from '@bulwark/core/authoring';

const BUDGET_KEYS = optionKeys<RetryBudgetOptions>({
  ratio: true,
  minRetriesPerSecond: true,
  windowMs: true,
  clock: true,
});

/** `T` with every property present and none undefined: options after defaults are applied. */
type Resolved<T> = { readonly [K in keyof T]-?: Exclude<T[K], undefined> };

/** Options for {@link retryBudget}. */
export interface RetryBudgetOptions {
  /** Retries allowed per request in the window, from 0 to 1000. Default: 0.2 (retries add at most 20% load). */
  readonly ratio?: number | undefined;
  /** Retries allowed per second regardless of traffic, so that a quiet client can still retry. Default: 10. */
  readonly minRetriesPerSecond?: number | undefined;
  /** The sliding window requests and retries are counted over, in milliseconds. Default: 10,000. */
  readonly windowMs?: number | undefined;
  /** The clock the window slides on. Default: the system clock. */
  readonly clock?: Clock | undefined;
}

/** The defaults of {@link retryBudget}. */
export const RETRY_BUDGET_DEFAULTS: Resolved<Omit<RetryBudgetOptions, 'clock'>> = Object.freeze({
  ratio: 0.2,
  minRetriesPerSecond: 10,
  windowMs: 10_000,
});

/** The window is counted in this many buckets: fixed memory, no entry per request. */
const BUCKETS = 10;
/** Requests are counted in batches this large, so most calls do not read the clock. */
const BATCH = 16;
/** The window's counters. */
const REQUESTS = 0;
const RETRIES = 1;

/**
 * A retry budget shared by any number of retry policies, as Finagle's
 * RetryBudget works: within a sliding window, the retries allowed are
 * `minRetriesPerSecond × windowSeconds + ratio × requests`. When a retry would
 * go over, the policy stops and rethrows the last error (stop reason
 * `'budget'`). A budget holds no timer and a fixed amount of memory.
 *
 * Requests are counted in batches of 16 and the window slides in tenths, so
 * the count may lag by up to 15 requests and one tenth of the window.
 */
export class RetryBudget {
  readonly ratio: number;
  readonly minRetriesPerSecond: number;
  readonly windowMs: number;
  readonly clock: Clock;
  readonly #reserve: number;
  readonly #window: BucketedWindow;
  #pending = 0;

  constructor(options?: RetryBudgetOptions) {
    const ratio = options?.ratio ?? RETRY_BUDGET_DEFAULTS.ratio;
    const minRetriesPerSecond = options?.minRetriesPerSecond ?? RETRY_BUDGET_DEFAULTS.minRetriesPerSecond;
    const windowMs = options?.windowMs ?? RETRY_BUDGET_DEFAULTS.windowMs;
    const check = new OptionsChecker('retryBudget()');
    check.knownKeys(options, BUDGET_KEYS);
    check.number('ratio', ratio, { min: 0, max: 1000 });
    check.number('minRetriesPerSecond', minRetriesPerSecond, { min: 0 });
    check.number('windowMs', windowMs, { min: 1 });
    check.clock('clock', options?.clock);
    check.done();
    this.ratio = ratio;
    this.minRetriesPerSecond = minRetriesPerSecond;
    this.windowMs = windowMs;
    this.clock = options?.clock ?? systemClock;
    this.#window = new BucketedWindow(this.clock, windowMs / BUCKETS, BUCKETS, 2, true);
    this.#reserve = (minRetriesPerSecond * windowMs) / 1000;
  }

  /** Counts one request (a logical call, not an attempt). Retry policies call it for you. */
  recordRequest(): void {
    if (++this.#pending === BATCH) this.#flush();
  }

  /**
   * Takes one retry from the budget: true when it was available (and is now
   * spent), false when the budget is empty.
   */
  tryWithdraw(): boolean {
    const w = this.#flush();
    if (w.sum(RETRIES) + 1 > this.#reserve + this.ratio * w.sum(REQUESTS)) return false;
    w.add(RETRIES);
    return true;
  }

  /** The retries the budget allows now (0 when it is empty). */
  available(): number {
    const w = this.#flush();
    return Math.max(0, Math.floor(this.#reserve + this.ratio * w.sum(REQUESTS) - w.sum(RETRIES)));
  }

  /** Requests and retries counted in the current window. */
  stats(): { readonly requests: number; readonly retries: number } {
    const w = this.#flush();
    return { requests: w.sum(REQUESTS), retries: w.sum(RETRIES) };
  }

  /** Slides the window to now and adds the pending requests to its newest bucket. */
  #flush(): BucketedWindow {
    const w = this.#window;
    w.slide();
    if (this.#pending > 0) {
      w.add(REQUESTS, this.#pending);
      this.#pending = 0;
    }
    return w;
  }
}

/** A retry budget to share across retry policies; see {@link RetryBudget}. */
export function retryBudget(options?: RetryBudgetOptions): RetryBudget {
  return new RetryBudget(options);
}
