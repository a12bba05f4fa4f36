// The call chain of a fetch is a pipeline of core policies: deadline(deadlineMs),
// policies.call, retry(). Its deadline is core's deadline() policy, reachable
// as fetch.deadline; once the call has returned a body, the body's read keeps
// a deadline of its own at the same instant.
import { sleep, VirtualClock } from '@bulwark/clock';
import { deadlineTimers } from '@bulwark/clock/authoring';
import {
  DeadlineExceededError,
  type ExecutionContext,
  fallback,
  NoopPolicy,
  type Operation,
} from '@bulwark/core';
import { BasePolicy } from '@bulwark/core/authoring';
import { DeadlinePolicy, deadline, withDeadline } from '@bulwark/deadline';
import { createFetch } from '@bulwark/fetch';
import { constant } from '@bulwark/retry';
import { describe, expect, it } from 'vitest';
import { collect } from '../support/gc.ts';
import { fakeFetch, hang, type Script, settle, stallingResponse, trackedResponse } from './helpers.ts';

/** A policy that, once the call inside has answered, keeps the answer 200 ms more (ignoring its signal). */
class HoldsAnswer extends BasePolicy {
  async run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    const answer = await fn(ctx);
    await sleep(200, { clock: this.clock });
    return answer;
  }
}

const URL_A = 'http://a.test/items';

function setup(script: Script, options: Parameters<typeof createFetch>[0] = {}) {
  const clock = new VirtualClock();
  const fake = fakeFetch(script);
  const fetch = createFetch({ clock, fetch: fake.fetch, name: 'inventory', ...options });
  return { clock, fetch, seen: fake.seen };
}

describe("a fetch's call deadline", () => {
  it('is a deadline() policy whose onExpired reports the call it ended, and no other', async () => {
    const { clock, fetch } = setup(
      (request) => (request.url.endsWith('/slow') ? hang(request) : new Response('ok')),
      {
        deadlineMs: 2_000,
        attemptTimeoutMs: Number.POSITIVE_INFINITY,
      },
    );
    expect(fetch.deadline).toBeInstanceOf(DeadlinePolicy);
    const expired: unknown[] = [];
    fetch.deadline.onExpired((event) => expired.push(event));
    expect(await (await fetch(URL_A)).text()).toBe('ok');
    const slow = fetch(`${URL_A}/slow`).catch((error: unknown) => error);
    await settle();
    await clock.advance(2_000);
    expect(await slow).toMatchObject({ source: 'deadline', budgetMs: 2_000 });
    expect(expired).toEqual([{ source: 'deadline', budgetMs: 2_000, attempt: 1, operation: 'inventory' }]);
  });

  it("bounds a body's read by an earlier enclosing deadline, with what it had left", async () => {
    const { clock, fetch } = setup((request) => stallingResponse(request.signal, 'x'), {
      deadlineMs: 10_000,
    });
    await clock.advance(100);
    const response = await withDeadline(700, () => fetch(URL_A), { clock });
    const reading = response.text().catch((error: unknown) => error);
    await clock.advance(699);
    await settle();
    expect(deadlineTimers(clock).pending).toBe(1);
    await clock.advance(1);
    const error = await reading;
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toMatchObject({ source: 'deadline', budgetMs: 700 });
    expect(deadlineTimers(clock).pending).toBe(0);
  });

  it("still bounds a body's read under call policies", async () => {
    const clock = new VirtualClock();
    const fake = fakeFetch((request) => stallingResponse(request.signal, 'x'));
    const fetch = createFetch({
      clock,
      fetch: fake.fetch,
      deadlineMs: 3_000,
      policies: { call: [new NoopPolicy(clock)] },
    });
    const response = await fetch(URL_A);
    const reading = response.text().catch((error: unknown) => error);
    await clock.advance(2_999);
    await settle();
    expect(fake.seen[0]!.request.signal.aborted).toBe(false);
    await clock.advance(1);
    expect(await reading).toMatchObject({ source: 'deadline', budgetMs: 3_000 });
  });

  it('arms nothing for a response a call policy made itself', async () => {
    const clock = new VirtualClock();
    const fake = fakeFetch(() => Promise.reject(new TypeError('fetch failed')));
    const fetch = createFetch({
      clock,
      fetch: fake.fetch,
      maxAttempts: 1,
      policies: { call: [fallback(() => new Response('stale'), { clock })] },
    });
    const response = await fetch(URL_A);
    expect(await response.text()).toBe('stale');
    expect(deadlineTimers(clock).pending).toBe(0);
  });

  for (const place of ['call', 'attempt'] as const) {
    it(`lets go of a body a policy in policies.${place} still held when the deadline ended the call`, async () => {
      const clock = new VirtualClock();
      const sent: AbortSignal[] = [];
      const bodies: Array<{ cancelled: boolean }> = [];
      const fetch = createFetch({
        clock,
        deadlineMs: 1_000,
        attemptTimeoutMs: Number.POSITIVE_INFINITY,
        maxAttempts: 1,
        fetch: async (_input, init) => {
          sent.push(init!.signal!);
          await sleep(900, { clock });
          const tracked = trackedResponse(200, 'ok');
          bodies.push(tracked.state);
          return tracked.response;
        },
        policies: { [place]: [new HoldsAnswer(clock)] },
      });
      const outcome = fetch(URL_A).catch((error: unknown) => error);
      await settle();
      await clock.advance(900);
      await settle();
      expect(sent[0]!.aborted).toBe(false);
      await clock.advance(100);
      expect(await outcome).toMatchObject({ source: 'deadline', budgetMs: 1_000 });
      // Nobody will read that answer: its read is aborted, so its connection is let go.
      expect(sent[0]!.aborted).toBe(true);
      expect(sent[0]!.reason).toBeInstanceOf(DeadlineExceededError);
      await clock.advance(200);
      expect(deadlineTimers(clock).pending).toBe(0);
    });
  }

  it.each([
    ['its deadline', 'hangs'],
    ['a network error', 'fails'],
    ['a response without a body', 'answers'],
  ] as const)("keeps nothing of a call %s ended on a caller's long-lived signal", async (_how, second) => {
    const clock = new VirtualClock();
    const caller = new AbortController();
    const firstAttempts: Array<WeakRef<AbortSignal>> = [];
    let n = 0;
    const fetch = createFetch({
      clock,
      deadlineMs: 1_000,
      attemptTimeoutMs: Number.POSITIVE_INFINITY,
      backoff: constant(10),
      maxAttempts: 2,
      breakers: false,
      budget: false,
      // Each call: a 503 with a body (retried, its body discarded), then an attempt that hangs.
      fetch: (input, init) => {
        if (++n % 2 === 1) {
          firstAttempts.push(new WeakRef(init!.signal!));
          return Promise.resolve(new Response('busy', { status: 503 }));
        }
        if (second === 'fails') return Promise.reject(new TypeError('fetch failed'));
        if (second === 'answers') return Promise.resolve(new Response(null, { status: 204 }));
        return hang(new Request(input as string, init));
      },
    });
    for (let i = 0; i < 20; i++) {
      const outcome = fetch(URL_A, { signal: caller.signal }).catch((error: unknown) => error);
      await settle();
      await clock.advance(10);
      await settle();
      await clock.advance(990);
      const ended = await outcome;
      if (second === 'answers') expect(ended).toMatchObject({ status: 204 });
      else expect(ended).toBeInstanceOf(second === 'fails' ? TypeError : DeadlineExceededError);
    }
    await collect();
    expect(firstAttempts.filter((ref) => ref.deref() !== undefined)).toHaveLength(0);
    expect(caller.signal.aborted).toBe(false);
  });

  it("bounds a body's read by the fetch's own deadline, not a shorter deadline() in policies.call", async () => {
    const clock = new VirtualClock();
    const fake = fakeFetch((request) => stallingResponse(request.signal, 'x'));
    const fetch = createFetch({
      clock,
      fetch: fake.fetch,
      deadlineMs: 10_000,
      policies: { call: [deadline(500, { clock })] },
    });
    const response = await fetch(URL_A);
    const reading = response.text().catch((error: unknown) => error);
    await clock.advance(9_999);
    await settle();
    expect(fake.seen[0]!.request.signal.aborted).toBe(false);
    await clock.advance(1);
    expect(await reading).toMatchObject({ source: 'deadline', budgetMs: 10_000 });
  });
});
