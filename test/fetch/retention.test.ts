// What a call keeps alive after it returns a response with a body. The
// deadline must still abort that body's read, so the call stays in the clock's
// deadline timer until the deadline passes: at a high request rate, whatever
// that entry holds is multiplied by rate × deadlineMs. These tests check, with a
// forced garbage collection, that it holds neither the response, nor the
// request, nor the headers sent, nor the caller's Request.
import { VirtualClock } from '@bulwark/clock';
import { deadlineTimers } from '@bulwark/clock/authoring';
import { DeadlineExceededError } from '@bulwark/core';
import { createFetch, type FetchFunction } from '@bulwark/fetch';
import { constant } from '@bulwark/retry';
import { describe, expect, it } from 'vitest';
import { collect } from '../support/gc.ts';

interface Seen {
  response: WeakRef<Response>;
  headers: WeakRef<Headers>;
  signal: AbortSignal;
}

/** A fake fetch that answers with a small body and remembers only weakly what it handled. */
function weakFetch(seen: Seen[]): FetchFunction {
  return (_input, init) => {
    const response = new Response('ok', { headers: { 'content-type': 'text/plain' } });
    seen.push({
      response: new WeakRef(response),
      headers: new WeakRef(init!.headers as Headers),
      signal: init!.signal!,
    });
    return Promise.resolve(response);
  };
}

/** Makes one call whose body is read to the end, in a frame of its own so no local keeps anything. */
async function callAndRead(
  fetch: FetchFunction,
  input: () => string | Request,
  init?: RequestInit,
): Promise<WeakRef<object>> {
  const request = input();
  const response = await fetch(request, init);
  expect(await response.text()).toBe('ok');
  return new WeakRef(typeof request === 'string' ? response : request);
}

describe('what a call that returned a body keeps until its deadline', () => {
  it('the timer entry holds neither the response, the request nor the headers sent', async () => {
    const clock = new VirtualClock();
    const seen: Seen[] = [];
    const fetch = createFetch({ fetch: weakFetch(seen), clock, deadlineMs: 60_000 });
    const caller = await callAndRead(fetch, () => 'http://example.test/a');
    const request = await callAndRead(fetch, () => new Request('http://example.test/b', { method: 'PUT' }));
    // Both calls still wait on the deadline, to abort their bodies' reads.
    expect(deadlineTimers(clock).pending).toBe(2);
    await collect();
    expect(caller.deref()).toBeUndefined();
    expect(request.deref()).toBeUndefined();
    expect(seen.map((s) => s.response.deref())).toEqual([undefined, undefined]);
    expect(seen.map((s) => s.headers.deref())).toEqual([undefined, undefined]);
    // And the deadline still reaches the signal the body's read follows.
    await clock.advance(60_000);
    expect(deadlineTimers(clock).pending).toBe(0);
    for (const s of seen) {
      expect(s.signal.aborted).toBe(true);
      expect(s.signal.reason).toBeInstanceOf(DeadlineExceededError);
    }
  });

  it('holds nothing of the call with a caller signal either, and aborts with the deadline error', async () => {
    const clock = new VirtualClock();
    const seen: Seen[] = [];
    const fetch = createFetch({ fetch: weakFetch(seen), clock, deadlineMs: 60_000, maxAttempts: 1 });
    const controller = new AbortController();
    const response = await callAndRead(fetch, () => 'http://example.test/c', { signal: controller.signal });
    expect(deadlineTimers(clock).pending).toBe(1);
    await collect();
    expect(response.deref()).toBeUndefined();
    expect(seen[0]!.response.deref()).toBeUndefined();
    expect(seen[0]!.headers.deref()).toBeUndefined();
    await clock.advance(60_000);
    expect(deadlineTimers(clock).pending).toBe(0);
    expect(seen[0]!.signal.reason).toBeInstanceOf(DeadlineExceededError);
    expect(controller.signal.aborted).toBe(false);
  });

  it('keeps only the signal of the attempt that answered, not those of attempts retried', async () => {
    const clock = new VirtualClock();
    const signals: WeakRef<AbortSignal>[] = [];
    let answering: AbortSignal | undefined;
    const fetch = createFetch({
      clock,
      deadlineMs: 60_000,
      backoff: constant(10),
      fetch: (_input, init) => {
        signals.push(new WeakRef(init!.signal!));
        if (signals.length === 1) return Promise.resolve(new Response('busy', { status: 503 }));
        answering = init!.signal!;
        return Promise.resolve(new Response('ok'));
      },
    });
    const reading = callAndRead(fetch, () => 'http://example.test/e');
    await clock.advance(10);
    await reading;
    expect(signals).toHaveLength(2);
    const answered = new WeakRef(answering!);
    answering = undefined;
    await collect();
    // The retried attempt's response was discarded: nothing of that attempt is kept.
    expect(signals[0]!.deref()).toBeUndefined();
    // The answering attempt's signal is what the body's read follows: the deadline keeps it.
    const kept = answered.deref();
    expect(kept).toBeDefined();
    expect(deadlineTimers(clock).pending).toBe(1);
    await clock.advance(60_000);
    expect(kept!.reason).toBeInstanceOf(DeadlineExceededError);
  });

  it('a call whose response has no body leaves nothing in the timer', async () => {
    const clock = new VirtualClock();
    const fetch = createFetch({
      fetch: () => Promise.resolve(new Response(null, { status: 204 })),
      clock,
    });
    expect((await fetch('http://example.test/d')).status).toBe(204);
    expect(deadlineTimers(clock).pending).toBe(0);
  });
});
