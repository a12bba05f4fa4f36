import type { Random } from '@bulwark/clock';

/**
 * A pure, immutable delay schedule. `@bulwark/retry` builds them
 * (`exponential()`, `constant()`, `fromFunction()`), and anything that waits
 * longer after each consecutive failure (a breaker's open duration) takes one.
 */
export interface Backoff {
  /**
   * The delay in milliseconds before retry number `attempt` (1 for the first
   * retry). `previousDelayMs` is the delay this schedule returned last time
   * (0 before the first). Always finite and >= 0.
   */
  delayMs(attempt: number, previousDelayMs: number, random: Random): number;
}
