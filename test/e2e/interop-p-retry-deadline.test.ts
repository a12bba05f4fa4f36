// p-retry waits on real timers and measures maxRetryTime with performance.now(),
// so this comparison runs in real time: about 0.7 s in all. Its timing
// assertions are loose bounds; the attempt counts are what it checks.
import { DeadlineExceededError, pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { pRetryPolicy } from '@bulwark/interop/p-retry';
import pRetry from 'p-retry';
import { describe, expect, it } from 'vitest';

const options = { retries: 10, minTimeout: 40, factor: 1 };

function down(): Error {
  return Object.assign(new Error('connection reset'), { code: 'ECONNRESET' });
}

describe('pRetryPolicy under a deadline (real time)', () => {
  it('stops retrying by the 300 ms deadline, where plain p-retry with retries: 10 keeps going', async () => {
    let attempts = 0;
    const started = performance.now();
    const error = await pipeline(deadline(300), pRetryPolicy(options))
      .execute(() => {
        attempts++;
        throw down();
      })
      .catch((e: unknown) => e);
    const elapsed = performance.now() - started;

    let plainAttempts = 0;
    const plainStarted = performance.now();
    await pRetry(() => {
      plainAttempts++;
      throw down();
    }, options).catch(() => undefined);
    const plainElapsed = performance.now() - plainStarted;

    // Stopped by the deadline (or by p-retry's maxRetryTime, capped at the same instant).
    expect(error instanceof DeadlineExceededError || (error as Error).message === 'connection reset').toBe(
      true,
    );
    expect(attempts).toBeGreaterThan(1);
    expect(attempts).toBeLessThanOrEqual(10);
    expect(elapsed).toBeLessThan(1_500);
    // Plain p-retry makes every one of its 11 attempts, 10 waits of 40 ms: past 300 ms.
    expect(plainAttempts).toBe(11);
    expect(plainElapsed).toBeGreaterThan(300);
  });
});
