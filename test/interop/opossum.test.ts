import { BrokenCircuitError } from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { DeadlineExceededError, InvalidOptionsError, isBulwarkError, pipeline } from '@bulwark/core';
import { rootContext } from '@bulwark/core/authoring';
import { deadline, withDeadline } from '@bulwark/deadline';
import { fromOpossum, opossumPolicy } from '@bulwark/interop/opossum';
import { constant, retry } from '@bulwark/retry';
import CircuitBreaker from 'opossum';
import { afterEach, describe, expect, it } from 'vitest';

// opossum keeps interval timers per breaker (unref'd); every test shuts its breakers down.
const breakers: Array<{ shutdown(): void }> = [];
afterEach(() => {
  for (const b of breakers.splice(0)) b.shutdown();
});

function track<T extends { shutdown(): void }>(breaker: T): T {
  breakers.push(breaker);
  return breaker;
}

/** A promise that never settles: a dependency that does not answer. */
const hang = () => new Promise<never>(() => undefined);

describe('opossumPolicy', () => {
  it("runs every call through its opossum breaker, whose stats and events stay opossum's", async () => {
    const policy = opossumPolicy({ name: 'inventory' });
    track(policy.breaker as unknown as CircuitBreaker);
    const events: string[] = [];
    policy.breaker.on('success', () => events.push('success'));
    policy.breaker.on('failure', () => events.push('failure'));
    expect(await policy.execute((ctx) => `attempt ${ctx.attempt}`)).toBe('attempt 1');
    await expect(policy.execute(() => Promise.reject(new Error('down')))).rejects.toThrow('down');
    const stats = (policy.breaker as unknown as CircuitBreaker).stats;
    expect({ fires: stats.fires, successes: stats.successes, failures: stats.failures }).toEqual({
      fires: 2,
      successes: 1,
      failures: 1,
    });
    expect(events).toEqual(['success', 'failure']);
    expect(policy.breaker.name).toBe('inventory');
  });

  it('inside pipeline(deadline(…), opossumPolicy(…)), the deadline aborts a hanging call', async () => {
    const clock = new VirtualClock();
    const abortController = new AbortController();
    const policy = opossumPolicy({ timeout: false, abortController }, { clock });
    track(policy.breaker as unknown as CircuitBreaker);
    let signal: AbortSignal | undefined;
    const call = pipeline(deadline(100, { clock }), policy).execute((ctx) => {
      signal = ctx.signal;
      return hang();
    });
    const outcome = call.catch((error: unknown) => error);
    await clock.advance(99);
    expect(abortController.signal.aborted).toBe(false);
    await clock.advance(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect((error as DeadlineExceededError).source).toBe('deadline');
    expect(signal?.aborted).toBe(true);
    expect(isBulwarkError(signal?.reason, 'ERR_DEADLINE_EXCEEDED')).toBe(true);
    expect(abortController.signal.aborted).toBe(true);
  });

  it('honours a deadline in scope on its own, aborting ctx.signal and the abortController', async () => {
    const clock = new VirtualClock();
    const abortController = new AbortController();
    const policy = opossumPolicy({ timeout: false, abortController }, { clock });
    track(policy.breaker as unknown as CircuitBreaker);
    let signal: AbortSignal | undefined;
    const outcome = withDeadline(
      50,
      () =>
        policy.execute((ctx) => {
          signal = ctx.signal;
          return hang();
        }),
      { clock },
    ).catch((error: unknown) => error);
    await clock.advance(50);
    expect(await outcome).toMatchObject({ code: 'ERR_DEADLINE_EXCEEDED', budgetMs: 50 });
    expect(signal?.aborted).toBe(true);
    expect(abortController.signal.aborted).toBe(true);
  });

  it('maps its open-circuit rejection to ERR_CIRCUIT_OPEN', async () => {
    const clock = new VirtualClock();
    const policy = opossumPolicy({ name: 'ledger', resetTimeout: 2_000, timeout: false }, { clock });
    const breaker = track(policy.breaker as unknown as CircuitBreaker);
    breaker.open();
    await clock.advance(500);
    const error = await policy.execute(() => 'never').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokenCircuitError);
    expect(error).toMatchObject({
      code: 'ERR_CIRCUIT_OPEN',
      state: 'open',
      retryAfterMs: 1_500,
      breaker: 'ledger',
    });
  });

  it('refuses cache and coalesce, and bad numbers, with one RangeError listing each', () => {
    let caught: unknown;
    try {
      opossumPolicy({ cache: true, coalesce: true, timeout: -5 }, { clock: 'now' as never });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidOptionsError);
    expect((caught as InvalidOptionsError).violations.map((v) => v.option)).toEqual([
      'timeout',
      'cache',
      'coalesce',
      'clock',
    ]);
  });

  it('dispose() shuts the opossum breaker down and stops bridging its events', () => {
    const policy = opossumPolicy({});
    const breaker = policy.breaker as unknown as CircuitBreaker;
    expect(breaker.listenerCount('open')).toBeGreaterThan(0);
    policy[Symbol.dispose]();
    expect(breaker.isShutdown).toBe(true);
  });
});

describe('fromOpossum', () => {
  it('has the parameters of breaker.fire and passes values and errors through', async () => {
    const breaker = track(
      new CircuitBreaker(async (a: number, b: number) => {
        if (a < 0) throw new RangeError('negative');
        return a + b;
      }),
    );
    const add = fromOpossum(breaker);
    expect(await add(2, 3)).toBe(5);
    const error = new RangeError('negative');
    await expect(add(-1, 0)).rejects.toEqual(error);
    add.dispose();
  });

  it('maps an open breaker to ERR_CIRCUIT_OPEN, which bulwark retry does not retry', async () => {
    const clock = new VirtualClock();
    let actions = 0;
    const breaker = track(
      new CircuitBreaker(
        async (id: string) => {
          actions++;
          return id;
        },
        { name: 'users', resetTimeout: 5_000, timeout: false },
      ),
    );
    const getUser = fromOpossum(breaker, { clock });
    breaker.open();
    await clock.advance(1_000);
    const policy = retry({ clock, maxAttempts: 5, backoff: constant(10) });
    const error = await policy.execute(() => getUser('u1')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokenCircuitError);
    expect(error).toMatchObject({
      code: 'ERR_CIRCUIT_OPEN',
      state: 'open',
      retryAfterMs: 4_000,
      breaker: 'users',
    });
    expect(breaker.stats.rejects).toBe(1); // fired once: not retried
    expect(actions).toBe(0);
  });

  it('reports the reset timeout, an upper bound, for a breaker that opened before it was adapted', async () => {
    const breaker = track(new CircuitBreaker(async () => 'ok', { resetTimeout: 7_000, timeout: false }));
    breaker.open();
    const call = fromOpossum(breaker, { clock: new VirtualClock() });
    await expect(call()).rejects.toMatchObject({ code: 'ERR_CIRCUIT_OPEN', retryAfterMs: 7_000 });
  });

  it('maps the refusal of a half-open breaker whose probe is in flight', async () => {
    let release: (value: string) => void = () => undefined;
    const breaker = track(
      new CircuitBreaker(() => new Promise<string>((resolve) => (release = resolve)), {
        timeout: 3_000,
        state: { closed: false, halfOpen: true },
      } as CircuitBreaker.Options),
    );
    const call = fromOpossum(breaker, { clock: new VirtualClock() });
    const probe = call();
    await expect(call()).rejects.toMatchObject({
      code: 'ERR_CIRCUIT_OPEN',
      state: 'half-open',
      retryAfterMs: 3_000,
    });
    release('ok');
    expect(await probe).toBe('ok');
    expect(breaker.closed).toBe(true);
  });

  it('honours the context deadline through withContext(ctx), aborting the abortController', async () => {
    const clock = new VirtualClock();
    const abortController = new AbortController();
    const breaker = track(new CircuitBreaker(hang, { timeout: false, abortController }));
    const call = fromOpossum(breaker, { clock });
    const outcome = pipeline(deadline(80, { clock }))
      .execute((ctx) => call.withContext(ctx)())
      .catch((error: unknown) => error);
    await clock.advance(80);
    expect(await outcome).toMatchObject({ code: 'ERR_DEADLINE_EXCEEDED', source: 'deadline' });
    expect(abortController.signal.aborted).toBe(true);
  });

  it('honours the deadline in scope when called directly', async () => {
    const clock = new VirtualClock();
    const abortController = new AbortController();
    const breaker = track(new CircuitBreaker(hang, { timeout: false, abortController }));
    const call = fromOpossum(breaker, { clock });
    const outcome = withDeadline(30, () => call(), { clock }).catch((error: unknown) => error);
    await clock.advance(29);
    expect(abortController.signal.aborted).toBe(false);
    await clock.advance(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(abortController.signal.reason).toBe(error);
  });

  it("passes the caller's abort reason through unchanged, and leaves the abortController alone", async () => {
    const clock = new VirtualClock();
    const abortController = new AbortController();
    const breaker = track(new CircuitBreaker(hang, { timeout: false, abortController }));
    const call = fromOpossum(breaker, { clock });
    const caller = new AbortController();
    const outcome = call
      .withContext(rootContext(clock, { signal: caller.signal }))()
      .catch((e: unknown) => e);
    const reason = new Error('the user went away');
    caller.abort(reason);
    expect(await outcome).toBe(reason);
    expect(abortController.signal.aborted).toBe(false);
  });

  it('does not fire when the deadline has already passed', async () => {
    const clock = new VirtualClock();
    let fired = 0;
    const breaker = track(new CircuitBreaker(async () => ++fired));
    const call = fromOpossum(breaker, { clock });
    const error = await withDeadline(0, () => call(), { clock }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(fired).toBe(0);
  });

  it('bridges a breaker once however many adapters use it, until the last is disposed', () => {
    const breaker = track(new CircuitBreaker(async () => 'ok'));
    const before = breaker.listenerCount('reject');
    const a = fromOpossum(breaker);
    const b = fromOpossum(breaker);
    expect(breaker.listenerCount('reject')).toBe(before + 1);
    a.dispose();
    a.dispose();
    expect(breaker.listenerCount('reject')).toBe(before + 1);
    b[Symbol.dispose]();
    expect(breaker.listenerCount('reject')).toBe(before);
  });

  it('rejects something that is not a breaker with a RangeError', () => {
    expect(() => fromOpossum({} as never)).toThrow(InvalidOptionsError);
  });
});
