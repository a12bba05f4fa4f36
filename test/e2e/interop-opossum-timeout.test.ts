// opossum times calls out and half-opens with real timers, so these run in real
// time, with timeouts of a few tens of milliseconds (well under a second in all).
import { DeadlineExceededError, pipeline } from '@bulwark/core';
import { fromOpossum, opossumPolicy } from '@bulwark/interop/opossum';
import { constant, isRetryableError, retry } from '@bulwark/retry';
import CircuitBreaker from 'opossum';
import { afterEach, describe, expect, it } from 'vitest';
import { installOtel, resetOtel } from '../support/otel.ts';

afterEach(resetOtel);

describe("opossum's own timers through the adapters (real time)", () => {
  it("turns opossum's timeout into a retryable timeout error that aborts ctx.signal, so bulwark retries it", async () => {
    const policy = opossumPolicy({ name: 'slow', timeout: 20, errorThresholdPercentage: 100 });
    const signals: AbortSignal[] = [];
    try {
      const error = await pipeline(retry({ maxAttempts: 2, backoff: constant(0) }), policy)
        .execute((ctx) => {
          signals.push(ctx.signal);
          return new Promise<never>(() => undefined);
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DeadlineExceededError);
      expect(error).toMatchObject({ source: 'timeout', budgetMs: 20 });
      expect((error as Error).message).toBe('opossum breaker "slow" timed out after 20 ms');
      expect((error as Error).cause).toMatchObject({ code: 'ETIMEDOUT' });
      expect(isRetryableError(error)).toBe(true);
      expect(signals).toHaveLength(2);
      expect(signals.every((s) => s.aborted)).toBe(true);
    } finally {
      policy.dispose();
    }
  });

  it("maps a breaker's own timeout through fromOpossum(), and bulwark retries it", async () => {
    let hang = 1; // calls that never answer before the next ones do
    const breaker = new CircuitBreaker(
      (n: number) => (hang-- > 0 ? new Promise<number>(() => undefined) : Promise.resolve(n * 2)),
      { name: 'lookup', timeout: 20, errorThresholdPercentage: 100 },
    );
    const lookup = fromOpossum(breaker);
    try {
      const error = await lookup(1).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_DEADLINE_EXCEEDED', source: 'timeout', budgetMs: 20 });
      hang = 1;
      let attempts = 0;
      const value = await retry({ maxAttempts: 2, backoff: constant(0) }).execute(() => {
        attempts++;
        return lookup(5);
      });
      expect(value).toBe(10);
      expect(attempts).toBe(2);
    } finally {
      lookup.dispose();
      breaker.shutdown();
    }
  });

  it('bridges open, half-open and close, and gives the exact retryAfterMs while open', async () => {
    const otel = installOtel();
    let healthy = false;
    const breaker = new CircuitBreaker(
      async () => {
        if (!healthy) throw new Error('down');
        return 'ok';
      },
      { name: 'flaky', resetTimeout: 40, timeout: false },
    );
    const call = fromOpossum(breaker);
    try {
      await call().catch(() => undefined); // 100% failed: opens
      const refusal = await call().catch((e: unknown) => e);
      expect(refusal).toMatchObject({ code: 'ERR_CIRCUIT_OPEN', state: 'open' });
      const retryAfterMs = (refusal as { retryAfterMs: number }).retryAfterMs;
      expect(retryAfterMs).toBeGreaterThan(0);
      expect(retryAfterMs).toBeLessThanOrEqual(40);
      await new Promise<void>((resolve, reject) => {
        // Bounded: a breaker that never half-opens fails the test within 2 s.
        const timer = setTimeout(() => reject(new Error('the breaker did not half-open')), 2_000);
        breaker.once('halfOpen', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      healthy = true;
      expect(await call()).toBe('ok');
      expect(breaker.closed).toBe(true);

      const transitions = (await otel.collect('@bulwark/interop'))
        .points('bulwark.circuit.transitions')
        .map((p) => `${p.from}->${p.to}`);
      expect(transitions.sort()).toEqual(['closed->open', 'half-open->closed', 'open->half-open']);
    } finally {
      call.dispose();
      breaker.shutdown();
    }
  });
});
