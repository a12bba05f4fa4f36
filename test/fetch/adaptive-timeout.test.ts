import { consecutive } from '@bulwark/circuit-breaker';
import { sleep, VirtualClock } from '@bulwark/clock';
import { DeadlineExceededError, InvalidOptionsError } from '@bulwark/core';
import { type CreateFetchOptions, createFetch } from '@bulwark/fetch';
import { constant } from '@bulwark/retry';
import { describe, expect, it } from 'vitest';
import { fakeFetch, hang, settle } from './helpers.ts';

const URL_A = 'http://a.test/items';
const URL_B = 'http://b.test/items';

/**
 * A fetch whose origin answers every attempt after `answerMs` with `status`,
 * except those `hangs` picks, which never answer.
 */
function setup(options: CreateFetchOptions, answer: { ms: number; status?: number }) {
  const clock = new VirtualClock();
  const hangs = new Set<number>();
  const fake = fakeFetch((request, n) =>
    hangs.has(n)
      ? hang(request)
      : sleep(answer.ms, { clock, signal: request.signal }).then(
          () => new Response('x', { status: answer.status ?? 200 }),
        ),
  );
  const fetch = createFetch({
    clock,
    fetch: fake.fetch,
    backoff: constant(0),
    breakers: false,
    budget: false,
    ...options,
  });
  /** Makes `count` calls one after another, each answered after answer.ms. */
  const warm = async (count: number, url = URL_A): Promise<void> => {
    for (let i = 0; i < count; i++) {
      const call = fetch(url);
      await clock.advance(answer.ms);
      await (await call).text();
    }
  };
  return { clock, fetch, seen: fake.seen, hangs, warm };
}

/** How long a call whose first attempt hangs waits before its second attempt is sent. */
async function cutAfter(ctx: ReturnType<typeof setup>, url = URL_A): Promise<number> {
  ctx.hangs.add(ctx.seen.length + 1);
  const before = ctx.seen.length;
  const started = ctx.clock.now();
  const call = ctx.fetch(url).catch((e: unknown) => e);
  for (let t = 0; t < 5_000 && ctx.seen.length < before + 2; t += 10) {
    await ctx.clock.advance(10);
    await settle();
  }
  const waited = ctx.clock.now() - started;
  await ctx.clock.advance(1_000);
  await call;
  return waited;
}

describe('createFetch({ adaptiveAttemptTimeout })', () => {
  it('cuts a stuck attempt at 1.5 × the p99.9 of its origin (at least 100 ms) once 100 answers are known, and retries it', async () => {
    const ctx = setup({ attemptTimeoutMs: 1_000, adaptiveAttemptTimeout: true }, { ms: 200 });
    await ctx.warm(100);
    await ctx.clock.advance(3_000); // past the window's scheduled refresh
    expect(await cutAfter(ctx)).toBe(300);
  });

  it('uses attemptTimeoutMs until the origin has 100 answers, and keeps one window per origin', async () => {
    const ctx = setup({ attemptTimeoutMs: 1_000, adaptiveAttemptTimeout: true }, { ms: 200 });
    await ctx.warm(99);
    await ctx.clock.advance(3_000);
    expect(await cutAfter(ctx, URL_B)).toBe(1_000);
    await ctx.warm(1);
    await ctx.clock.advance(3_000);
    expect(await cutAfter(ctx)).toBe(300);
    // The other origin has seen only its own attempts: one timed out at 1 s, one answered.
    expect(await cutAfter(ctx, URL_B)).toBe(1_000);
  });

  it('forgets an origin’s latency when its breaker trips: after the fault its attempts get attemptTimeoutMs again', async () => {
    const clock = new VirtualClock();
    let mode: 'fast' | 'down' | 'slow' = 'fast';
    const fake = fakeFetch(async (request) => {
      if (mode === 'down') return new Response('down', { status: 503 });
      await sleep(mode === 'fast' ? 20 : 400, { clock, signal: request.signal });
      return new Response('ok');
    });
    const fetch = createFetch({
      clock,
      fetch: fake.fetch,
      backoff: constant(0),
      budget: false,
      maxAttempts: 1,
      attemptTimeoutMs: 1_000,
      adaptiveAttemptTimeout: true,
      breakers: { trip: consecutive(5), openMs: 100 },
    });
    const call = async (url: string): Promise<unknown> => {
      const p = fetch(url).then(
        (r) => r.status,
        (e: unknown) => e,
      );
      for (let i = 0; i < 120 && (await Promise.race([p, Promise.resolve(undefined)])) === undefined; i++) {
        await clock.advance(10);
        await settle();
      }
      return p;
    };
    for (let i = 0; i < 100; i++) {
      expect(await call(URL_A)).toBe(200);
      expect(await call(URL_B)).toBe(200);
    }
    await clock.advance(3_000);
    // Both origins answer in 20 ms: their limits are at the 100 ms floor.
    mode = 'down';
    for (let i = 0; i < 5; i++) expect(await call(URL_A)).toBe(503);
    expect(fetch.breakers!.peek('http://a.test')!.state).toBe('open');
    await clock.advance(100);
    // Back, but slow (a queue behind the fault): the probe is not cut at 100 ms.
    mode = 'slow';
    expect(await call(URL_A)).toBe(200);
    expect(fetch.breakers!.peek('http://a.test')!.state).toBe('closed');
    // The other origin's breaker never tripped: it keeps what it learned, and cuts at 100 ms.
    expect(await call(URL_B)).toBeInstanceOf(DeadlineExceededError);
  });

  it('does not count fast 503s: they say nothing of how long an answer takes', async () => {
    const ctx = setup(
      { attemptTimeoutMs: 1_000, adaptiveAttemptTimeout: true, maxAttempts: 2 },
      { ms: 1, status: 503 },
    );
    for (let i = 0; i < 120; i++) {
      const call = ctx.fetch(URL_A);
      await ctx.clock.advance(1);
      await settle();
      await ctx.clock.advance(1);
      expect((await call).status).toBe(503);
    }
    await ctx.clock.advance(3_000);
    expect(await cutAfter(ctx)).toBe(1_000);
  });

  it('takes adaptiveTimeout() options, and a timed-out attempt ends as DeadlineExceededError when retries are off', async () => {
    const ctx = setup(
      { attemptTimeoutMs: 1_000, adaptiveAttemptTimeout: { minSamples: 5, multiplier: 2 }, maxAttempts: 1 },
      { ms: 200 },
    );
    await ctx.warm(5);
    await ctx.clock.advance(3_000);
    ctx.hangs.add(ctx.seen.length + 1);
    const call = ctx.fetch(URL_A).catch((e: unknown) => e);
    await ctx.clock.advance(399);
    await settle();
    expect(ctx.seen.at(-1)!.request.signal.aborted).toBe(false);
    await ctx.clock.advance(1);
    const error = await call;
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toMatchObject({ source: 'timeout', budgetMs: 400 });
  });

  it('is off by default: attemptTimeoutMs is the limit whatever the latency', async () => {
    const ctx = setup({ attemptTimeoutMs: 1_000 }, { ms: 200 });
    await ctx.warm(120);
    await ctx.clock.advance(3_000);
    expect(await cutAfter(ctx)).toBe(1_000);
  });

  it('refuses invalid adaptive options with the others, named by their path', () => {
    let error: unknown;
    try {
      createFetch({
        attemptTimeoutMs: 1_000,
        adaptiveAttemptTimeout: { minMs: 5_000, percentile: 2, clock: new VirtualClock() } as never,
        maxAttempts: 0,
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    const options = (error as InvalidOptionsError).violations.map((v) => v.option);
    expect(options).toEqual(
      expect.arrayContaining([
        'maxAttempts',
        'adaptiveAttemptTimeout.clock',
        'adaptiveAttemptTimeout.minMs',
        'adaptiveAttemptTimeout.percentile',
      ]),
    );
    expect(() => createFetch({ adaptiveAttemptTimeout: 'yes' as never })).toThrow(/adaptiveAttemptTimeout/);
    expect(() => createFetch({ adaptiveAttemptTimeout: { bogus: 1 } as never })).toThrow(
      /adaptiveAttemptTimeout\.bogus/,
    );
  });

  it('names, for an unknown adaptive option, only the options the fetch lets you tune', () => {
    let message = '';
    try {
      createFetch({ adaptiveAttemptTimeout: { windowSize: 2 } as never });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/adaptiveAttemptTimeout\.windowSize/);
    expect(message).toMatch(/multiplier/);
    expect(message).not.toMatch(/sampleOn|propagate|clock/);
  });
});
