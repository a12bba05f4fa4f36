// Differential test against p-retry: with no jitter, bulwark's exponential
// schedule gives the delays p-retry computes for `randomize: false`.
//
// p-retry waits on the global setTimeout. So that this test does not sleep in
// real time, and in this file only, setTimeout is replaced while p-retry runs
// by one that records the delay and fires on the next turn of the event loop.
import { exponential } from '@bulwark/retry';
import pRetry from 'p-retry';
import { afterEach, describe, expect, it, vi } from 'vitest';

afterEach(() => {
  vi.restoreAllMocks();
});

async function pRetryDelays(options: {
  retries: number;
  minTimeout: number;
  maxTimeout: number;
  factor: number;
}): Promise<number[]> {
  const delays: number[] = [];
  vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void) => {
    setImmediate(fn);
    return 0 as never;
  }) as never);
  await pRetry(
    () => {
      throw new Error('always');
    },
    {
      ...options,
      randomize: false,
      onFailedAttempt: (ctx) => {
        if (ctx.retriesLeft > 0) delays.push(ctx.retryDelay);
      },
    },
  ).catch(() => undefined);
  vi.restoreAllMocks();
  return delays;
}

function bulwarkDelays(retries: number, initialMs: number, maxMs: number, factor: number): number[] {
  const backoff = exponential({ initialMs, maxMs, factor, jitter: 'none' });
  const delays: number[] = [];
  let previous = 0;
  for (let attempt = 1; attempt <= retries; attempt++) {
    previous = backoff.delayMs(attempt, previous, () => 0.5);
    delays.push(previous);
  }
  return delays;
}

describe('exponential({ jitter: "none" }) against p-retry (randomize: false)', () => {
  const cases = [
    { retries: 8, minTimeout: 1000, maxTimeout: 30_000, factor: 2 },
    { retries: 6, minTimeout: 50, maxTimeout: 2_000, factor: 3 },
    { retries: 5, minTimeout: 200, maxTimeout: 200, factor: 2 },
    { retries: 10, minTimeout: 10, maxTimeout: 60_000, factor: 1 },
  ];
  for (const c of cases) {
    it(`gives the same delays for minTimeout ${c.minTimeout}, factor ${c.factor}, maxTimeout ${c.maxTimeout}`, async () => {
      const expected = await pRetryDelays(c);
      expect(expected).toHaveLength(c.retries);
      expect(bulwarkDelays(c.retries, c.minTimeout, c.maxTimeout, c.factor)).toEqual(expected);
    });
  }
});
