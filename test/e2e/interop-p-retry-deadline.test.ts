// p-retry waits on real timers and measures maxRetryTime with performance.now(),
// so this comparison runs in real time: about 0.8 s in all. Its timing
// assertions are loose bounds; which error ends the call and the attempt
// counts are what it checks.
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
  it('stops retrying at the 300 ms deadline, where plain p-retry with retries: 10 keeps going', async () => {
    // Three attempts fail at once (at about 0, 40 and 80 ms); the fourth hangs
    // until its signal aborts, so the deadline fires during an attempt, never
    // at the instant p-retry's own maxRetryTime (capped at the deadline) ends
    // its last wait. The first three take about 120 ms, so a timer late by up
    // to 180 ms in all still leaves the fourth attempt running at 300 ms.
    let attempts = 0;
    let abortReason: unknown;
    const started = performance.now();
    const error = await pipeline(deadline(300), pRetryPolicy(options))
      .execute((ctx) => {
        attempts++;
        if (attempts <= 3) throw down();
        return new Promise<never>((_, reject) => {
          ctx.signal.addEventListener(
            'abort',
            () => {
              abortReason = ctx.signal.reason;
              reject(ctx.signal.reason);
            },
            { once: true },
          );
        });
      })
      .catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    // No retry follows the deadline: wait longer than p-retry's 40 ms delay.
    await new Promise((resolve) => setTimeout(resolve, 100));

    let plainAttempts = 0;
    const plainStarted = performance.now();
    await pRetry(() => {
      plainAttempts++;
      throw down();
    }, options).catch(() => undefined);
    const plainElapsed = performance.now() - plainStarted;

    // The deadline ended the call, not the attempts' error and not p-retry's retries running out.
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect((error as DeadlineExceededError).source).toBe('deadline');
    expect((error as DeadlineExceededError).budgetMs).toBe(300);
    // It aborted the attempt in flight with that same error, and p-retry retried no more.
    expect(abortReason).toBe(error);
    expect(attempts).toBe(4);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1_500);
    // Plain p-retry makes every one of its 11 attempts, 10 waits of 40 ms: past 300 ms.
    expect(plainAttempts).toBe(11);
    expect(plainElapsed).toBeGreaterThan(300);
  });
});
