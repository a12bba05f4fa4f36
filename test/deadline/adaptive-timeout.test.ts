import { sleep, VirtualClock } from '@bulwark/clock';
import { type ExecutionContext, InvalidOptionsError, isBulwarkError, pipeline } from '@bulwark/core';
import {
  ADAPTIVE_TIMEOUT_DEFAULTS,
  AdaptiveTimeoutPolicy,
  adaptiveTimeout,
  DeadlineExceededError,
  deadline,
} from '@bulwark/deadline';
import { checkAdaptiveTimeoutOptions } from '@bulwark/deadline/authoring';
import { isRetryableError, retry } from '@bulwark/retry';
import { describe, expect, it } from 'vitest';

/** A function that waits on ctx.signal and never finishes by itself. */
const hang = (ctx: ExecutionContext) =>
  new Promise<never>((_, reject) => {
    ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
  });

/** Runs one attempt through `policy` that answers after `ms`, returning how it ended. */
async function attempt(policy: AdaptiveTimeoutPolicy, clock: VirtualClock, ms: number): Promise<unknown> {
  const p = policy
    .execute((ctx) => sleep(ms, { clock, signal: ctx.signal }).then(() => 'ok'))
    .catch((e: unknown) => e);
  await clock.advance(ms);
  return p;
}

describe('adaptiveTimeout()', () => {
  it('refuses a latency sample that is not a number of milliseconds >= 0, naming it, and keeps its limit', () => {
    const clock = new VirtualClock();
    const policy = adaptiveTimeout(1_000, { clock, minSamples: 1, sampleSize: 8 });
    for (const bad of [Number.NaN, -1, '5' as unknown as number]) {
      expect(() => policy.recordLatency(bad)).toThrow(RangeError);
    }
    expect(() => policy.recordLatency(Number.NaN)).toThrow(/recordLatency.*NaN/);
    expect(() => policy.recordLatency(5, Number.NaN)).toThrow(/recordLatency.*now.*NaN/);
    expect(policy.currentMs()).toBe(1_000);
    policy.recordLatency(200);
    expect(policy.currentMs()).toBe(300);
  });

  it('is maxMs until minSamples latencies are known', async () => {
    const clock = new VirtualClock();
    const policy = adaptiveTimeout(2_000, { clock, minSamples: 5 });
    expect(policy.currentMs()).toBe(2_000);
    for (let i = 0; i < 4; i++) expect(await attempt(policy, clock, 50)).toBe('ok');
    expect(policy.currentMs()).toBe(2_000);
    expect(await attempt(policy, clock, 50)).toBe('ok');
    await clock.advance(3_000); // past the scheduled refresh
    expect(policy.currentMs()).toBe(100); // 1.5 × 50 = 75, raised to the 100 ms floor
  });

  it('forget() drops every sample: maxMs until minSamples answers are in again', async () => {
    const clock = new VirtualClock();
    const policy = adaptiveTimeout(2_000, { clock, minSamples: 5 });
    for (let i = 0; i < 5; i++) expect(await attempt(policy, clock, 50)).toBe('ok');
    await clock.advance(3_000);
    expect(policy.currentMs()).toBe(100);
    policy.forget();
    expect(policy.currentMs()).toBe(2_000);
    expect(policy.freshSamples).toBe(0);
    // A hung attempt right after gets the whole 2 s, not the 100 ms learned before.
    const cut = policy.execute(hang).catch((e: unknown) => e);
    await clock.advance(1_999);
    expect(await Promise.race([cut, Promise.resolve('running')])).toBe('running');
    await clock.advance(1);
    expect(await cut).toBeInstanceOf(DeadlineExceededError);
    for (let i = 0; i < 4; i++) expect(await attempt(policy, clock, 60)).toBe('ok');
    await clock.advance(3_000);
    expect(policy.currentMs()).toBe(2_000); // 4 fresh answers and one unknown: not enough, and unknown
    policy.forget();
    for (let i = 0; i < 5; i++) expect(await attempt(policy, clock, 80)).toBe('ok');
    await clock.advance(3_000);
    expect(policy.currentMs()).toBe(120); // 1.5 × 80, from the new answers only
  });

  it('is multiplier × the percentile of recent latencies, within [minMs, maxMs]', () => {
    const clock = new VirtualClock();
    // sampleSize 200: the percentile is recomputed every 25 samples, so at the 100th.
    const policy = adaptiveTimeout(1_000, {
      clock,
      percentile: 0.99,
      minMs: 10,
      minSamples: 10,
      sampleSize: 200,
    });
    // Latencies 1..100 ms: the p99 (nearest rank) is 99.
    for (let ms = 1; ms <= 100; ms++) policy.recordLatency(ms);
    expect(policy.currentMs()).toBeCloseTo(148.5, 9);

    const capped = adaptiveTimeout(120, { clock, minMs: 10, minSamples: 10, sampleSize: 200 });
    for (let ms = 1; ms <= 100; ms++) capped.recordLatency(ms);
    expect(capped.currentMs()).toBe(120);

    const floored = adaptiveTimeout(1_000, { clock, minMs: 500, minSamples: 10, sampleSize: 200 });
    for (let ms = 1; ms <= 100; ms++) floored.recordLatency(ms);
    expect(floored.currentMs()).toBe(500);
  });

  it('times out an attempt at the adapted limit, retryably, and aborts its signal', async () => {
    const clock = new VirtualClock();
    const policy = adaptiveTimeout(2_000, { clock, minSamples: 10, sampleSize: 16 });
    for (let i = 0; i < 16; i++) policy.recordLatency(200);
    expect(policy.currentMs()).toBe(300);
    let signal: AbortSignal | undefined;
    const p = policy
      .execute((ctx) => {
        signal = ctx.signal;
        return hang(ctx);
      })
      .catch((e: unknown) => e);
    await clock.advance(299);
    expect(signal?.aborted).toBe(false);
    await clock.advance(1);
    const error = await p;
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toMatchObject({ source: 'timeout', budgetMs: 300 });
    expect(isRetryableError(error)).toBe(true);
    expect(signal?.reason).toBe(error);
  });

  it('goes back to maxMs once timed-out attempts (of unknown latency) reach the percentile', async () => {
    const clock = new VirtualClock();
    // 200 samples: the p99 (nearest rank) is the 3rd largest.
    const policy = adaptiveTimeout(2_000, { clock, percentile: 0.99, minSamples: 10, sampleSize: 200 });
    for (let i = 0; i < 200; i++) policy.recordLatency(100);
    expect(policy.currentMs()).toBe(150);
    // The service slows to 1 s per answer: two timeouts are below the p99's rank...
    for (let i = 0; i < 2; i++) {
      expect(await attempt(policy, clock, 1_000)).toBeInstanceOf(DeadlineExceededError);
      expect(policy.currentMs()).toBe(150);
    }
    // ...the third reaches it: the p99 is unknown, so the limit is maxMs again, at once.
    const third = await attempt(policy, clock, 1_000);
    expect(isBulwarkError(third, 'ERR_DEADLINE_EXCEEDED')).toBe(true);
    expect(policy.currentMs()).toBe(2_000);
    expect(await attempt(policy, clock, 1_000)).toBe('ok');
  });

  it('by default (p99.9) one timeout in a window of 512 puts the limit back to maxMs', async () => {
    const clock = new VirtualClock();
    const policy = adaptiveTimeout(2_000, { clock });
    for (let i = 0; i < 512; i++) policy.recordLatency(100);
    expect(policy.currentMs()).toBe(150);
    expect(await attempt(policy, clock, 1_000)).toBeInstanceOf(DeadlineExceededError);
    expect(policy.currentMs()).toBe(2_000);
  });

  it('adapts again from the answers once the timed-out samples have left the window', async () => {
    const clock = new VirtualClock();
    const policy = adaptiveTimeout(2_000, { clock, minSamples: 4, sampleSize: 8 });
    for (let i = 0; i < 8; i++) policy.recordLatency(100);
    expect(await attempt(policy, clock, 1_000)).toBeInstanceOf(DeadlineExceededError);
    expect(policy.currentMs()).toBe(2_000);
    // Eight answers of 1 s push the timeout out of the ring of 8.
    for (let i = 0; i < 8; i++) expect(await attempt(policy, clock, 1_000)).toBe('ok');
    expect(policy.currentMs()).toBe(1_500);
  });

  it('never lets an attempt outlive the deadline around it, and does not count the deadline as a sample', async () => {
    const clock = new VirtualClock();
    const policy = adaptiveTimeout(5_000, { clock, minSamples: 1, sampleSize: 8 });
    const p = pipeline(deadline(250, { clock }), policy)
      .execute((ctx) => hang(ctx))
      .catch((e: unknown) => e);
    await clock.advance(250);
    expect(await p).toMatchObject({ source: 'deadline', budgetMs: 250 });
    // The cut attempt took 250 ms only because the deadline ended it: no sample.
    expect(policy.currentMs()).toBe(5_000);
    expect(policy.freshSamples).toBe(0);
  });

  it('counts results only by default: fast failures do not pull the limit down', async () => {
    const clock = new VirtualClock();
    const policy = adaptiveTimeout(2_000, { clock, minSamples: 4, sampleSize: 8 });
    for (let i = 0; i < 8; i++) {
      const p = policy.execute(() => Promise.reject(new Error('refused'))).catch((e: unknown) => e);
      await clock.advance(1);
      expect(await p).toMatchObject({ message: 'refused' });
    }
    await clock.advance(3_000);
    expect(policy.currentMs()).toBe(2_000);
  });

  it('rejects with a CallbackError naming sampleOn when sampleOn throws', async () => {
    const clock = new VirtualClock();
    const bug = new Error('classifier bug');
    const policy = adaptiveTimeout(1_000, {
      clock,
      sampleOn: () => {
        throw bug;
      },
    });
    const error = await policy
      .execute(() => 'v')
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isBulwarkError(error, 'ERR_CALLBACK_FAILED')).toBe(true);
    expect((error as { callback?: string }).callback).toBe('sampleOn');
    expect((error as Error).cause).toBe(bug);
  });

  it('sampleOn decides which outcomes are samples', async () => {
    const clock = new VirtualClock();
    const seen: boolean[] = [];
    const policy = adaptiveTimeout(2_000, {
      clock,
      minSamples: 2,
      sampleSize: 8,
      minMs: 0,
      sampleOn: (outcome) => {
        seen.push(outcome.ok);
        return outcome.ok && outcome.value !== 'slow-but-ignored';
      },
    });
    for (const [ms, value] of [
      [400, 'slow-but-ignored'],
      [40, 'ok'],
      [40, 'ok'],
    ] as const) {
      const p = policy.execute((ctx) => sleep(ms, { clock, signal: ctx.signal }).then(() => value));
      await clock.advance(ms);
      await p;
    }
    await clock.advance(3_000);
    expect(seen).toEqual([true, true, true]);
    expect(policy.currentMs()).toBe(60);
  });

  it('forgets samples older than sampleTtlMs', async () => {
    const clock = new VirtualClock();
    const policy = adaptiveTimeout(1_000, { clock, minSamples: 4, sampleSize: 8, sampleTtlMs: 5_000 });
    for (let i = 0; i < 8; i++) policy.recordLatency(400);
    expect(policy.currentMs()).toBe(600);
    await clock.advance(5_001);
    expect(policy.currentMs()).toBe(1_000);
  });

  it('a window of sampleSize: old samples are overwritten by new ones', () => {
    const clock = new VirtualClock();
    const policy = adaptiveTimeout(10_000, { clock, minSamples: 8, sampleSize: 8, minMs: 0 });
    for (let i = 0; i < 8; i++) policy.recordLatency(1_000);
    expect(policy.currentMs()).toBe(1_500);
    for (let i = 0; i < 8; i++) policy.recordLatency(100);
    expect(policy.currentMs()).toBe(150);
  });

  it('a caller abort is passed on unchanged and is no sample', async () => {
    const clock = new VirtualClock();
    const policy = adaptiveTimeout(2_000, { clock, minSamples: 1, sampleSize: 8 });
    const controller = new AbortController();
    const reason = new Error('caller left');
    const p = policy.execute((ctx) => hang(ctx), { signal: controller.signal }).catch((e: unknown) => e);
    await clock.advance(700);
    controller.abort(reason);
    expect(await p).toBe(reason);
    await clock.advance(3_000);
    expect(policy.freshSamples).toBe(0);
  });

  it('inside retry(), a timed-out attempt is retried', async () => {
    const clock = new VirtualClock();
    const policy = adaptiveTimeout(1_000, { clock, minSamples: 4, sampleSize: 8 });
    for (let i = 0; i < 8; i++) policy.recordLatency(100);
    const attempts: number[] = [];
    const p = pipeline(retry({ maxAttempts: 2, backoff: { delayMs: () => 0 }, clock }), policy).execute(
      async (ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt === 1) return hang(ctx);
        return 'second';
      },
    );
    await clock.advance(150);
    expect(await p).toBe('second');
    expect(attempts).toEqual([1, 2]);
  });

  it('is a per-attempt limit for pipeline(): outside retry() it is refused', () => {
    expect(() => pipeline(adaptiveTimeout(1_000), retry())).toThrow(InvalidOptionsError);
  });

  it('refuses invalid options all at once, naming each value', () => {
    let error: unknown;
    try {
      adaptiveTimeout(50, {
        percentile: 1,
        multiplier: 0.5,
        minMs: 80,
        minSamples: 0,
        sampleSize: 4,
        sampleTtlMs: 0,
        sampleOn: 'yes' as never,
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    const options = (error as InvalidOptionsError).violations.map((v) => v.option);
    expect(options).toEqual(
      expect.arrayContaining([
        'percentile',
        'multiplier',
        'minMs',
        'minSamples',
        'sampleSize',
        'sampleTtlMs',
        'sampleOn',
      ]),
    );
    expect(() => adaptiveTimeout(0)).toThrow(/maxMs/);
    expect(() => adaptiveTimeout(10, { minSamples: 600 })).toThrow(/minSamples/);
  });

  it('checkAdaptiveTimeoutOptions() resolves options once into a frozen object the constructor takes as it is', async () => {
    const clock = new VirtualClock();
    const resolved = checkAdaptiveTimeoutOptions('adaptiveTimeout()', 400, {
      clock,
      multiplier: 2,
      minMs: 10,
      minSamples: 8,
      sampleSize: 8,
    });
    expect(Object.isFrozen(resolved)).toBe(true);
    expect(resolved).toMatchObject({
      maxMs: 400,
      multiplier: 2,
      minMs: 10,
      minSamples: 8,
      sampleSize: 8,
      percentile: ADAPTIVE_TIMEOUT_DEFAULTS.percentile,
      sampleTtlMs: ADAPTIVE_TIMEOUT_DEFAULTS.sampleTtlMs,
      propagate: false,
      clock,
    });
    // Two policies from one resolved object: each has its own window.
    const a = new AdaptiveTimeoutPolicy(resolved);
    const b = new AdaptiveTimeoutPolicy(resolved);
    expect([a.maxMs, a.minMs, a.multiplier, a.clock]).toEqual([400, 10, 2, clock]);
    for (let i = 0; i < 8; i++) a.recordLatency(20);
    expect(a.currentMs()).toBe(40);
    expect(b.currentMs()).toBe(400);
    // Bad options are listed as adaptiveTimeout() lists them.
    expect(() => checkAdaptiveTimeoutOptions('OriginTimeouts', 10, { minMs: 20, bogus: 1 } as never)).toThrow(
      /OriginTimeouts: invalid options \(2\)[\s\S]*bogus: not an option[\s\S]*minMs must be <= maxMs \(10\), got 20/,
    );
    // An object that merely looks resolved is checked as options.
    expect(() => new AdaptiveTimeoutPolicy({ ...resolved } as never)).toThrow(InvalidOptionsError);
  });

  it('documents its defaults', () => {
    expect(ADAPTIVE_TIMEOUT_DEFAULTS).toEqual({
      percentile: 0.999,
      multiplier: 1.5,
      minMs: 100,
      minSamples: 100,
      sampleSize: 512,
      sampleTtlMs: 30_000,
    });
    expect(Object.isFrozen(ADAPTIVE_TIMEOUT_DEFAULTS)).toBe(true);
  });
});
