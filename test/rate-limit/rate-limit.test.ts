import { VirtualClock } from '@bulwark/clock';
import { InvalidOptionsError, isBulwarkError, pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import {
  gcra,
  MemoryRateLimitStore,
  memoryRateLimitStore,
  RATE_LIMIT_MAX_WAIT_MS,
  RateLimitedError,
  type RateLimitRule,
  rateLimit,
} from '@bulwark/rate-limit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/** Calls `execute` `n` times and counts the admitted calls. */
async function admitted(
  policy: { execute: (fn: () => number) => Promise<number> },
  n: number,
): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    try {
      await policy.execute(() => 1);
      ok++;
    } catch (error) {
      if (!isBulwarkError(error, 'ERR_RATE_LIMITED')) throw error;
    }
  }
  return ok;
}

describe('rateLimit()', () => {
  it('admits exactly burst calls at once on an idle key, then refuses', async () => {
    const clock = new VirtualClock();
    const limit = rateLimit({ ratePerSecond: 10, burst: 5, clock });
    expect(await admitted(limit, 20)).toBe(5);
  });

  it('admits burst + rate × t calls over t seconds when called as fast as possible', async () => {
    const clock = new VirtualClock();
    const limit = rateLimit({ ratePerSecond: 200, burst: 20, clock });
    let total = await admitted(limit, 100);
    // Every millisecond for 5 s, try 3 calls.
    for (let ms = 1; ms <= 5_000; ms++) {
      await clock.advance(1);
      total += await admitted(limit, 3);
    }
    expect(total).toBe(200 * 5 + 20);
  });

  it('admits one call per interval at the sustained rate and never more', async () => {
    const clock = new VirtualClock();
    const limit = rateLimit({ ratePerSecond: 4, burst: 1, clock });
    const times: number[] = [];
    for (let ms = 0; ms <= 2_000; ms += 50) {
      if ((await admitted(limit, 1)) === 1) times.push(clock.now());
      await clock.advance(50);
    }
    expect(times).toEqual([0, 250, 500, 750, 1000, 1250, 1500, 1750, 2000]);
  });

  it('refuses with ERR_RATE_LIMITED and the exact retryAfterMs, after which one call passes', async () => {
    const clock = new VirtualClock();
    const limit = rateLimit({ ratePerSecond: 10, burst: 2, clock, name: 'orders' });
    await limit.execute(() => 1);
    await clock.advance(30);
    await limit.execute(() => 1);
    const error = (await limit.execute(() => 1).catch((e: unknown) => e)) as RateLimitedError;
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.code).toBe('ERR_RATE_LIMITED');
    // TAT after two calls is 0 + 100 + 100 = 200; the third conforms at 200 + 100 - 200 = 100.
    expect(error.retryAfterMs).toBe(70);
    expect(error.key).toBe('default');
    expect(error.message).toContain('rate limit "orders"');
    await clock.advance(69);
    await expect(limit.execute(() => 1)).rejects.toThrow(RateLimitedError);
    await clock.advance(1);
    await expect(limit.execute(() => 'in')).resolves.toBe('in');
    await expect(limit.execute(() => 1)).rejects.toThrow(RateLimitedError);
  });

  it('builds its refusals without a stack trace with refusalStacks: false, and keeps everything else', async () => {
    const clock = new VirtualClock();
    const cheap = rateLimit({ ratePerSecond: 10, burst: 1, clock, name: 'hot', refusalStacks: false });
    const full = rateLimit({ ratePerSecond: 10, burst: 1, clock, name: 'hot' });
    await cheap.execute(() => 1);
    await full.execute(() => 1);
    const error = (await cheap.execute(() => 1).catch((e: unknown) => e)) as RateLimitedError;
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(isBulwarkError(error, 'ERR_RATE_LIMITED')).toBe(true);
    expect(error.retryAfterMs).toBe(100);
    expect(error.key).toBe('default');
    expect(error.limiter).toBe('hot');
    expect(error.stack).toBe(`RateLimitedError: ${error.message}`);
    const withStack = (await full.execute(() => 1).catch((e: unknown) => e)) as RateLimitedError;
    expect(withStack.message).toBe(error.message);
    expect(withStack.stack!.split('\n').length).toBeGreaterThan(1);
    expect(() => rateLimit({ ratePerSecond: 1, burst: 1, refusalStacks: 'no' as never })).toThrow(
      /refusalStacks must be a boolean/,
    );
  });

  it('does not run the function of a refused call', async () => {
    const limit = rateLimit({ ratePerSecond: 1, burst: 1, clock: new VirtualClock() });
    let runs = 0;
    await limit.execute(() => runs++);
    await limit.execute(() => runs++).catch(() => undefined);
    expect(runs).toBe(1);
  });

  it('keeps a separate limit per key', async () => {
    const clock = new VirtualClock();
    const limit = rateLimit({ ratePerSecond: 1, burst: 2, clock, key: (ctx) => ctx.operation ?? 'none' });
    const call = (tenant: string) =>
      limit.execute(() => tenant, { operation: tenant }).catch(() => 'refused');
    expect([await call('a'), await call('a'), await call('a')]).toEqual(['a', 'a', 'refused']);
    expect([await call('b'), await call('b'), await call('b')]).toEqual(['b', 'b', 'refused']);
  });

  it('reports a key function that throws or returns a non-string as ERR_CALLBACK_FAILED', async () => {
    const throwing = rateLimit({
      ratePerSecond: 1,
      burst: 1,
      key: () => {
        throw new Error('no tenant');
      },
    });
    const e1 = await throwing.execute(() => 1).catch((e: unknown) => e);
    expect(isBulwarkError(e1, 'ERR_CALLBACK_FAILED')).toBe(true);
    const wrong = rateLimit({ ratePerSecond: 1, burst: 1, key: () => 42 as unknown as string });
    const e2 = await wrong.execute(() => 1).catch((e: unknown) => e);
    expect(isBulwarkError(e2, 'ERR_CALLBACK_FAILED')).toBe(true);
    expect((e2 as Error).message).toContain('42');
  });

  it('emits onRefuse with the key and retryAfterMs, and stops after dispose', async () => {
    const clock = new VirtualClock();
    const limit = rateLimit({ ratePerSecond: 2, burst: 1, clock });
    const seen: Array<{ key: string; retryAfterMs: number }> = [];
    const sub = limit.onRefuse((e) => seen.push(e));
    await admitted(limit, 2);
    sub.dispose();
    await admitted(limit, 1);
    expect(seen).toEqual([{ key: 'default', retryAfterMs: 500 }]);
  });

  it('take() decides without running anything and reports remaining and reset', () => {
    const clock = new VirtualClock();
    const limit = rateLimit({ ratePerSecond: 10, burst: 3, clock });
    const first = limit.take('k') as ReturnType<MemoryRateLimitStore['take']>;
    expect(first).toEqual({ allowed: true, delayMs: 0, retryAfterMs: 0, remaining: 2, resetMs: 100 });
    limit.take('k');
    const third = limit.take('k') as ReturnType<MemoryRateLimitStore['take']>;
    expect(third).toMatchObject({ allowed: true, remaining: 0, resetMs: 300 });
    const fourth = limit.take('k') as ReturnType<MemoryRateLimitStore['take']>;
    expect(fourth).toMatchObject({ allowed: false, retryAfterMs: 100, remaining: 0 });
  });
});

describe('rateLimit({ wait: true })', () => {
  it('delays a call over the limit to its slot instead of refusing', async () => {
    const clock = new VirtualClock();
    const limit = rateLimit({ ratePerSecond: 10, burst: 1, wait: true, clock });
    const started: number[] = [];
    const calls = [0, 1, 2].map(() => limit.execute(() => started.push(clock.now())));
    await clock.advance(250);
    await Promise.all(calls);
    // Slots are reserved in order: 0, 100, 200 ms.
    expect(started).toEqual([0, 100, 200]);
  });

  it('refuses a call whose wait would outlast the deadline, with retryAfterMs', async () => {
    const clock = new VirtualClock();
    const limit = rateLimit({ ratePerSecond: 10, burst: 1, wait: true, clock });
    const guarded = pipeline(deadline(150, { clock }), limit);
    await guarded.execute(() => 1);
    const second = guarded.execute(() => clock.now());
    const third = guarded.execute(() => 1).catch((e: unknown) => e);
    await clock.advance(300);
    expect(await second).toBe(100);
    const error = (await third) as RateLimitedError;
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.retryAfterMs).toBe(200);
  });

  it('refuses a wait longer than maxWaitMs', async () => {
    const clock = new VirtualClock();
    const limit = rateLimit({ ratePerSecond: 10, burst: 1, wait: true, maxWaitMs: 50, clock });
    await limit.execute(() => 1);
    const error = (await limit.execute(() => 1).catch((e: unknown) => e)) as RateLimitedError;
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.retryAfterMs).toBe(100);
  });

  it('ends a wait at once with the caller’s abort reason and never runs the function', async () => {
    const clock = new VirtualClock();
    const limit = rateLimit({ ratePerSecond: 1, burst: 1, wait: true, clock });
    await limit.execute(() => 1);
    const controller = new AbortController();
    let ran = false;
    const waiting = limit
      .execute(
        () => {
          ran = true;
        },
        { signal: controller.signal },
      )
      .catch((e: unknown) => e);
    await clock.advance(10);
    const reason = new Error('client went away');
    controller.abort(reason);
    expect(await waiting).toBe(reason);
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(2_000);
    expect(ran).toBe(false);
  });
});

describe('memoryRateLimitStore()', () => {
  const rule: RateLimitRule = Object.freeze({ intervalMs: 100, burst: 2, horizonMs: 200 });

  it('keeps at most maxKeys keys, dropping the least recently used', () => {
    const store = memoryRateLimitStore({ maxKeys: 3 });
    for (const key of ['a', 'b', 'c', 'd'])
      store.take(key, rule, { now: 0, maxDelayMs: 0, budgetMs: Infinity });
    expect(store.stats()).toEqual({ keys: 3, evictedLive: 1 });
    // 'a' was dropped: it gets its whole burst again; 'b' still has one call left.
    expect(store.take('a', rule, { now: 0, maxDelayMs: 0, budgetMs: Infinity }).remaining).toBe(1);
    expect(store.take('c', rule, { now: 0, maxDelayMs: 0, budgetMs: Infinity }).remaining).toBe(0);
  });

  it('forgets drained keys first, without counting them as live evictions', () => {
    const store = memoryRateLimitStore({ maxKeys: 2 });
    store.take('a', rule, { now: 0, maxDelayMs: 0, budgetMs: Infinity });
    store.take('b', rule, { now: 0, maxDelayMs: 0, budgetMs: Infinity });
    // At 1 s both have drained; the next decision drops them.
    store.take('c', rule, { now: 1_000, maxDelayMs: 0, budgetMs: Infinity });
    expect(store.stats()).toEqual({ keys: 1, evictedLive: 0 });
  });

  it('holds memory flat under a stream of distinct keys', () => {
    const store = memoryRateLimitStore({ maxKeys: 100 });
    for (let i = 0; i < 10_000; i++) store.take(`k${i}`, rule, { now: i, maxDelayMs: 0, budgetMs: Infinity });
    expect(store.stats().keys).toBeLessThanOrEqual(100);
  });
});

describe('gcra()', () => {
  it('never admits more than burst + rate × t over any span (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 300 }),
        (rate, burst, gaps) => {
          const r: RateLimitRule = { intervalMs: 1000 / rate, burst, horizonMs: (burst * 1000) / rate };
          let tat: number | undefined;
          let now = 0;
          const admittedAt: number[] = [];
          for (const gap of gaps) {
            now += gap;
            const step = gcra(tat, r, now, 0);
            tat = step.tat;
            if (step.decision.allowed) admittedAt.push(now);
          }
          for (let i = 0; i < admittedAt.length; i++) {
            for (let j = i; j < admittedAt.length; j++) {
              const span = admittedAt[j]! - admittedAt[i]!;
              expect(j - i + 1).toBeLessThanOrEqual(burst + Math.floor((span * rate) / 1000 + 1e-9));
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('rateLimit() options', () => {
  it('lists every invalid option in one InvalidOptionsError', () => {
    let error: unknown;
    try {
      rateLimit({
        ratePerSecond: 0,
        burst: 1.5,
        key: 7 as unknown as string,
        store: {} as MemoryRateLimitStore,
        maxKeys: 0,
        maxWaitMs: -1,
        clock: {} as VirtualClock,
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error).toBeInstanceOf(RangeError);
    const options = (error as InvalidOptionsError).violations.map((v) => v.option);
    expect(options).toEqual([
      'ratePerSecond',
      'burst',
      'key',
      'store',
      'maxKeys',
      'maxKeys',
      'maxWaitMs',
      'maxWaitMs',
      'clock',
    ]);
    expect((error as Error).message).toContain('ratePerSecond must be a finite number > 0, got 0');
    expect((error as Error).message).toContain('burst must be an integer >= 1, got 1.5');
  });

  it('refuses a maxWaitMs above RATE_LIMIT_MAX_WAIT_MS (one minute), naming the value', () => {
    expect(RATE_LIMIT_MAX_WAIT_MS).toBe(60_000);
    expect(() => rateLimit({ ratePerSecond: 1, burst: 1, wait: true, maxWaitMs: 60_001 })).toThrow(
      /maxWaitMs must be .*<= 60000.*got 60001/,
    );
    expect(rateLimit({ ratePerSecond: 1, burst: 1, wait: true, maxWaitMs: 60_000 }).rule.horizonMs).toBe(
      61_000,
    );
  });

  it('refuses unknown options, with advice for another library’s names', () => {
    let error: unknown;
    try {
      rateLimit({ ratePerSecond: 1, burst: 1, points: 10, brust: 2 } as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).violations.map((v) => v.option)).toEqual(['points', 'brust']);
    expect((error as Error).message).toContain('use burst');
    expect(() => memoryRateLimitStore({ maxKey: 3 } as never)).toThrow(InvalidOptionsError);
  });

  it('requires ratePerSecond and burst', () => {
    expect(() => rateLimit({} as never)).toThrow(
      /ratePerSecond .* got undefined[\s\S]*burst .* got undefined/,
    );
  });

  it('rejects a bad maxKeys on the in-memory store', () => {
    expect(() => new MemoryRateLimitStore({ maxKeys: Number.NaN })).toThrow(InvalidOptionsError);
  });
});
