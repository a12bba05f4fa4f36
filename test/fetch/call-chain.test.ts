// The call chain of a fetch is a pipeline of core policies: deadline(deadlineMs),
// policies.call, retry(). Its deadline is core's deadline() policy, reachable
// as fetch.deadline; once the call has returned a body, the body's read keeps
// a deadline of its own at the same instant.
import { VirtualClock } from '@bulwark/clock';
import { deadlineTimers } from '@bulwark/clock/authoring';
import { DeadlineExceededError, fallback, NoopPolicy } from '@bulwark/core';
import { DeadlinePolicy, withDeadline } from '@bulwark/deadline';
import { createFetch } from '@bulwark/fetch';
import { describe, expect, it } from 'vitest';
import { fakeFetch, hang, type Script, settle, stallingResponse } from './helpers.ts';

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
});
