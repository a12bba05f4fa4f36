import { getEventListeners } from 'node:events';
import {
  type InjectEvent,
  InjectedFaultError,
  injectFault,
  injectLatency,
  injectOutcome,
} from '@bulwark/chaos';
import { type Random, seededRandom, VirtualClock } from '@bulwark/clock';
import {
  CallbackError,
  DeadlineExceededError,
  InvalidOptionsError,
  isBulwarkError,
  pipeline,
} from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { retry } from '@bulwark/retry';
import { describe, expect, it } from 'vitest';

/** Counts how many of `n` calls a policy injected into (faults are caught). */
async function injectedCount(
  policy: { execute: (fn: () => string) => Promise<string> },
  n: number,
): Promise<number> {
  let real = 0;
  for (let i = 0; i < n; i++) {
    await policy
      .execute(() => {
        real++;
        return 'real';
      })
      .catch(() => undefined);
  }
  return n - real;
}

describe('chaos policies: sampling', () => {
  it('injects into a rate share of calls, the same count for the same seed', async () => {
    const counts: number[] = [];
    for (const seed of [1, 2, 3]) {
      const a = await injectedCount(injectFault({ rate: 0.3, random: seededRandom(seed) }), 10_000);
      const b = await injectedCount(injectFault({ rate: 0.3, random: seededRandom(seed) }), 10_000);
      expect(a).toBe(b);
      // binomial(10000, 0.3): σ ≈ 45.8; 4σ ≈ 183.
      expect(Math.abs(a - 3000)).toBeLessThan(183);
      counts.push(a);
    }
    expect(new Set(counts).size).toBeGreaterThan(1);
  });

  it('draws from the random source exactly once per enabled call, and never when disabled or at rate 0', async () => {
    let draws = 0;
    const random: Random = () => {
      draws++;
      return 0.99;
    };
    const policy = injectOutcome({ rate: 0.5, random, outcome: { ok: true, value: 'fake' } });
    await injectedCount(policy, 10);
    expect(draws).toBe(10);
    policy.enabled = false;
    await injectedCount(policy, 10);
    policy.enabled = true;
    policy.rate = 0;
    await injectedCount(policy, 10);
    expect(draws).toBe(10);
  });

  it('switches at run time: the enabled flag, a flag function, and the rate setter', async () => {
    const policy = injectFault({ rate: 1, random: seededRandom(1) });
    expect(await injectedCount(policy, 5)).toBe(5);
    policy.enabled = false;
    expect(await injectedCount(policy, 5)).toBe(0);
    let flag = true;
    policy.enabled = () => flag;
    expect(await injectedCount(policy, 5)).toBe(5);
    flag = false;
    expect(await injectedCount(policy, 5)).toBe(0);
    expect(policy.enabled).toBe(false);
    flag = true;
    policy.rate = 0;
    expect(await injectedCount(policy, 5)).toBe(0);
    expect(() => {
      policy.rate = 1.5;
    }).toThrow(/rate must be a finite number >= 0 <= 1, got 1.5/);
    expect(() => {
      policy.enabled = 'yes' as never;
    }).toThrow(InvalidOptionsError);
    expect(policy.rate).toBe(0);
  });
});

describe('injectFault()', () => {
  it('throws an InjectedFaultError by default, without calling the function', async () => {
    const policy = injectFault({ rate: 1, name: 'db' });
    let called = false;
    const e = await policy
      .execute(() => {
        called = true;
      })
      .catch((x: unknown) => x);
    expect(called).toBe(false);
    expect(e).toBeInstanceOf(InjectedFaultError);
    expect(isBulwarkError(e, 'ERR_INJECTED_FAULT')).toBe(true);
    expect((e as Error).message).toContain('chaos policy "db"');
  });

  it('throws the given error, or a fresh one from a function of the context', async () => {
    const given = Object.assign(new Error('reset'), { code: 'ECONNRESET' });
    await expect(injectFault({ rate: 1, error: given }).execute(() => 1)).rejects.toBe(given);
    const made = injectFault({ rate: 1, error: (ctx) => new Error(`fault on ${ctx.operation}`) });
    await expect(made.execute(() => 1, { operation: 'get' })).rejects.toThrow('fault on get');
  });

  it('lets retry() rehearse transient faults: seeded, repeatable attempt counts', async () => {
    const run = async (seed: number) => {
      const clock = new VirtualClock();
      const fault = injectFault({
        rate: 0.5,
        random: seededRandom(seed),
        error: () => Object.assign(new Error('reset'), { code: 'ECONNRESET' }),
      });
      const policy = pipeline(retry({ clock, maxAttempts: 10 }), fault);
      let attempts = 0;
      const call = policy.execute(() => ++attempts);
      await clock.runAll();
      return { value: await call, attempts };
    };
    const first = await run(11);
    expect(await run(11)).toEqual(first);
    expect(first.value).toBe(1); // the function ran once: every earlier attempt was a fault
  });
});

describe('injectLatency()', () => {
  it('waits latencyMs on the clock before the call', async () => {
    const clock = new VirtualClock();
    const policy = injectLatency({ rate: 1, latencyMs: 250, clock });
    let at = -1;
    const call = policy.execute(() => {
      at = clock.now();
      return 'ok';
    });
    await clock.advance(249);
    expect(at).toBe(-1);
    await clock.advance(1);
    expect(await call).toBe('ok');
    expect(at).toBe(250);
  });

  it('draws the latency from a function of the context and the random source', async () => {
    const clock = new VirtualClock();
    const events: InjectEvent[] = [];
    const policy = injectLatency({
      rate: 1,
      clock,
      random: () => 0.5,
      latencyMs: (_ctx, random) => 100 + random() * 100,
    });
    policy.onInject((e) => events.push(e));
    const call = policy.execute(() => clock.now());
    await clock.runAll();
    expect(await call).toBe(150);
    expect(events).toEqual([{ kind: 'latency', name: undefined, operation: undefined, delayMs: 150 }]);
  });

  it("ends the wait with the caller's reason when the caller aborts, and leaves no listener", async () => {
    const clock = new VirtualClock();
    const policy = injectLatency({ rate: 1, latencyMs: 1000, clock });
    const controller = new AbortController();
    let called = false;
    const call = policy.execute(
      () => {
        called = true;
      },
      { signal: controller.signal },
    );
    const reason = new Error('left');
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    await clock.runAll();
    expect(called).toBe(false);
    expect(clock.pendingTimers).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('ends the wait when an enclosing deadline fires', async () => {
    const clock = new VirtualClock();
    const policy = pipeline(deadline(100, { clock }), injectLatency({ rate: 1, latencyMs: 1000, clock }));
    const call = policy.execute(() => 'late').catch((e: unknown) => e);
    await clock.advance(100);
    expect(await call).toBeInstanceOf(DeadlineExceededError);
  });

  it('refuses a latency function that returns a bad value', async () => {
    const policy = injectLatency({ rate: 1, latencyMs: () => -5 });
    await expect(policy.execute(() => 1)).rejects.toBeInstanceOf(CallbackError);
  });
});

describe('injectOutcome()', () => {
  it('returns an injected result instead of calling the function', async () => {
    const policy = injectOutcome({ rate: 1, outcome: { ok: true, value: { status: 503 } } });
    let called = false;
    const r = await policy.execute(() => {
      called = true;
      return { status: 200 };
    });
    expect(r).toEqual({ status: 503 });
    expect(called).toBe(false);
  });

  it('throws an injected error, and takes a function of the context', async () => {
    const boom = new Error('boom');
    await expect(
      injectOutcome({ rate: 1, outcome: { ok: false, error: boom } }).execute(() => 1),
    ).rejects.toBe(boom);
    const byOp = injectOutcome({ rate: 1, outcome: (ctx) => ({ ok: true, value: `fake ${ctx.operation}` }) });
    expect(await byOp.execute(() => 'real', { operation: 'rows' })).toBe('fake rows');
    const bad = injectOutcome({ rate: 1, outcome: () => 'nope' as never });
    await expect(bad.execute(() => 1)).rejects.toBeInstanceOf(CallbackError);
  });

  it('emits onInject; the disposer stops it', async () => {
    const policy = injectOutcome({ rate: 1, outcome: { ok: true, value: 1 }, name: 'x' });
    const events: InjectEvent[] = [];
    const sub = policy.onInject((e) => events.push(e));
    await policy.execute(() => 0, { operation: 'op' });
    sub.dispose();
    await policy.execute(() => 0);
    expect(events).toEqual([{ kind: 'outcome', name: 'x', operation: 'op' }]);
  });
});

describe('chaos options', () => {
  it('lists every invalid option with its value', () => {
    const violations = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidOptionsError);
        return (e as InvalidOptionsError).violations.map((v) => [v.option, v.value]);
      }
      throw new Error('no error');
    };
    expect(violations(() => injectFault({ rate: -0.1, enabled: 1 as never, random: 3 as never }))).toEqual([
      ['rate', -0.1],
      ['enabled', 1],
      ['random', 3],
    ]);
    expect(violations(() => injectLatency({ latencyMs: Number.POSITIVE_INFINITY }))).toEqual([
      ['latencyMs', Number.POSITIVE_INFINITY],
    ]);
    expect(violations(() => injectLatency(undefined as never))).toEqual([['latencyMs', undefined]]);
    expect(violations(() => injectOutcome({ outcome: { value: 1 } as never }))).toEqual([
      ['outcome', { value: 1 }],
    ]);
  });
});
