import { getEventListeners } from 'node:events';
import { sleep, systemClock, VirtualClock } from '@bulwark/clock';
import { type ExecutionContext, isBulwarkError, noopPolicy, type Operation, pipeline } from '@bulwark/core';
import { BasePolicy, withAttempt } from '@bulwark/core/authoring';
import {
  currentDeadline,
  Deadline,
  DeadlineExceededError,
  deadline,
  timeout,
  withDeadline,
} from '@bulwark/deadline';
import { describe, expect, it, onTestFinished } from 'vitest';

/** A function that waits on ctx.signal and never finishes by itself. */
const hang = (ctx: ExecutionContext) =>
  new Promise<never>((_, reject) => {
    ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
  });

/** Counts the AbortSignals read from AbortControllers from now on. */
function countSignals(): () => number {
  const descriptor = Object.getOwnPropertyDescriptor(AbortController.prototype, 'signal')!;
  const made = new WeakSet<AbortController>();
  let count = 0;
  Object.defineProperty(AbortController.prototype, 'signal', {
    ...descriptor,
    get(this: AbortController) {
      if (!made.has(this)) {
        made.add(this);
        count++;
      }
      return descriptor.get!.call(this);
    },
  });
  onTestFinished(() => {
    Object.defineProperty(AbortController.prototype, 'signal', descriptor);
  });
  return () => count;
}

describe('deadline()', () => {
  it('rejects with DeadlineExceededError when the budget runs out, and aborts the signal', async () => {
    const clock = new VirtualClock();
    let signal: AbortSignal | undefined;
    const p = deadline(200, { clock }).execute((ctx) => {
      signal = ctx.signal;
      return hang(ctx);
    });
    const outcome = p.catch((e: unknown) => e);
    await clock.advance(199);
    expect(signal?.aborted).toBe(false);
    await clock.advance(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toMatchObject({ code: 'ERR_DEADLINE_EXCEEDED', source: 'deadline', budgetMs: 200 });
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBe(error);
  });

  it('rejects at the deadline even when the function ignores the signal', async () => {
    const clock = new VirtualClock();
    const p = deadline(50, { clock })
      .execute(() => new Promise(() => {}))
      .catch((e: unknown) => e);
    await clock.advance(50);
    expect(isBulwarkError(await p, 'ERR_DEADLINE_EXCEEDED')).toBe(true);
  });

  it('returns the result and leaves no timer when the call finishes in time', async () => {
    const clock = new VirtualClock();
    const result = await deadline(1_000, { clock }).execute(async (ctx) => ctx.deadline);
    expect(result).toBe(1_000);
    await clock.advance(2_000);
    expect(clock.pendingTimers).toBe(0);
  });

  it('covers every retry inside it: the budget is overall', async () => {
    const clock = new VirtualClock();
    const seen: Array<[number, number | undefined]> = [];
    class TwoAttempts extends BasePolicy {
      async run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
        await fn(withAttempt(ctx, 1));
        return fn(withAttempt(ctx, 2));
      }
    }
    const p = pipeline(deadline(300, { clock }), new TwoAttempts(clock))
      .execute(async (ctx) => {
        seen.push([ctx.attempt, ctx.deadline]);
        if (ctx.attempt === 1) await sleep(200, { clock, signal: ctx.signal });
        else await hang(ctx);
      })
      .catch((e: unknown) => e);
    await clock.advance(300);
    expect(seen).toEqual([
      [1, 300],
      [2, 300],
    ]);
    expect(await p).toMatchObject({ source: 'deadline', budgetMs: 300 });
  });

  it('lets an earlier enclosing deadline win', async () => {
    const clock = new VirtualClock();
    const seen = await withDeadline(100, () => deadline(5_000, { clock }).execute((ctx) => ctx.deadline), {
      clock,
    });
    expect(seen).toBe(100);
  });

  it('rejects without running when the enclosing deadline has already passed', async () => {
    const clock = new VirtualClock();
    let ran = false;
    const p = withDeadline(
      0,
      () =>
        deadline(1_000, { clock }).execute(() => {
          ran = true;
        }),
      { clock },
    );
    await expect(p).rejects.toMatchObject({ code: 'ERR_DEADLINE_EXCEEDED', source: 'deadline' });
    expect(ran).toBe(false);
  });

  it('rethrows the caller abort reason unchanged, not a deadline error', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    const reason = new Error('user navigated away');
    const p = deadline(1_000, { clock })
      .execute(hang, { signal: controller.signal })
      .catch((e: unknown) => e);
    await clock.advance(10);
    controller.abort(reason);
    expect(await p).toBe(reason);
    await clock.advance(2_000);
    expect(clock.pendingTimers).toBe(0);
  });

  it('reports no expiry when the caller aborted first and the function ignored it', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    const policy = deadline(100, { clock });
    const expired: unknown[] = [];
    policy.onExpired((e) => expired.push(e));
    const reason = new Error('caller left');
    const outcome = policy
      .execute(() => new Promise(() => {}), { signal: controller.signal })
      .catch((e: unknown) => e);
    await clock.advance(10);
    controller.abort(reason);
    expect(await outcome).toBe(reason);
    await clock.advance(200);
    expect(expired).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('passes the caller abort into the context signal', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    let inner: AbortSignal | undefined;
    const p = deadline(1_000, { clock })
      .execute(
        (ctx) => {
          inner = ctx.signal;
          return hang(ctx);
        },
        { signal: controller.signal },
      )
      .catch(() => {});
    controller.abort('stop');
    await p;
    expect(inner?.aborted).toBe(true);
    expect(inner?.reason).toBe('stop');
  });

  it('emits onExpired with the source and budget', async () => {
    const clock = new VirtualClock();
    const policy = deadline(30, { clock });
    const events: unknown[] = [];
    using _sub = policy.onExpired((e) => events.push(e));
    const p = policy.execute(hang, { operation: 'op' }).catch(() => {});
    await clock.advance(30);
    await p;
    expect(events).toEqual([{ source: 'deadline', budgetMs: 30, attempt: 1, operation: 'op' }]);
  });

  it('puts the deadline in scope for nested calls only with propagate', async () => {
    const clock = new VirtualClock();
    const nested = () => noopPolicy.execute((ctx) => ctx.deadline);
    const withScope = await deadline(400, { clock, propagate: true }).execute(
      async () => currentDeadline({ clock })?.at,
    );
    const withoutScope = await deadline(400, { clock }).execute(async () => currentDeadline({ clock })?.at);
    expect(withScope).toBe(400);
    expect(withoutScope).toBeUndefined();
    // A nested call picks it up as its own context deadline, converted to its clock.
    const nestedDeadline = await deadline(400, { clock, propagate: true }).execute(nested);
    expect(nestedDeadline).toBeGreaterThan(0);
  });

  it('rejects an invalid budget with a RangeError naming the value', () => {
    expect(() => deadline(-1)).toThrow(
      /deadline\(\): invalid options \(1\):\n {2}- ms must be a number >= 0, got -1/,
    );
    expect(() => timeout(Number.NaN)).toThrow(/ms must be a number >= 0, got NaN/);
  });
});

describe('timeout()', () => {
  it('limits each attempt and reports a retryable timeout', async () => {
    const clock = new VirtualClock();
    const p = timeout(100, { clock })
      .execute(hang)
      .catch((e: unknown) => e);
    await clock.advance(100);
    expect(await p).toMatchObject({ code: 'ERR_DEADLINE_EXCEEDED', source: 'timeout', budgetMs: 100 });
  });

  it('uses min(ms, time left on the deadline) and then reports the deadline', async () => {
    const clock = new VirtualClock();
    const limits: Array<number | undefined> = [];
    const p = pipeline(deadline(250, { clock }), timeout(1_000, { clock }))
      .execute((ctx) => {
        limits.push(ctx.deadline);
        return hang(ctx);
      })
      .catch((e: unknown) => e);
    await clock.advance(250);
    expect(limits).toEqual([250]);
    expect(await p).toMatchObject({ source: 'deadline' });
  });

  it('leaves the report to the enclosing deadline when that is what ran out', async () => {
    const clock = new VirtualClock();
    const outer = deadline(250, { clock });
    const inner = timeout(1_000, { clock });
    const events: string[] = [];
    outer.onExpired((e) => events.push(`deadline() ${e.source}`));
    inner.onExpired((e) => events.push(`timeout() ${e.source}`));
    // The function ignores its signal: both timers come due in the same slot.
    const p = pipeline(outer, inner)
      .execute(() => new Promise(() => {}))
      .catch((e: unknown) => e);
    await clock.advance(250);
    expect(await p).toMatchObject({ source: 'deadline', budgetMs: 250 });
    expect(events).toEqual(['deadline() deadline']);
  });

  it('keeps its own shorter limit inside a longer deadline', async () => {
    const clock = new VirtualClock();
    const p = pipeline(deadline(5_000, { clock }), timeout(100, { clock }))
      .execute(hang)
      .catch((e: unknown) => e);
    await clock.advance(100);
    expect(await p).toMatchObject({ source: 'timeout', budgetMs: 100 });
  });
});

describe('abort at each stage of a call', () => {
  const stages = ['before the call', 'while the function runs', 'after the deadline fired'] as const;
  for (const stage of stages) {
    it(`settles exactly once with the right error when aborted ${stage}`, async () => {
      const clock = new VirtualClock();
      const controller = new AbortController();
      const reason = new Error(`abort ${stage}`);
      if (stage === 'before the call') controller.abort(reason);
      let settled = 0;
      const p = pipeline(deadline(100, { clock }), timeout(50, { clock }))
        .execute(hang, { signal: controller.signal })
        .then(
          () => {
            settled++;
            return 'resolved';
          },
          (e: unknown) => {
            settled++;
            return e;
          },
        );
      if (stage === 'while the function runs') {
        await clock.advance(10);
        controller.abort(reason);
      }
      if (stage === 'after the deadline fired') {
        await clock.advance(50);
        controller.abort(reason);
      }
      await clock.advance(200);
      const outcome = await p;
      expect(settled).toBe(1);
      if (stage === 'after the deadline fired') expect(outcome).toMatchObject({ source: 'timeout' });
      else expect(outcome).toBe(reason);
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
      expect(clock.pendingTimers).toBe(0);
    });
  }
});

describe('listener hygiene', () => {
  it('keeps listener counts flat after 100,000 calls sharing one long-lived signal', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    const p = pipeline(deadline(1_000, { clock }), timeout(100, { clock }));
    for (let i = 0; i < 100_000; i++) {
      // Reading ctx.signal links it to the caller's signal; it must be unlinked after.
      await p.execute((ctx) => ctx.signal.aborted, { signal: controller.signal });
    }
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});

describe('the signal a time limit gives its function', () => {
  it('is made only when read, and aborts at expiry when first read late in the call', async () => {
    const clock = new VirtualClock();
    const made = countSignals();
    let signal: AbortSignal | undefined;
    const call = pipeline(deadline(500, { clock }), timeout(200, { clock }))
      .execute(async (ctx) => {
        await sleep(150, { clock });
        // Read for the first time only now, 150 ms into the attempt.
        signal = ctx.signal;
        return new Promise<never>(() => {});
      })
      .catch((e: unknown) => e);
    expect(made()).toBe(0);
    await clock.advance(150);
    expect(made()).toBe(1);
    expect(signal?.aborted).toBe(false);
    await clock.advance(50);
    const error = await call;
    expect(error).toMatchObject({ code: 'ERR_DEADLINE_EXCEEDED', source: 'timeout', budgetMs: 200 });
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBe(error);
  });

  it('follows the caller when first read late, and drops its listener on the caller at settle', async () => {
    const clock = new VirtualClock();
    const caller = new AbortController();
    let signal: AbortSignal | undefined;
    const call = timeout(1_000, { clock })
      .execute(
        async (ctx) => {
          await sleep(10, { clock });
          signal = ctx.signal;
          return new Promise<never>(() => {});
        },
        { signal: caller.signal },
      )
      .catch((e: unknown) => e);
    await clock.advance(10);
    expect(signal?.aborted).toBe(false);
    caller.abort('stop');
    expect(await call).toBe('stop');
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBe('stop');
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });

  it('never aborts when first read after the call settled, and leaves no listener on the caller', async () => {
    const clock = new VirtualClock();
    const caller = new AbortController();
    let kept: ExecutionContext | undefined;
    expect(
      await timeout(100, { clock }).execute(
        (ctx) => {
          kept = ctx;
          return 'done';
        },
        { signal: caller.signal },
      ),
    ).toBe('done');
    const signal = kept!.signal;
    await clock.advance(200);
    expect(signal.aborted).toBe(false);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });
});

describe('Deadline', () => {
  it('reports remaining time and expiry on its clock', async () => {
    const clock = new VirtualClock(10);
    const d = Deadline.after(100, { clock });
    expect(d.at).toBe(110);
    await clock.advance(40);
    expect(d.remaining()).toBe(60);
    expect(d.expired()).toBe(false);
    await clock.advance(60);
    expect(d.remaining()).toBe(0);
    expect(d.expired()).toBe(true);
  });

  it('creates its signal lazily and aborts it at expiry', async () => {
    const clock = new VirtualClock();
    const d = Deadline.after(20, { clock });
    expect(clock.pendingTimers).toBe(0);
    const signal = d.signal;
    expect(d.signal).toBe(signal);
    await clock.advance(20);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(DeadlineExceededError);
  });

  it('gives an already-aborted signal when read after expiry, and none after dispose', async () => {
    const clock = new VirtualClock();
    const expired = Deadline.after(0, { clock });
    expect(expired.signal.aborted).toBe(true);
    const d = Deadline.after(20, { clock });
    const signal = d.signal;
    d.dispose();
    await clock.advance(50);
    expect(signal.aborted).toBe(false);
  });

  it('picks the earlier of two deadlines', () => {
    const clock = new VirtualClock();
    const a = Deadline.after(100, { clock });
    const b = Deadline.after(50, { clock });
    expect(a.min(b).at).toBe(50);
    expect(b.min(a)).toBe(b);
    expect(a.min(undefined)).toBe(a);
  });
});

describe('nested deadline policies', () => {
  it('let the earlier deadline win, whichever is outermost', async () => {
    const clock = new VirtualClock();
    const inner = await pipeline(deadline(1_000, { clock }), deadline(300, { clock })).execute(
      (ctx) => ctx.deadline,
    );
    const outer = await pipeline(deadline(300, { clock }), deadline(1_000, { clock })).execute(
      (ctx) => ctx.deadline,
    );
    expect([inner, outer]).toEqual([300, 300]);
    const p = pipeline(deadline(300, { clock }), deadline(1_000, { clock }))
      .execute(hang)
      .catch((e: unknown) => e);
    await clock.advance(300);
    expect(await p).toMatchObject({ source: 'deadline', budgetMs: 300 });
  });
});

describe('withDeadline and currentDeadline', () => {
  it('puts a deadline in scope across awaits, and the earlier one wins when nested', async () => {
    const clock = new VirtualClock();
    const seen: Array<number | undefined> = [];
    await withDeadline(
      500,
      async () => {
        seen.push(currentDeadline({ clock })?.at);
        await withDeadline(
          100,
          async () => {
            await Promise.resolve();
            seen.push(currentDeadline({ clock })?.at);
            await withDeadline(
              900,
              async () => {
                seen.push(currentDeadline({ clock })?.at);
              },
              { clock },
            );
          },
          { clock },
        );
        seen.push(currentDeadline({ clock })?.at);
      },
      { clock },
    );
    seen.push(currentDeadline({ clock })?.at);
    expect(seen).toEqual([500, 100, 100, 500, undefined]);
  });

  it('is what ExecutionContext.deadline reflects', async () => {
    const clock = new VirtualClock(1_000);
    // noopPolicy measures on the system clock: the time left carries over to it.
    const before = systemClock.now();
    const seen = await withDeadline(250, () => noopPolicy.execute((ctx) => ctx.deadline), { clock });
    expect(seen).toBeGreaterThanOrEqual(before + 250);
    expect(seen).toBeLessThanOrEqual(systemClock.now() + 250);
    const onClock = await withDeadline(
      250,
      () => deadline(10_000, { clock }).execute((ctx) => ctx.deadline),
      {
        clock,
      },
    );
    expect(onClock).toBe(1_250);
  });

  it('rejects a negative budget', () => {
    expect(() => withDeadline(-5, () => 1)).toThrow(/ms must be a number >= 0, got -5/);
  });
});
