// Differential test against p-retry: the delays a bulwark retry built from
// retryOptionsFromPRetry(o) waits are the ones p-retry computes for o
// (randomize: false), including its rounding and caps.
//
// p-retry waits on the global setTimeout. So that this test does not sleep in
// real time, and in this file only, setTimeout is replaced while p-retry runs
// by one that fires on the next turn of the event loop. The bulwark retry runs
// on a VirtualClock.
import { VirtualClock } from '@bulwark/clock';
import { type PRetryOptions, retryOptionsFromPRetry } from '@bulwark/interop';
import { retry } from '@bulwark/retry';
import pRetry from 'p-retry';
import { afterEach, describe, expect, it, vi } from 'vitest';

afterEach(() => {
  vi.restoreAllMocks();
});

async function pRetryDelays(options: PRetryOptions): Promise<number[]> {
  const delays: number[] = [];
  vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void) => {
    setImmediate(fn);
    return 0 as never;
  }) as never);
  try {
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
  } finally {
    vi.restoreAllMocks();
  }
  return delays;
}

async function bulwarkDelays(options: PRetryOptions): Promise<number[]> {
  const clock = new VirtualClock();
  const policy = retry({ ...retryOptionsFromPRetry({ ...options, randomize: false }).options, clock });
  const delays: number[] = [];
  policy.onRetry(({ delayMs }) => delays.push(delayMs));
  const done = policy
    .execute(() => {
      throw new Error('always');
    })
    .catch(() => undefined);
  await clock.runAll();
  await done;
  return delays;
}

describe('retryOptionsFromPRetry against p-retry (randomize: false)', () => {
  const cases: PRetryOptions[] = [
    {},
    { retries: 6, minTimeout: 50, maxTimeout: 2_000, factor: 3 },
    { retries: 5, minTimeout: 200, maxTimeout: 200 },
    { retries: 4, minTimeout: 500, maxTimeout: 120 },
    { retries: 8, minTimeout: 10, factor: 1 },
    { retries: 6, minTimeout: 0 },
    { retries: 7, minTimeout: 33.3, factor: 1.7, maxTimeout: 999.2 },
    { retries: 6, minTimeout: 1_000, factor: 0.5 },
    { retries: 5, minTimeout: 100, factor: 0 },
    { retries: 40, minTimeout: 1_000, factor: 2 },
  ];
  for (const c of cases) {
    it(`gives the same delays for ${JSON.stringify(c)}`, async () => {
      const expected = await pRetryDelays(c);
      expect(expected).toHaveLength(c.retries ?? 10);
      expect(await bulwarkDelays(c)).toEqual(expected);
    });
  }
});
