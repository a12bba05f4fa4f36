import { getEventListeners } from 'node:events';
import { VirtualClock } from '@bulwark/clock';
import {
  BulwarkError,
  CallbackError,
  type ExecutionContext,
  InvalidOptionsError,
  pipeline,
} from '@bulwark/core';
import { Deadline, DeadlineExceededError, deadline, timeout, withDeadline } from '@bulwark/deadline';
import {
  constant,
  exponential,
  fromFunction,
  type GiveUpEvent,
  type RetryEvent,
  retry,
  retryBudget,
} from '@bulwark/retry';
import { describe, expect, it } from 'vitest';

/** An error as node:net raises for a reset connection. */
const reset = () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });

/** A function that waits on ctx.signal and never finishes by itself. */
const hang = (ctx: ExecutionContext) =>
  new Promise<never>((_, reject) => {
    ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
  });

/** Runs `promise` to completion on the virtual clock; resolves to its value or rejection. */
async function settle<T>(
  clock: VirtualClock,
  promise: Promise<T>,
): Promise<{ value?: T; error?: unknown; at: number }> {
  const result = promise.then(
    (value) => ({ value, at: clock.now() }),
    (error: unknown) => ({ error, at: clock.now() }),
  );
  await clock.runAll();
  return result;
}

describe('retry()', () => {
  it('calls once when the first attempt succeeds, with attempt 1', async () => {
    const clock = new VirtualClock();
    const attempts: number[] = [];
    const value = await retry({ clock }).execute((ctx) => {
      attempts.push(ctx.attempt);
      return 'ok';
    });
    expect(value).toBe('ok');
    expect(attempts).toEqual([1]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('retries transient errors after the backoff delays, with 1-based attempt numbers', async () => {
    const clock = new VirtualClock();
    const starts: [number, number][] = [];
    const policy = retry({ clock, maxAttempts: 4, backoff: exponential({ initialMs: 100, jitter: 'none' }) });
    const { value } = await settle(
      clock,
      policy.execute((ctx) => {
        starts.push([ctx.attempt, clock.now()]);
        if (ctx.attempt < 4) throw reset();
        return 'done';
      }),
    );
    expect(value).toBe('done');
    expect(starts).toEqual([
      [1, 0],
      [2, 100],
      [3, 300],
      [4, 700],
    ]);
  });

  it('gives up after maxAttempts and rethrows the last error', async () => {
    const clock = new VirtualClock();
    const policy = retry({ clock, backoff: constant(10) });
    const giveUps: GiveUpEvent[] = [];
    policy.onGiveUp((e) => giveUps.push(e));
    const errors: Error[] = [];
    const { error } = await settle(
      clock,
      policy.execute(() => {
        const e = reset();
        errors.push(e);
        throw e;
      }),
    );
    expect(errors).toHaveLength(3);
    expect(error).toBe(errors[2]);
    expect(giveUps).toEqual([
      { attempts: 3, reason: 'attempts', outcome: { ok: false, error: errors[2] }, operation: undefined },
    ]);
  });

  it('does not retry an error the classifier does not accept', async () => {
    const clock = new VirtualClock();
    const policy = retry({ clock });
    const reasons: string[] = [];
    policy.onGiveUp((e) => reasons.push(e.reason));
    let calls = 0;
    const { error } = await settle(
      clock,
      policy.execute(() => {
        calls++;
        throw new TypeError('cannot read properties of undefined');
      }),
    );
    expect(calls).toBe(1);
    expect(error).toBeInstanceOf(TypeError);
    expect(reasons).toEqual(['not-retryable']);
  });

  it('does not retry an open circuit or a full bulkhead unless retryOn says so', async () => {
    const clock = new VirtualClock();
    for (const code of ['ERR_CIRCUIT_OPEN', 'ERR_BULKHEAD_FULL']) {
      let calls = 0;
      const fail = () => {
        calls++;
        throw new BulwarkError(code, 'refused', { retryAfterMs: 50 });
      };
      await settle(clock, retry({ clock }).execute(fail));
      expect(calls).toBe(1);
      calls = 0;
      await settle(clock, retry({ clock, retryOn: () => true }).execute(fail));
      expect(calls).toBe(3);
    }
  });

  it('retries results that retryOn rejects, and returns the last one when attempts run out', async () => {
    const clock = new VirtualClock();
    const statuses = [503, 503, 200];
    const policy = retry({
      clock,
      backoff: constant(5),
      retryOn: (outcome) => outcome.ok && (outcome.value as { status: number }).status === 503,
    });
    const { value } = await settle(
      clock,
      policy.execute(() => ({ status: statuses.shift()! })),
    );
    expect(value).toEqual({ status: 200 });

    const reasons: string[] = [];
    policy.onGiveUp((e) => reasons.push(e.reason));
    const last = await settle(
      clock,
      policy.execute(() => ({ status: 503 })),
    );
    expect(last.value).toEqual({ status: 503 });
    expect(reasons).toEqual(['attempts']);
  });

  it('hands retryOn the context of the attempt that produced the outcome', async () => {
    const clock = new VirtualClock();
    const seen: Array<[number, number]> = [];
    await settle(
      clock,
      retry({
        clock,
        maxAttempts: 3,
        backoff: constant(1),
        retryOn: (outcome, ctx) => {
          seen.push([ctx.attempt, outcome.ok ? (outcome.value as number) : -1]);
          return true;
        },
      }).execute((ctx) => ctx.attempt * 10),
    );
    expect(seen).toEqual([
      [1, 10],
      [2, 20],
      [3, 30],
    ]);
  });

  it('waits the delay retryOn gives instead of the backoff', async () => {
    const clock = new VirtualClock();
    const starts: number[] = [];
    const policy = retry({ clock, backoff: constant(10), retryOn: () => ({ retry: true, delayMs: 700 }) });
    await settle(
      clock,
      policy.execute(() => {
        starts.push(clock.now());
        throw new Error('x');
      }),
    );
    expect(starts).toEqual([0, 700, 1400]);
  });

  it('honours an error’s retryAfterMs hint over the backoff', async () => {
    const clock = new VirtualClock();
    const starts: number[] = [];
    await settle(
      clock,
      retry({ clock, backoff: constant(10) }).execute(() => {
        starts.push(clock.now());
        throw Object.assign(new Error('slow down'), { retryAfterMs: 2_000 });
      }),
    );
    expect(starts).toEqual([0, 2_000, 4_000]);
  });

  it('stops at once, with the real error, when a Retry-After hint reaches past the deadline', async () => {
    const clock = new VirtualClock();
    const reasons: string[] = [];
    const inner = retry({ clock });
    inner.onGiveUp((e) => reasons.push(e.reason));
    const hinted = Object.assign(new Error('busy'), { retryAfterMs: 5_000 });
    const { error, at } = await settle(
      clock,
      pipeline(deadline(1_000, { clock }), inner).execute(() => {
        throw hinted;
      }),
    );
    expect(error).toBe(hinted);
    expect(reasons).toEqual(['deadline']);
    expect(at).toBe(0);
  });

  it('never sleeps past the deadline and rethrows the last real error, not a timeout', async () => {
    const clock = new VirtualClock();
    const starts: number[] = [];
    const policy = pipeline(
      deadline(1_000, { clock }),
      retry({ clock, maxAttempts: 10, backoff: constant(300) }),
    );
    const { error, at } = await settle(
      clock,
      policy.execute(() => {
        starts.push(clock.now());
        throw reset();
      }),
    );
    expect(starts).toEqual([0, 300, 600, 900]);
    expect((error as { code?: string }).code).toBe('ECONNRESET');
    expect(at).toBe(900);
  });

  it('does not start an attempt that would get less than minAttemptMs', async () => {
    const clock = new VirtualClock();
    const starts: number[] = [];
    const inner = retry({ clock, maxAttempts: 10, backoff: constant(300), minAttemptMs: 150 });
    const reasons: string[] = [];
    inner.onGiveUp((e) => reasons.push(e.reason));
    const { error } = await settle(
      clock,
      pipeline(deadline(1_000, { clock }), inner).execute(() => {
        starts.push(clock.now());
        throw reset();
      }),
    );
    // At 600 ms, 400 ms are left; after a 300 ms wait only 100 would remain.
    expect(starts).toEqual([0, 300, 600]);
    expect((error as { code?: string }).code).toBe('ECONNRESET');
    expect(reasons).toEqual(['deadline']);
  });

  it('does not start even the first attempt when less than minAttemptMs is left', async () => {
    const clock = new VirtualClock();
    const inner = retry({ clock, minAttemptMs: 200 });
    const giveUps: GiveUpEvent[] = [];
    inner.onGiveUp((e) => giveUps.push(e));
    let calls = 0;
    const { error } = await settle(
      clock,
      withDeadline(150, () => inner.execute(() => calls++), { clock }),
    );
    expect(calls).toBe(0);
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toMatchObject({ source: 'deadline', budgetMs: 150 });
    expect((error as Error).message).toContain('minAttemptMs (200 ms)');
    expect(giveUps).toEqual([
      { attempts: 0, reason: 'deadline', outcome: { ok: false, error }, operation: undefined },
    ]);
    // With enough time left, or no deadline at all, the attempt runs.
    expect(await withDeadline(250, () => inner.execute(() => 'ran'), { clock })).toBe('ran');
    expect(await inner.execute(() => 'no deadline')).toBe('no deadline');
  });

  it('retries a per-attempt timeout, and stops when the next one would not fit the deadline', async () => {
    const clock = new VirtualClock();
    let calls = 0;
    const { error, at } = await settle(
      clock,
      pipeline(
        deadline(1_000, { clock }),
        retry({ clock, maxAttempts: 5, backoff: constant(50) }),
        timeout(200, { clock }),
      ).execute((ctx) => {
        calls++;
        return hang(ctx);
      }),
    );
    // Attempts at 0, 250, 500, 750, each timing out after 200 ms; at 950 only
    // 50 ms are left, which a 50 ms wait would use up.
    expect(calls).toBe(4);
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect((error as DeadlineExceededError).source).toBe('timeout');
    expect(at).toBe(950);
  });

  it('does not retry when the overall deadline fires during an attempt', async () => {
    const clock = new VirtualClock();
    let calls = 0;
    const { error, at } = await settle(
      clock,
      pipeline(deadline(300, { clock }), retry({ clock, maxAttempts: 5, retryOn: () => true })).execute(
        (ctx) => {
          calls++;
          return hang(ctx);
        },
      ),
    );
    expect(calls).toBe(1);
    expect((error as DeadlineExceededError).source).toBe('deadline');
    expect(at).toBe(300);
  });

  it('stops with reason budget when the shared budget is empty, and recovers as the window slides', async () => {
    const clock = new VirtualClock();
    const budget = retryBudget({ ratio: 0, minRetriesPerSecond: 1, windowMs: 2_000, clock });
    const a = retry({ clock, maxAttempts: 5, backoff: constant(0), budget });
    const b = retry({ clock, maxAttempts: 5, backoff: constant(0), budget });
    const reasons: string[] = [];
    a.onGiveUp((e) => reasons.push(`a:${e.reason}:${e.attempts}`));
    b.onGiveUp((e) => reasons.push(`b:${e.reason}:${e.attempts}`));
    const fail = () => {
      throw reset();
    };
    await settle(clock, a.execute(fail));
    await settle(clock, b.execute(fail));
    expect(reasons).toEqual(['a:budget:3', 'b:budget:1']);
    expect(budget.available()).toBe(0);
    await clock.advance(1_000);
    // Half the window later the spent retries are still in it.
    expect(budget.available()).toBe(0);
    await clock.advance(1_000);
    expect(budget.available()).toBe(2);
    await settle(clock, b.execute(fail));
    expect(reasons.at(-1)).toBe('b:budget:3');
    // The budget never arms a timer: windows slide on the clock's readings.
    expect(clock.pendingTimers).toBe(0);
  });

  it('grants ratio × requests retries in the window', async () => {
    const clock = new VirtualClock();
    const budget = retryBudget({ ratio: 0.5, minRetriesPerSecond: 0, clock });
    const policy = retry({ clock, maxAttempts: 100, backoff: constant(1), budget });
    for (let i = 0; i < 10; i++) await policy.execute(() => 'fine');
    let calls = 0;
    await settle(
      clock,
      policy.execute(() => {
        calls++;
        throw reset();
      }),
    );
    // 11 requests in the window: 5.5 retries allowed, so 5 retries after the first call.
    expect(calls).toBe(6);
    expect(budget.stats()).toEqual({ requests: 11, retries: 5 });
  });

  it('ends a sleep the instant the caller aborts, rethrowing the caller’s reason unchanged', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    const reason = { why: 'user went away' };
    let calls = 0;
    const p = retry({ clock, backoff: constant(1_000) })
      .execute(
        () => {
          calls++;
          throw reset();
        },
        { signal: controller.signal },
      )
      .catch((e: unknown) => e);
    await clock.advance(10);
    expect(clock.pendingTimers).toBe(1);
    controller.abort(reason);
    expect(await p).toBe(reason);
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(5_000);
    expect(calls).toBe(1);
  });

  it('reports the abort during a sleep as the reason it gave up', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    const policy = retry({ clock, backoff: constant(1_000) });
    const giveUps: GiveUpEvent[] = [];
    policy.onGiveUp((e) => giveUps.push(e));
    const failure = reset();
    const p = policy
      .execute(
        () => {
          throw failure;
        },
        { signal: controller.signal },
      )
      .catch((e: unknown) => e);
    await clock.advance(500);
    controller.abort('gone');
    expect(await p).toBe('gone');
    expect(giveUps).toEqual([
      { attempts: 1, reason: 'aborted', outcome: { ok: false, error: failure }, operation: undefined },
    ]);
  });

  it('gives up with reason deadline when a deadline signal aborts a sleep', async () => {
    const clock = new VirtualClock();
    const policy = retry({ clock, maxAttempts: 5, backoff: constant(400) });
    const reasons: string[] = [];
    policy.onGiveUp((e) => reasons.push(e.reason));
    let calls = 0;
    // The caller hands over a Deadline's signal rather than a deadline() policy:
    // the retry cannot see the instant in ctx.deadline, only the abort.
    const limit = Deadline.after(300, { clock });
    const { error, at } = await settle(
      clock,
      policy.execute(
        () => {
          calls++;
          throw reset();
        },
        { signal: limit.signal },
      ),
    );
    expect(calls).toBe(1);
    expect(at).toBe(300);
    expect(error).toMatchObject({ code: 'ERR_DEADLINE_EXCEEDED', source: 'deadline' });
    expect(reasons).toEqual(['deadline']);
  });

  it('does not retry after the caller aborts during an attempt', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    let calls = 0;
    const policy = retry({ clock, retryOn: () => true });
    const reasons: string[] = [];
    policy.onGiveUp((e) => reasons.push(e.reason));
    const p = policy
      .execute(
        (ctx) => {
          calls++;
          return hang(ctx);
        },
        { signal: controller.signal },
      )
      .catch((e: unknown) => e);
    await clock.advance(10);
    controller.abort(new Error('stop'));
    expect(((await p) as Error).message).toBe('stop');
    await clock.runAll();
    expect(calls).toBe(1);
    expect(reasons).toEqual(['aborted']);
  });

  it('leaves no listeners on a long-lived caller signal', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    const policy = pipeline(retry({ clock, backoff: constant(1) }), timeout(100, { clock }));
    for (let i = 0; i < 2_000; i++) {
      await settle(
        clock,
        policy.execute(
          (ctx) => {
            if (ctx.attempt === 1) throw reset();
            return i;
          },
          { signal: controller.signal },
        ),
      );
    }
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('keeps listener counts flat on a shared signal over 100,000 happy-path calls', async () => {
    const controller = new AbortController();
    const policy = retry({ clock: new VirtualClock() });
    let sum = 0;
    for (let i = 0; i < 100_000; i++) {
      sum += await policy.execute((ctx) => (ctx.signal.aborted ? 0 : 1), { signal: controller.signal });
    }
    expect(sum).toBe(100_000);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('stops with a CallbackError when retryOn returns an unusable delay', async () => {
    const clock = new VirtualClock();
    const { error } = await settle(
      clock,
      retry({ clock, retryOn: () => ({ retry: true, delayMs: -5 }) }).execute(() => {
        throw reset();
      }),
    );
    expect(error).toBeInstanceOf(CallbackError);
    expect((error as CallbackError).cause).toBeInstanceOf(RangeError);
    expect((error as Error).message).toContain('delayMs -5');
  });

  it('stops with a CallbackError when retryOn throws', async () => {
    const clock = new VirtualClock();
    let calls = 0;
    const boom = new Error('classifier bug');
    const { error } = await settle(
      clock,
      retry({
        clock,
        retryOn: () => {
          throw boom;
        },
      }).execute(() => {
        calls++;
        throw reset();
      }),
    );
    expect(error).toBeInstanceOf(CallbackError);
    expect((error as CallbackError).cause).toBe(boom);
    expect((error as CallbackError).code).toBe('ERR_CALLBACK_FAILED');
    expect(calls).toBe(1);
  });

  it('stops with a CallbackError when the backoff throws or returns a bad delay', async () => {
    const clock = new VirtualClock();
    const { error } = await settle(
      clock,
      retry({ clock, backoff: fromFunction(() => Number.NaN) }).execute(() => {
        throw reset();
      }),
    );
    expect(error).toBeInstanceOf(CallbackError);
    expect(String((error as CallbackError).message)).toContain('NaN');
  });

  it('reports each retry and success to listeners', async () => {
    const clock = new VirtualClock();
    const policy = retry({ clock, backoff: constant(20) });
    const retries: RetryEvent[] = [];
    const successes: number[] = [];
    const sub = policy.onRetry((e) => retries.push(e));
    policy.onSuccess((e) => successes.push(e.attempts));
    const failure = reset();
    await settle(
      clock,
      policy.execute(
        (ctx) => {
          if (ctx.attempt === 1) throw failure;
          return 1;
        },
        { operation: 'get-user' },
      ),
    );
    expect(retries).toEqual([
      { attempt: 1, delayMs: 20, outcome: { ok: false, error: failure }, operation: 'get-user' },
    ]);
    expect(successes).toEqual([2]);
    sub.dispose();
    await settle(
      clock,
      policy.execute((ctx) => {
        if (ctx.attempt === 1) throw failure;
        return 1;
      }),
    );
    expect(retries).toHaveLength(1);
  });

  it('rejects bad options all at once, naming each value', () => {
    let caught: unknown;
    try {
      retry({ maxAttempts: 1.5, minAttemptMs: -1, backoff: 5 as never, budget: {} as never });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidOptionsError);
    const message = (caught as Error).message;
    expect(message).toContain('maxAttempts must be an integer >= 1, got 1.5');
    expect(message).toContain('minAttemptMs must be a finite number >= 0, got -1');
    expect(message).toContain('backoff must be a backoff');
    expect(message).toContain('budget must be a retry budget');
    for (const bad of [0, -1, Number.NaN])
      expect(() => retry({ maxAttempts: bad })).toThrow(InvalidOptionsError);
    expect(() => retryBudget({ ratio: 1001 })).toThrow(/ratio must be .*<= 1000, got 1001/);
    expect(() => retryBudget({ ratio: -0.1, windowMs: 0 })).toThrow(/\(2\)/);
  });
});
