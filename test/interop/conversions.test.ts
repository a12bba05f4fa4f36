import { circuitBreaker } from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { InvalidOptionsError } from '@bulwark/core';
import { rootContext } from '@bulwark/core/authoring';
import {
  breakerOptionsFromOpossum,
  OpossumRateTrip,
  opossumRate,
  P_RETRY_MAX_DELAY_MS,
  pRetryStops,
  retryOptionsFromPRetry,
} from '@bulwark/interop';
import { ExponentialBackoff, retry } from '@bulwark/retry';
import { describe, expect, it } from 'vitest';

const fail = () => Promise.reject(new Error('down'));

describe('breakerOptionsFromOpossum', () => {
  it("converts opossum's defaults with no warnings", () => {
    const { options, timeoutMs, maxConcurrent, warnings } = breakerOptionsFromOpossum();
    expect(warnings).toEqual([]);
    expect(timeoutMs).toBe(10_000);
    expect(maxConcurrent).toBeUndefined();
    expect(options.openMs).toBe(30_000);
    expect(options.halfOpen).toEqual({ maxProbes: 1, successThreshold: 1, probeTimeoutMs: 10_000 });
    const trip = options.trip as OpossumRateTrip;
    expect(trip).toBeInstanceOf(OpossumRateTrip);
    expect({
      percent: trip.errorThresholdPercentage,
      volume: trip.volumeThreshold,
      windowMs: trip.rollingCountTimeout,
      buckets: trip.rollingCountBuckets,
      bucketMs: trip.bucketMs,
    }).toEqual({ percent: 50, volume: 0, windowMs: 10_000, buckets: 10, bucketMs: 1_000 });
  });

  it('maps name, resetTimeout, timeout and capacity', () => {
    const { options, timeoutMs, maxConcurrent, warnings } = breakerOptionsFromOpossum({
      name: 'payments',
      resetTimeout: 5_000,
      timeout: 800,
      capacity: 20,
    });
    expect(options.name).toBe('payments');
    expect(options.openMs).toBe(5_000);
    expect(timeoutMs).toBe(800);
    expect(options.halfOpen?.probeTimeoutMs).toBe(800);
    expect(maxConcurrent).toBe(20);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^capacity: use bulkhead\(\{ maxConcurrent: 20, maxQueue: 0 \}\)/);
  });

  it('turns errorFilter into failureOn: a filtered error counts as a success, as in opossum', async () => {
    const clock = new VirtualClock();
    const { options } = breakerOptionsFromOpossum({
      errorThresholdPercentage: 0,
      errorFilter: (error) => (error as Error).message === 'not found',
    });
    const breaker = circuitBreaker({ ...options, clock });
    await breaker.execute(() => Promise.reject(new Error('not found'))).catch(() => undefined);
    expect(breaker.stats()).toMatchObject({ state: 'closed', successes: 1, failures: 0 });
    await breaker.execute(fail).catch(() => undefined);
    expect(breaker.state).toBe('open');
  });

  it('lists every option without an exact equivalent in warnings', () => {
    const { warnings, timeoutMs } = breakerOptionsFromOpossum({
      timeout: false,
      maxFailures: 3,
      rollingCountTimeout: 1_000,
      rollingCountBuckets: 3,
      group: 'payments',
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      rotateBucketController: {},
      enabled: false,
      allowWarmUp: true,
      errorThresholdPercentage: 100,
      errorFilter: (_error: unknown, _arg: unknown) => false,
      cache: true,
      coalesce: true,
      abortController: new AbortController(),
      status: {},
    });
    expect(timeoutMs).toBeUndefined();
    const topics = warnings.map((w) => w.slice(0, w.indexOf(':')));
    expect(topics).toEqual([
      'rollingCountTimeout',
      'errorThresholdPercentage',
      'errorFilter',
      'enabled',
      'allowWarmUp',
      'timeout',
      'maxFailures',
      'group',
      'rollingPercentilesEnabled, enableSnapshots',
      'rotateBucketController',
      'cache, cacheTTL, cacheSize, cacheGetKey, cacheTransport',
      'coalesce, coalesceTTL, coalesceSize, coalesceResetOn',
      'abortController, autoRenewAbortController',
      'status',
    ]);
    expect(warnings[0]).toContain('floor(1000 / 3) = 333 ms');
  });

  it("starts open from opossum's saved open state, for the whole resetTimeout", () => {
    const clock = new VirtualClock();
    const { options, warnings } = breakerOptionsFromOpossum({
      resetTimeout: 2_000,
      state: { closed: false, open: true, halfOpen: false, lastTimerAt: 123 },
    });
    const breaker = circuitBreaker({ ...options, clock });
    expect(breaker.stats()).toMatchObject({ state: 'open', openRemainingMs: 2_000 });
    expect(warnings.some((w) => w.startsWith('state.lastTimerAt'))).toBe(true);
    const half = breakerOptionsFromOpossum({ state: { closed: false, halfOpen: true } });
    expect(circuitBreaker({ ...half.options, clock }).state).toBe('half-open');
  });

  it('rejects bad options with one RangeError that lists each of them', () => {
    let caught: unknown;
    try {
      breakerOptionsFromOpossum({
        timeout: -1,
        resetTimeout: Number.NaN,
        rollingCountBuckets: 0,
        volumeThreshold: 1.5,
        capacity: -2,
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidOptionsError);
    expect((caught as InvalidOptionsError).violations.map((v) => v.option)).toEqual([
      'timeout',
      'resetTimeout',
      'rollingCountBuckets',
      'volumeThreshold',
      'capacity',
    ]);
  });
});

describe('opossumRate', () => {
  it('judges only after a failure, so reaching the volume threshold on a success does not open', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, trip: opossumRate({ volumeThreshold: 5 }) });
    for (let i = 0; i < 4; i++) await breaker.execute(fail).catch(() => undefined);
    await breaker.execute(() => 'ok');
    expect(breaker.state).toBe('closed'); // 4 of 5 failed, but the fifth call succeeded
    await breaker.execute(fail).catch(() => undefined);
    expect(breaker.state).toBe('open');
  });

  it('opens strictly above the percentage', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({ clock, trip: opossumRate({ errorThresholdPercentage: 50 }) });
    await breaker.execute(() => 'ok');
    await breaker.execute(fail).catch(() => undefined);
    expect(breaker.state).toBe('closed'); // exactly 50%
    await breaker.execute(fail).catch(() => undefined);
    expect(breaker.state).toBe('open'); // 67%
  });

  it('forgets calls that slid out of the rolling window', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({
      clock,
      trip: opossumRate({
        errorThresholdPercentage: 50,
        rollingCountTimeout: 1_000,
        rollingCountBuckets: 10,
      }),
    });
    await breaker.execute(() => 'ok');
    await breaker.execute(() => 'ok');
    await clock.advance(1_000);
    await breaker.execute(fail).catch(() => undefined);
    expect(breaker.state).toBe('open'); // the two successes are out of the window
  });

  it('rejects bad options with one RangeError', () => {
    expect(() => opossumRate({ rollingCountTimeout: 0, rollingCountBuckets: 1.5 })).toThrow(
      /rollingCountTimeout[\s\S]*rollingCountBuckets/,
    );
  });
});

describe('retryOptionsFromPRetry', () => {
  it("converts p-retry's defaults: 11 attempts, 1 s doubling delays, no warnings", () => {
    const { options, deadlineMs, warnings } = retryOptionsFromPRetry();
    expect(options.maxAttempts).toBe(11);
    expect(deadlineMs).toBeUndefined();
    expect(warnings).toEqual([]);
    const backoff = options.backoff as ExponentialBackoff;
    expect(backoff).toBeInstanceOf(ExponentialBackoff);
    expect({ ...backoff }).toEqual({
      initialMs: 1_000,
      maxMs: P_RETRY_MAX_DELAY_MS,
      factor: 2,
      jitter: 'none',
    });
  });

  it('retries what p-retry retries: every error except its AbortError and non-network TypeErrors', () => {
    const { options } = retryOptionsFromPRetry();
    const ctx = rootContext(new VirtualClock());
    const retryOn = (error: unknown) => options.retryOn!({ ok: false, error }, ctx);
    expect(retryOn(new Error('boom'))).toBe(true);
    expect(retryOn(new TypeError('fetch failed'))).toBe(true);
    expect(retryOn(new TypeError('x is not a function'))).toBe(false);
    expect(retryOn(Object.assign(new Error('stop'), { name: 'AbortError' }))).toBe(false);
    expect(options.retryOn!({ ok: true, value: 1 }, ctx)).toBe(false);
    expect(pRetryStops('a string')).toBe(false);
  });

  it('asks shouldRetry with a p-retry context, and warns that it runs synchronously', async () => {
    const seen: unknown[] = [];
    const { options, warnings } = retryOptionsFromPRetry({
      retries: 3,
      minTimeout: 10,
      shouldRetry: (context) => {
        seen.push({ ...context, error: context.error.message });
        return context.attemptNumber < 2;
      },
    });
    expect(warnings).toHaveLength(1);
    const clock = new VirtualClock();
    const policy = retry({ ...options, clock });
    let calls = 0;
    const result = policy.execute(() => {
      calls++;
      throw new Error(`failure ${calls}`);
    });
    const settled = result.catch((error: Error) => error.message);
    await clock.runAll();
    expect(await settled).toBe('failure 2');
    expect(seen).toEqual([
      { error: 'failure 1', attemptNumber: 1, retriesLeft: 3, retriesConsumed: 0, retryDelay: 10 },
      { error: 'failure 2', attemptNumber: 2, retriesLeft: 2, retriesConsumed: 1, retryDelay: 20 },
    ]);
  });

  it('stops the loop when shouldRetry returns a promise', async () => {
    const { options } = retryOptionsFromPRetry({ shouldRetry: async () => true });
    const policy = retry({ ...options, clock: new VirtualClock() });
    await expect(policy.execute(fail)).rejects.toMatchObject({ code: 'ERR_CALLBACK_FAILED' });
  });

  it('keeps randomize as a multiplier in [1, 2) drawn from the injected random source', () => {
    const { options, warnings } = retryOptionsFromPRetry({ minTimeout: 100, factor: 3, randomize: true });
    expect(warnings[0]).toMatch(/^randomize:/);
    const backoff = options.backoff!;
    expect(backoff.delayMs(1, 0, () => 0)).toBe(100);
    expect(backoff.delayMs(1, 0, () => 0.5)).toBe(150);
    expect(backoff.delayMs(3, 0, () => 0.999)).toBe(Math.round(1.999 * 900));
  });

  it('maps retries: Infinity to effectively unbounded attempts, and maxRetryTime to a deadline', () => {
    const { options, deadlineMs, warnings } = retryOptionsFromPRetry({
      retries: Number.POSITIVE_INFINITY,
      maxRetryTime: 5_000,
    });
    expect(options.maxAttempts).toBe(Number.MAX_SAFE_INTEGER);
    expect(deadlineMs).toBe(5_000);
    expect(warnings[0]).toMatch(/^maxRetryTime: use deadline\(5000\)/);
  });

  it('lists every option without an exact equivalent in warnings', () => {
    const { warnings } = retryOptionsFromPRetry({
      onFailedAttempt: () => undefined,
      shouldConsumeRetry: () => true,
      signal: new AbortController().signal,
      unref: true,
    });
    expect(warnings.map((w) => w.slice(0, w.indexOf(':')))).toEqual([
      'onFailedAttempt',
      'shouldConsumeRetry',
      'signal',
      'unref',
    ]);
  });

  it('rejects bad options with one RangeError that lists each of them', () => {
    let caught: unknown;
    try {
      retryOptionsFromPRetry({
        retries: -1,
        factor: -2,
        minTimeout: Number.NaN,
        randomize: 'yes' as never,
        forever: true,
      } as never);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidOptionsError);
    expect((caught as InvalidOptionsError).violations.map((v) => v.option)).toEqual([
      'retries',
      'factor',
      'minTimeout',
      'randomize',
      'forever',
    ]);
  });
});
