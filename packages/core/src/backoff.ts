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

/**
 * Whether `ms` is a delay a backoff may return: a finite number >= 0. The one
 * check of a backoff's output, used wherever a backoff is called.
 */
export function isValidDelay(ms: unknown): ms is number {
  return typeof ms === 'number' && ms >= 0 && ms !== Number.POSITIVE_INFINITY;
}

/**
 * Calls `backoff` and checks what it returned: a RangeError naming the value
 * and the attempt when it is not a finite number >= 0. `who` names the
 * schedule in the message (for example "the backoff").
 */
export function checkedDelayMs(
  backoff: Backoff,
  attempt: number,
  previousDelayMs: number,
  random: Random,
  who = 'the backoff',
): number {
  const ms = backoff.delayMs(attempt, previousDelayMs, random);
  if (!isValidDelay(ms)) {
    throw new RangeError(
      `${who} returned ${String(ms)} for attempt ${attempt}; it must be a finite number of milliseconds >= 0`,
    );
  }
  return ms;
}
