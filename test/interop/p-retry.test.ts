import { VirtualClock } from '@bulwark/clock';
import { DeadlineExceededError, InvalidOptionsError, pipeline } from '@bulwark/core';
import { deadline, withDeadline } from '@bulwark/deadline';
import { AbortError, pRetryPolicy } from '@bulwark/interop/p-retry';
import { constant, isRetryableError, retry } from '@bulwark/retry';
import { AbortError as PRetryAbortError } from 'p-retry';
import { describe, expect, it } from 'vitest';

const down = () => Object.assign(new Error('connection reset'), { code: 'ECONNRESET' });

describe('pRetryPolicy', () => {
  it('retries through p-retry, handing each attempt a context with its number', async () => {
    const seen: number[] = [];
    const delays: number[] = [];
    const policy = pRetryPolicy({
      retries: 4,
      minTimeout: 0,
      onFailedAttempt: ({ retryDelay }) => {
        delays.push(retryDelay);
      },
    });
    const result = await policy.execute((ctx) => {
      seen.push(ctx.attempt);
      if (ctx.attempt < 3) throw down();
      return `done on ${ctx.attempt}`;
    });
    expect(result).toBe('done on 3');
    expect(seen).toEqual([1, 2, 3]);
    expect(delays).toEqual([0, 0]);
  });

  it("supplies the context's signal: a deadline ends p-retry's wait at once", async () => {
    const clock = new VirtualClock();
    let attempts = 0;
    const outcome = pipeline(
      deadline(300, { clock }),
      pRetryPolicy({ retries: 10, minTimeout: 1_000, factor: 1 }, { clock }),
    )
      .execute(() => {
        attempts++;
        throw down();
      })
      .catch((error: unknown) => error);
    await clock.advance(300);
    const error = await outcome;
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect((error as DeadlineExceededError).source).toBe('deadline');
    expect(attempts).toBe(1);
  });

  it('caps maxRetryTime at the time left on the deadline', async () => {
    const clock = new VirtualClock();
    const attemptsWith = async (run: (fn: () => never) => Promise<unknown>): Promise<number> => {
      let attempts = 0;
      await run(() => {
        attempts++;
        throw down();
      }).catch(() => undefined);
      return attempts;
    };
    const policy = pRetryPolicy({ retries: 10, minTimeout: 0 }, { clock });
    // No time left: p-retry makes the one attempt and stops.
    expect(await attemptsWith((fn) => withDeadline(0, () => policy.execute(fn), { clock }))).toBe(1);
    // Plenty of time left: every retry is made.
    expect(await attemptsWith((fn) => withDeadline(60_000, () => policy.execute(fn), { clock }))).toBe(11);
    // A tighter maxRetryTime of its own still wins.
    const own = pRetryPolicy({ retries: 10, minTimeout: 0, maxRetryTime: 0 }, { clock });
    expect(await attemptsWith((fn) => withDeadline(60_000, () => own.execute(fn), { clock }))).toBe(1);
  });

  it("keeps AbortError's meaning: no retry, the wrapped error surfaces, and an enclosing retry leaves it", async () => {
    expect(AbortError).toBe(PRetryAbortError);
    const clock = new VirtualClock();
    const inner = down();
    expect(isRetryableError(inner)).toBe(true);
    let attempts = 0;
    const policy = pipeline(
      retry({ clock, maxAttempts: 3, backoff: constant(0) }),
      pRetryPolicy({ retries: 5, minTimeout: 0 }, { clock }),
    );
    const error = await policy
      .execute(() => {
        attempts++;
        throw new AbortError(inner);
      })
      .catch((e: unknown) => e);
    expect(error).toBe(inner);
    expect(attempts).toBe(1);
    expect(isRetryableError(inner)).toBe(false);
  });

  it('leaves an error that says it is retryable as it is', async () => {
    const inner = Object.assign(new Error('try later'), { retryable: true });
    await expect(
      pRetryPolicy({ retries: 2 }).execute(() => {
        throw new AbortError(inner);
      }),
    ).rejects.toBe(inner);
    expect(inner.retryable).toBe(true);
  });

  it('honours a signal given in the p-retry options, as well as the context’s', async () => {
    const controller = new AbortController();
    const reason = new Error('shutting down');
    const policy = pRetryPolicy({ retries: 10, minTimeout: 1_000, signal: controller.signal });
    let signal: AbortSignal | undefined;
    const error = await policy
      .execute((ctx) => {
        signal = ctx.signal;
        controller.abort(reason);
        throw down();
      })
      .catch((e: unknown) => e);
    expect(error).toBe(reason);
    expect(signal?.aborted).toBe(true);
  });

  it("passes the caller's abort reason through unchanged", async () => {
    const caller = new AbortController();
    const reason = new Error('user cancelled');
    const outcome = pRetryPolicy({ retries: 10, minTimeout: 1_000 })
      .execute(
        () => {
          throw down();
        },
        { signal: caller.signal },
      )
      .catch((e: unknown) => e);
    caller.abort(reason);
    expect(await outcome).toBe(reason);
  });

  it('rejects bad options at construction with one RangeError listing each', () => {
    let caught: unknown;
    try {
      pRetryPolicy(
        { retries: 1.5, minTimeout: -1, maxTimeout: Number.NaN, onFailedAttempt: 'log' as never },
        { clock: {} as never },
      );
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidOptionsError);
    expect((caught as InvalidOptionsError).violations.map((v) => v.option)).toEqual([
      'retries',
      'minTimeout',
      'maxTimeout',
      'onFailedAttempt',
      'clock',
    ]);
  });
});
