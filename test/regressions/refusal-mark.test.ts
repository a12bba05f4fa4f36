// One mark for "refused without running": classifiers test isRefusal() instead
// of listing every module's error codes.
import { BulkheadRejectedError } from '@bulwark/bulkhead';
import { BrokenCircuitError, ThrottledError } from '@bulwark/circuit-breaker';
import { BulwarkError, DeadlineExceededError, isRefusal } from '@bulwark/core';
import { RateLimitedError } from '@bulwark/rate-limit';
import { isRetryableError } from '@bulwark/retry';
import { describe, expect, it } from 'vitest';

class RateLimited extends BulwarkError<'ERR_RATE_LIMITED'> {
  constructor() {
    super('ERR_RATE_LIMITED', 'too many calls', { retryAfterMs: 100, refusal: true });
  }
}

describe('isRefusal()', () => {
  it('marks a breaker refusal and a bulkhead refusal, and nothing that ran', () => {
    expect(isRefusal(new BrokenCircuitError('open', 10))).toBe(true);
    expect(isRefusal(new BulkheadRejectedError('queue-full', { limit: 1, maxQueue: 0, waitedMs: 0 }))).toBe(
      true,
    );
    expect(isRefusal(new DeadlineExceededError('timeout', 10))).toBe(false);
    expect(isRefusal(new Error('down'))).toBe(false);
    expect(isRefusal(undefined)).toBe(false);
  });

  it('lets a policy of any module mark its own refusal, which retry then does not retry', () => {
    const refused = new RateLimited();
    expect(isRefusal(refused)).toBe(true);
    // A retryAfterMs hint alone would make it retryable; the refusal mark wins.
    expect(isRetryableError(refused)).toBe(false);
    expect(isRetryableError(new BulwarkError('ERR_OTHER', 'x', { retryAfterMs: 100 }))).toBe(true);
  });
  it("marks the rate limiter's and the adaptive throttle's refusals, which retry does not retry", () => {
    const limited = new RateLimitedError('tenant', 250, { ratePerSecond: 1, burst: 1 });
    const shed = new ThrottledError(0.4);
    expect(isRefusal(limited)).toBe(true);
    expect(isRefusal(shed)).toBe(true);
    // retryAfterMs alone would make the rate limit's refusal retryable.
    expect(isRetryableError(limited)).toBe(false);
    expect(isRetryableError(shed)).toBe(false);
    // A brand on the prototype: nothing of its own on each error.
    expect(Object.getOwnPropertySymbols(limited)).toEqual([]);
    expect(Object.getOwnPropertySymbols(shed)).toEqual([]);
  });
});
