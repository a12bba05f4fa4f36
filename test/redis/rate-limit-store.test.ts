// The Redis rate-limit store's behaviour around Redis (timeouts, failures,
// replies it cannot trust), on a scripted client and the virtual clock. The
// script itself runs against a real Redis in test/integration.
import { VirtualClock } from '@bulwark/clock';
import { deadlineTimers } from '@bulwark/clock/authoring';
import { InvalidOptionsError, isBulwarkError } from '@bulwark/core';
import { memoryRateLimitStore, RateLimitStoreError, rateLimit } from '@bulwark/rate-limit';
import { type RedisScriptClient, redisRateLimitStore, type ScriptArguments } from '@bulwark/redis';
import { describe, expect, it } from 'vitest';

/** A client whose every script call is answered by `answer` (a value, a thrown error or a promise). */
function scripted(answer: (call: number, args: ScriptArguments) => unknown) {
  const calls: string[] = [];
  const client: RedisScriptClient = {
    async eval(_script, args) {
      calls.push('eval');
      return answer(calls.length, args);
    },
    async evalSha(_sha, args) {
      calls.push('evalSha');
      return answer(calls.length, args);
    },
  };
  return { client, calls };
}

const never = () => new Promise<never>(() => {});

describe('redisRateLimitStore() around Redis', () => {
  it('falls back to EVAL once when the server lacks the script', async () => {
    const { client, calls } = scripted((n) => {
      if (n === 1) throw new Error('NOSCRIPT No matching script');
      return [1, 0, 4, 100_000];
    });
    const limit = rateLimit({
      ratePerSecond: 10,
      burst: 5,
      store: redisRateLimitStore(client, { onStoreError: 'fail-closed' }),
    });
    await expect(limit.execute(() => 'ok')).resolves.toBe('ok');
    expect(calls).toEqual(['evalSha', 'eval']);
  });

  it('sends the key inside a hash tag and the rule in microseconds', async () => {
    let seen: ScriptArguments | undefined;
    const { client } = scripted((_n, args) => {
      seen = args;
      return [1, 0, 0, 0];
    });
    const store = redisRateLimitStore(client, { onStoreError: 'fail-closed', prefix: 'api:' });
    await rateLimit({ ratePerSecond: 200, burst: 20, store, key: 'tenant-7' }).execute(() => 1);
    // interval, tolerance (burst × interval), horizon, longest accepted delay, expiry period
    // (the drain time, 21 intervals = 105 ms)
    expect(seen).toEqual({
      keys: ['api:{tenant-7}'],
      arguments: ['5000', '100000', '100000', '0', '105000'],
    });
  });

  it('moves a key’s expiry by the drain time, at least 1 ms and at most 1 s, the same for every instance', async () => {
    const periods: string[] = [];
    const { client } = scripted((_n, args) => {
      periods.push(args.arguments[4]!);
      return 0;
    });
    const store = redisRateLimitStore(client, { onStoreError: 'fail-closed' });
    const rules = [
      { ratePerSecond: 200, burst: 20 }, // 21 × 5 ms
      { ratePerSecond: 3, burst: 1 }, // 2 × 333.3 ms, rounded up to whole milliseconds
      { ratePerSecond: 1, burst: 10 }, // 11 s, capped at 1 s
      { ratePerSecond: 1e9, burst: 1_000 }, // about 1 µs, raised to 1 ms
    ];
    for (const r of rules) await rateLimit({ ...r, store, key: 'k' }).execute(() => 1);
    expect(periods).toEqual(['105000', '667000', '1000000', '1000']);
  });

  it('reads an integer reply: at or above 0 admitted now (TAT − now), below 0 refused (− retry-after)', async () => {
    const clock = new VirtualClock();
    const replies = [5_000, 100_000, 66_667, -2_500];
    const { client } = scripted((n) => replies[n - 1]);
    const store = redisRateLimitStore(client, { onStoreError: 'fail-closed', clock });
    const rule = rateLimit({ ratePerSecond: 200, burst: 20, store }).rule;
    const take = () => store.take('k', rule, { now: 0, maxDelayMs: 0, budgetMs: Infinity });
    // An idle key: one interval of the 20 used.
    expect(await take()).toEqual({ allowed: true, delayMs: 0, retryAfterMs: 0, remaining: 19, resetMs: 5 });
    // The whole burst used.
    expect(await take()).toEqual({ allowed: true, delayMs: 0, retryAfterMs: 0, remaining: 0, resetMs: 100 });
    expect((await take()).remaining).toBe(6);
    const refused = await take();
    expect(refused).toEqual({ allowed: false, delayMs: 0, retryAfterMs: 2.5, remaining: 0, resetMs: 97.5 });
    // The refusal is cached until its retry-after.
    expect((await take()).allowed).toBe(false);
    expect(store.stats()).toEqual({ roundTrips: 4, cachedRefusals: 1, storeErrors: 0 });
  });

  it('reads remaining right when the interval is not a whole number of microseconds', async () => {
    // 300/s: 3,333.33 µs per call; an idle key's first call leaves 2 of 3, the reply rounded to 3,333.
    const { client } = scripted(() => 3_333);
    const store = redisRateLimitStore(client, { onStoreError: 'fail-closed' });
    const rule = rateLimit({ ratePerSecond: 300, burst: 3, store }).rule;
    const decision = await store.take('k', rule, { now: 0, maxDelayMs: 0, budgetMs: Infinity });
    expect(decision.remaining).toBe(2);
  });

  it('times a decision out on the injected clock and fails closed with a typed error', async () => {
    const clock = new VirtualClock();
    const { client } = scripted(never);
    const store = redisRateLimitStore(client, { onStoreError: 'fail-closed', timeoutMs: 50, clock });
    const limit = rateLimit({ ratePerSecond: 10, burst: 1, store, clock });
    const result = limit.execute(() => 'ran').catch((e: unknown) => e);
    await clock.advance(49);
    expect(store.stats().storeErrors).toBe(0);
    await clock.advance(1);
    const error = (await result) as RateLimitStoreError;
    expect(error).toBeInstanceOf(RateLimitStoreError);
    expect(error.code).toBe('ERR_STORE_UNAVAILABLE');
    expect(error.failure).toBe('timeout');
    expect(clock.pendingTimers).toBe(0);
  });

  it('times decisions in flight with one clock timer, and leaves nothing pending once they are answered', async () => {
    const clock = new VirtualClock();
    const answers: Array<(reply: number) => void> = [];
    const { client } = scripted(() => new Promise<number>((resolve) => answers.push(resolve)));
    const store = redisRateLimitStore(client, { onStoreError: 'fail-closed', timeoutMs: 50, clock });
    const limit = rateLimit({ ratePerSecond: 1_000, burst: 100, store, clock });
    const results = Promise.allSettled(Array.from({ length: 10 }, () => limit.execute(() => 'ran')));
    await clock.advance(0);
    expect(answers).toHaveLength(10);
    expect(deadlineTimers(clock).pending).toBe(10);
    expect(clock.pendingTimers).toBe(1);
    // Nine answer in time; the tenth never does and times out at 50 ms.
    for (const answer of answers.slice(0, 9)) answer(0);
    await clock.advance(10);
    expect(deadlineTimers(clock).pending).toBe(1);
    await clock.advance(40);
    const settled = await results;
    expect(settled.filter((r) => r.status === 'fulfilled')).toHaveLength(9);
    const timedOut = settled.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((timedOut.reason as RateLimitStoreError).failure).toBe('timeout');
    expect(deadlineTimers(clock).pending).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    expect(store.stats()).toMatchObject({ roundTrips: 10, storeErrors: 1 });
  });

  it('answers within the caller’s deadline when it is shorter than timeoutMs', async () => {
    const clock = new VirtualClock();
    const { client } = scripted(never);
    const store = redisRateLimitStore(client, { onStoreError: 'fail-open', timeoutMs: 1_000, clock });
    const decision = store.take(
      'k',
      { intervalMs: 100, burst: 1, horizonMs: 100 },
      { now: 0, maxDelayMs: 0, budgetMs: 20 },
    );
    await clock.advance(20);
    await expect(decision).resolves.toMatchObject({ allowed: true });
  });

  it('fails open when told to: admits, and reports the error through onStoreError', async () => {
    const clock = new VirtualClock();
    const { client } = scripted(() => {
      throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
    });
    const store = redisRateLimitStore(client, { onStoreError: 'fail-open', clock });
    const seen: RateLimitStoreError[] = [];
    store.onStoreError((e) => seen.push(e));
    const limit = rateLimit({ ratePerSecond: 1, burst: 1, store, clock });
    expect(await Promise.all([1, 2, 3].map(() => limit.execute(() => 'ran')))).toEqual(['ran', 'ran', 'ran']);
    expect(seen.map((e) => e.failure)).toEqual(['unavailable', 'unavailable', 'unavailable']);
    expect(seen[0]!.message).toContain('ECONNREFUSED');
  });

  it('judges by the insurance limiter, scaled by insuranceShare, while Redis cannot decide', async () => {
    const clock = new VirtualClock();
    const { client } = scripted(() => {
      throw new Error('READONLY You can’t write against a read only replica.');
    });
    const store = redisRateLimitStore(client, {
      onStoreError: 'fail-open',
      insurance: memoryRateLimitStore(),
      insuranceShare: 0.25,
      clock,
    });
    const limit = rateLimit({ ratePerSecond: 40, burst: 8, store, clock });
    let admitted = 0;
    for (let i = 0; i < 10; i++) await limit.execute(() => admitted++).catch(() => undefined);
    // A quarter of the fleet's burst of 8.
    expect(admitted).toBe(2);
    await clock.advance(100); // a quarter of 40/s is one call per 100 ms
    await limit.execute(() => admitted++);
    expect(admitted).toBe(3);
  });

  it('turns a script error or an unexpected reply into a typed error, never a raw one', async () => {
    for (const answer of [
      () => {
        throw new Error('ERR Error running script (call to f_x): @user_script:1: oops');
      },
      () => 'OK',
      () => [1, 'x', 0, 0],
      () => [7, 0, 0, 0],
      () => 1.5,
      () => Number.NaN,
    ]) {
      const { client } = scripted(answer);
      const limit = rateLimit({
        ratePerSecond: 1,
        burst: 1,
        store: redisRateLimitStore(client, { onStoreError: 'fail-closed' }),
      });
      const error = await limit.execute(() => 1).catch((e: unknown) => e);
      expect(isBulwarkError(error, 'ERR_STORE_UNAVAILABLE')).toBe(true);
      expect((error as RateLimitStoreError).failure).toBe('unavailable');
    }
  });

  it('reports a value it did not write as corrupt, following the choice', async () => {
    const { client } = scripted(() => ['corrupt', 'value']);
    const closed = rateLimit({
      ratePerSecond: 1,
      burst: 1,
      store: redisRateLimitStore(client, { onStoreError: 'fail-closed', prefix: 'p:' }),
    });
    const error = (await closed.execute(() => 1).catch((e: unknown) => e)) as RateLimitStoreError;
    expect(error.failure).toBe('corrupt');
    expect(error.message).toContain('"p:{default}"');
    const open = rateLimit({
      ratePerSecond: 1,
      burst: 1,
      store: redisRateLimitStore(client, { onStoreError: 'fail-open' }),
    });
    await expect(open.execute(() => 'ran')).resolves.toBe('ran');
  });

  it('refuses a hot refused key locally until its retryAfterMs, with no round trip', async () => {
    const clock = new VirtualClock();
    const { client, calls } = scripted(() => [0, 250_000, 0, 1_000_000]);
    const store = redisRateLimitStore(client, { onStoreError: 'fail-closed', clock });
    const limit = rateLimit({ ratePerSecond: 4, burst: 4, store, clock });
    const first = (await limit.execute(() => 1).catch((e: unknown) => e)) as { retryAfterMs: number };
    expect(first.retryAfterMs).toBe(250);
    await clock.advance(100);
    const second = (await limit.execute(() => 1).catch((e: unknown) => e)) as { retryAfterMs: number };
    expect(second.retryAfterMs).toBe(150);
    expect(calls.length).toBe(1);
    expect(store.stats()).toEqual({ roundTrips: 1, cachedRefusals: 1, storeErrors: 0 });
    await clock.advance(150);
    await limit.execute(() => 1).catch(() => undefined);
    expect(calls.length).toBe(2);
  });

  it('asks Redis rather than the cache when the caller would wait longer than the cached refusal', async () => {
    const clock = new VirtualClock();
    const { client, calls } = scripted((n) => (n === 1 ? [0, 250_000, 0, 0] : [1, 250_000, 0, 500_000]));
    const store = redisRateLimitStore(client, { onStoreError: 'fail-closed', clock });
    const rule = { intervalMs: 250, burst: 1, horizonMs: 10_250 };
    await store.take('k', rule, { now: 0, maxDelayMs: 0, budgetMs: Infinity });
    const waited = await store.take('k', rule, { now: 0, maxDelayMs: 1_000, budgetMs: Infinity });
    expect(waited).toMatchObject({ allowed: true, delayMs: 250 });
    expect(calls.length).toBe(2);
  });

  it('refuses an unknown option', () => {
    const { client } = scripted(() => [1, 0, 0, 0]);
    expect(() => redisRateLimitStore(client, { onStoreError: 'fail-open', timeout: 50 } as never)).toThrow(
      /timeout/,
    );
  });

  it('requires an explicit onStoreError and lists every invalid option at once', () => {
    const { client } = scripted(() => [1, 0, 0, 0]);
    let error: unknown;
    try {
      redisRateLimitStore({} as RedisScriptClient, {
        onStoreError: undefined as never,
        prefix: 'a{b}',
        timeoutMs: 0,
        maxCachedKeys: -1,
        insuranceShare: 2,
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).violations.map((v) => v.option)).toEqual([
      'client',
      'onStoreError',
      'insuranceShare',
      'prefix',
      'timeoutMs',
      'maxCachedKeys',
    ]);
    expect(() =>
      redisRateLimitStore(client, { onStoreError: 'fail-closed', insurance: memoryRateLimitStore() }),
    ).toThrow(/insurance must be left out with onStoreError: 'fail-closed'/);
  });
});
