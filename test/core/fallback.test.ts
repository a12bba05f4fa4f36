import { sleep, VirtualClock } from '@bulwark/clock';
import {
  CallbackError,
  DeadlineExceededError,
  type FallbackEvent,
  type FallbackOutcome,
  fallback,
  InvalidOptionsError,
  pipeline,
} from '@bulwark/core';
import { deadline, timeout } from '@bulwark/deadline';
import { describe, expect, it } from 'vitest';

describe('fallback()', () => {
  it('returns the result untouched when the call succeeds, without calling the handler', async () => {
    let called = 0;
    const policy = fallback(() => {
      called++;
      return 'spare';
    });
    expect(await policy.execute(() => 'fresh')).toBe('fresh');
    expect(await policy.execute(async () => 'fresh')).toBe('fresh');
    expect(called).toBe(0);
  });

  it('replaces any error by default, and the handler sees the outcome and the context', async () => {
    const boom = new Error('down');
    const seen: { outcome: FallbackOutcome; operation: string | undefined; attempt: number }[] = [];
    const policy = fallback((outcome, ctx) => {
      seen.push({ outcome, operation: ctx.operation, attempt: ctx.attempt });
      return 'cached';
    });
    expect(await policy.execute(() => Promise.reject(boom), { operation: 'rows' })).toBe('cached');
    expect(
      await policy.execute(() => {
        throw boom;
      }),
    ).toBe('cached');
    expect(seen).toEqual([
      { outcome: { ok: false, error: boom }, operation: 'rows', attempt: 1 },
      { outcome: { ok: false, error: boom }, operation: undefined, attempt: 1 },
    ]);
  });

  it('selects outcomes with on: only chosen errors, and results too', async () => {
    const policy = fallback(() => ({ status: 200, body: 'stale' }), {
      on: (outcome) =>
        outcome.ok
          ? (outcome.value as { status: number }).status >= 500
          : (outcome.error as { code?: string }).code === 'ECONNREFUSED',
    });
    expect(await policy.execute(async () => ({ status: 503, body: '' }))).toEqual({
      status: 200,
      body: 'stale',
    });
    expect(await policy.execute(async () => ({ status: 404, body: 'nope' }))).toEqual({
      status: 404,
      body: 'nope',
    });
    const refused = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    expect(await policy.execute(() => Promise.reject(refused))).toEqual({ status: 200, body: 'stale' });
    const other = new TypeError('bug');
    await expect(policy.execute(() => Promise.reject(other))).rejects.toBe(other);
  });

  it("passes the caller's abort reason through unchanged instead of falling back", async () => {
    const clock = new VirtualClock();
    let called = 0;
    const policy = fallback(
      () => {
        called++;
        return 'spare';
      },
      { clock },
    );
    const controller = new AbortController();
    const call = policy.execute((ctx) => sleep(1000, { clock, signal: ctx.signal }).then(() => 'late'), {
      signal: controller.signal,
    });
    const reason = new Error('caller left');
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    await clock.runAll();
    expect(called).toBe(0);
  });

  it('outermost, it replaces a timeout; inside a deadline, it gives up when the deadline fires', async () => {
    const clock = new VirtualClock();
    const slow = (ctx: { signal: AbortSignal }) =>
      sleep(1000, { clock, signal: ctx.signal }).then(() => 'late');
    const outer = pipeline(
      fallback(() => 'spare', { clock }),
      timeout(100, { clock }),
    );
    const outerCall = outer.execute(slow);
    await clock.advance(100);
    expect(await outerCall).toBe('spare');

    const inner = pipeline(
      deadline(100, { clock }),
      fallback(() => 'spare', { clock }),
    );
    const innerCall = inner.execute(slow).catch((e: unknown) => e);
    await clock.advance(100);
    expect(await innerCall).toBeInstanceOf(DeadlineExceededError);
  });

  it('propagates what the handler throws, unchanged', async () => {
    const mapped = new Error('mapped');
    const policy = fallback(() => {
      throw mapped;
    });
    await expect(policy.execute(() => Promise.reject(new Error('x')))).rejects.toBe(mapped);
    const asyncPolicy = fallback(async () => Promise.reject(mapped));
    await expect(asyncPolicy.execute(() => Promise.reject(new Error('x')))).rejects.toBe(mapped);
  });

  it('wraps an on that throws or returns a non-boolean in a CallbackError', async () => {
    const bug = new Error('bug');
    const throwing = fallback(() => 'x', {
      on: () => {
        throw bug;
      },
    });
    const e = await throwing.execute(() => Promise.reject(new Error('down'))).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CallbackError);
    expect((e as CallbackError).cause).toBe(bug);
    const sloppy = fallback(() => 'x', { on: () => 'yes' as never });
    await expect(sloppy.execute(() => 'v')).rejects.toBeInstanceOf(CallbackError);
  });

  it('emits onFallback with the replaced outcome; the disposer stops it', async () => {
    const policy = fallback(() => 0, { name: 'rows' });
    const events: FallbackEvent[] = [];
    const sub = policy.onFallback((e) => events.push(e));
    const boom = new Error('down');
    await policy.execute(() => Promise.reject(boom), { operation: 'list' });
    sub.dispose();
    await policy.execute(() => Promise.reject(boom));
    expect(events).toEqual([{ outcome: { ok: false, error: boom }, name: 'rows', operation: 'list' }]);
  });

  it('refuses bad options, listing each with its value', () => {
    let error: unknown;
    try {
      fallback(42 as never, { on: 'errors' as never, name: 7 as never });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).violations.map((v) => [v.option, v.value])).toEqual([
      ['handler', 42],
      ['on', 'errors'],
      ['name', 7],
    ]);
  });
});
