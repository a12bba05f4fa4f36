import { getEventListeners } from 'node:events';
import { VirtualClock } from '@bulwark/clock';
import {
  type ExecutionContext,
  NoopPolicy,
  noopPolicy,
  type Operation,
  pipeline,
  remainingMs,
} from '@bulwark/core';
import { BasePolicy, followAbort, rootContext, ScopedContext, withAttempt } from '@bulwark/core/authoring';
import { describe, expect, it } from 'vitest';

/** Records when it enters and leaves, to show nesting order. */
class Tracing extends BasePolicy {
  readonly name: string;
  readonly log: string[];
  constructor(name: string, log: string[], clock?: VirtualClock) {
    super(clock);
    this.name = name;
    this.log = log;
  }
  async run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    this.log.push(`enter ${this.name}`);
    try {
      return await fn(ctx);
    } finally {
      this.log.push(`leave ${this.name}`);
    }
  }
}

/** Runs the function twice, as a retry would, with attempt numbers. */
class Twice extends BasePolicy {
  async run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    await fn(withAttempt(ctx, 1));
    return fn(withAttempt(ctx, 2));
  }
}

describe('pipeline', () => {
  it('puts the first policy outermost', async () => {
    const log: string[] = [];
    const p = pipeline(new Tracing('a', log), new Tracing('b', log), new Tracing('c', log));
    await p.execute(() => {
      log.push('fn');
    });
    expect(log).toEqual(['enter a', 'enter b', 'enter c', 'fn', 'leave c', 'leave b', 'leave a']);
  });

  it('lets an outer policy run the inner chain more than once', async () => {
    const log: string[] = [];
    const attempts: number[] = [];
    const p = pipeline(new Twice(undefined), new Tracing('inner', log));
    await p.execute((ctx) => {
      attempts.push(ctx.attempt);
    });
    expect(attempts).toEqual([1, 2]);
    expect(log).toEqual(['enter inner', 'leave inner', 'enter inner', 'leave inner']);
  });

  it('passes values and errors through unchanged', async () => {
    const p = pipeline(noopPolicy, new NoopPolicy(undefined), noopPolicy);
    const value = { answer: 42 };
    await expect(p.execute(() => value)).resolves.toBe(value);
    const error = new Error('nope');
    await expect(
      p.execute(() => {
        throw error;
      }),
    ).rejects.toBe(error);
    await expect(p.execute(() => Promise.reject(error))).rejects.toBe(error);
  });

  it('gives the first call attempt 1 and the operation name', async () => {
    let seen: ExecutionContext | undefined;
    await pipeline(noopPolicy).execute(
      (ctx) => {
        seen = ctx;
      },
      { operation: 'get-user' },
    );
    expect(seen?.attempt).toBe(1);
    expect(seen?.operation).toBe('get-user');
    expect(seen?.deadline).toBeUndefined();
  });

  it('uses the first non-system clock among its policies for the context', async () => {
    const clock = new VirtualClock(123);
    let seen: ExecutionContext | undefined;
    await pipeline(noopPolicy, new Tracing('x', [], clock)).execute((ctx) => {
      seen = ctx;
    });
    expect(seen?.clock).toBe(clock);
  });

  it('accepts a policy that only has execute()', async () => {
    const calls: string[] = [];
    const foreign = {
      execute<T>(fn: Operation<T>, options?: { signal?: AbortSignal }): Promise<T> {
        calls.push(options?.signal ? 'with signal' : 'without signal');
        return Promise.resolve(fn(undefined as never));
      },
    };
    const result = await pipeline(noopPolicy, foreign).execute((ctx) => ctx.attempt);
    expect(result).toBe(1);
    expect(calls).toEqual(['with signal']);
  });

  it('rejects arguments that are not policies, naming them', () => {
    expect(() => pipeline(noopPolicy, 42 as never)).toThrow(
      /every argument must be a policy with execute\(\), got 42/,
    );
  });

  it('with no policy is the noop policy', () => {
    expect(pipeline()).toBe(noopPolicy);
  });
});

describe('execute and the caller signal', () => {
  it('rejects at once with the reason when the signal has already aborted', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled by user');
    controller.abort(reason);
    let ran = false;
    await expect(
      noopPolicy.execute(
        () => {
          ran = true;
        },
        { signal: controller.signal },
      ),
    ).rejects.toBe(reason);
    expect(ran).toBe(false);
  });

  it('rejects with the reason, unchanged, when the signal aborts during the call', async () => {
    const controller = new AbortController();
    const reason = { custom: 'reason object' };
    const p = noopPolicy.execute(() => new Promise(() => {}), { signal: controller.signal });
    controller.abort(reason);
    await expect(p).rejects.toBe(reason);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('hands the caller signal to the function as ctx.signal', async () => {
    const controller = new AbortController();
    const seen = await noopPolicy.execute((ctx) => ctx.signal, { signal: controller.signal });
    expect(seen).toBe(controller.signal);
  });

  it('gives a never-aborted signal when the caller has none', async () => {
    const seen = await noopPolicy.execute((ctx) => ctx.signal);
    expect(seen.aborted).toBe(false);
  });

  it('keeps listener counts flat after 100,000 calls sharing one signal', async () => {
    const controller = new AbortController();
    const p = pipeline(noopPolicy, noopPolicy);
    for (let i = 0; i < 100_000; i++) await p.execute((ctx) => ctx.attempt, { signal: controller.signal });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});

describe('ExecutionContext', () => {
  it('has the documented shape: signal, attempt, deadline, clock, operation', async () => {
    const clock = new VirtualClock(5);
    const controller = new AbortController();
    const seen = await new Tracing('t', [], clock).execute(
      (ctx) => ({
        signal: ctx.signal,
        attempt: ctx.attempt,
        deadline: ctx.deadline,
        clock: ctx.clock,
        operation: ctx.operation,
      }),
      { signal: controller.signal, operation: 'op' },
    );
    expect(seen).toEqual({
      signal: controller.signal,
      attempt: 1,
      deadline: undefined,
      clock,
      operation: 'op',
    });
  });

  it('creates a scoped signal, and its link to the parent signal, only when something reads it', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    const listeners = () => getEventListeners(controller.signal, 'abort').length;
    const parent = rootContext(clock, { signal: controller.signal });
    const scope = new ScopedContext(parent, 100);
    expect(listeners()).toBe(0);
    const signal = scope.signal;
    expect(scope.signal).toBe(signal);
    expect(listeners()).toBe(1);
    controller.abort('stop');
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe('stop');
    expect(listeners()).toBe(0);
  });

  it('aborts a nested scope read only at the innermost level, with one listener on the caller at most', () => {
    const controller = new AbortController();
    const root = rootContext(new VirtualClock(), { signal: controller.signal });
    const outer = new ScopedContext(root, 100);
    const inner = new ScopedContext(withAttempt(new ScopedContext(withAttempt(outer, 2), 80), 2), 50);
    const signal = inner.signal;
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    outer.abort('outer gave up');
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe('outer gave up');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);

    const followsCaller = new ScopedContext(new ScopedContext(root, 100), 50);
    const late = followsCaller.signal;
    controller.abort('caller left');
    expect(late.reason).toBe('caller left');
  });

  it('lets a nested scope stop following when released, and follows nothing under a root without a signal', () => {
    const outer = new ScopedContext(rootContext(new VirtualClock()), 100);
    const first = new ScopedContext(withAttempt(outer, 1), 50);
    const firstSignal = first.signal;
    first.release();
    const second = new ScopedContext(withAttempt(outer, 2), 50);
    const secondSignal = second.signal;
    outer.abort('stop');
    expect(firstSignal.aborted).toBe(false);
    expect(secondSignal.reason).toBe('stop');
    // Read after the outer scope aborted: aborted at once with its reason.
    expect(new ScopedContext(outer, 10).signal.reason).toBe('stop');
    const free = new ScopedContext(rootContext(new VirtualClock()), 100);
    expect(free.signal.aborted).toBe(false);
  });

  it('aborts a scoped signal on its own without touching the parent', () => {
    const controller = new AbortController();
    const scope = new ScopedContext(rootContext(new VirtualClock(), { signal: controller.signal }), 50);
    const signal = scope.signal;
    scope.abort('own reason');
    scope.abort('ignored');
    expect(signal.reason).toBe('own reason');
    expect(controller.signal.aborted).toBe(false);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    // Read for the first time after an abort: already aborted with that reason.
    const late = new ScopedContext(rootContext(new VirtualClock()), 50);
    late.abort('early');
    expect(late.signal.aborted).toBe(true);
    expect(late.signal.reason).toBe('early');
  });

  it('does not link a signal first read after release to the parent', () => {
    const controller = new AbortController();
    const scope = new ScopedContext(rootContext(new VirtualClock(), { signal: controller.signal }), 50);
    scope.release();
    const signal = scope.signal;
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(signal.aborted).toBe(false);
  });

  it('followAbort: a scope aborts a following controller itself, without making a signal or a listener', () => {
    const caller = new AbortController();
    const root = rootContext(new VirtualClock(), { signal: caller.signal });
    const outer = new ScopedContext(root, 100);
    const scope = new ScopedContext(withAttempt(outer, 2), 50);
    const controller = new AbortController();
    const unfollow = followAbort(scope, controller);
    // Neither scope made a signal: the only listener is the outer scope's, on the caller.
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(1);
    scope.abort('attempt timed out');
    expect(controller.signal.reason).toBe('attempt timed out');
    unfollow();

    // Stopped following: a later abort of the scope it followed leaves it alone.
    const other = new AbortController();
    const stop = followAbort(new ScopedContext(outer, 50), other);
    stop();
    outer.abort('deadline');
    expect(other.signal.aborted).toBe(false);
    // Already aborted: the controller is aborted at once, with the same reason.
    const late = new AbortController();
    followAbort(new ScopedContext(outer, 10), late)();
    expect(late.signal.reason).toBe('deadline');
  });

  it('followAbort: a context of another kind is followed through its signal, and unfollowing removes the listener', () => {
    const source = new AbortController();
    const foreign = { ...rootContext(new VirtualClock()), signal: source.signal };
    const controller = new AbortController();
    const unfollow = followAbort(foreign, controller);
    expect(getEventListeners(source.signal, 'abort')).toHaveLength(1);
    unfollow();
    expect(getEventListeners(source.signal, 'abort')).toHaveLength(0);
    followAbort(foreign, controller);
    source.abort('gone');
    expect(controller.signal.reason).toBe('gone');
    // A root without a caller signal never aborts: nothing to follow.
    const free = new AbortController();
    followAbort(rootContext(new VirtualClock()), free)();
    expect(free.signal.aborted).toBe(false);
  });

  it('gives a root context with no caller signal a signal only on demand, and derived contexts share it', () => {
    const root = rootContext(new VirtualClock());
    const second = withAttempt(root, 2);
    expect(second.attempt).toBe(2);
    expect(second.signal).toBe(root.signal);
    expect(root.signal.aborted).toBe(false);
    expect(remainingMs(root)).toBe(Number.POSITIVE_INFINITY);
  });
});
