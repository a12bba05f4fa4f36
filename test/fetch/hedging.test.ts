import { VirtualClock } from '@bulwark/clock';
import { DeadlineExceededError, InvalidOptionsError } from '@bulwark/core';
import { createFetch } from '@bulwark/fetch';
import { type HedgeDeniedEvent, HedgeLostError, hedging } from '@bulwark/hedging';
import { constant, retryBudget } from '@bulwark/retry';
import { describe, expect, it } from 'vitest';
import { fakeFetch, hang, type Script, settle, stallingResponse, trackedResponse } from './helpers.ts';

const URL_A = 'http://a.test/items?q=1';

function setup(script: Script, options: Parameters<typeof createFetch>[0] = {}, clock = new VirtualClock()) {
  const fake = fakeFetch(script);
  const fetch = createFetch({
    clock,
    fetch: fake.fetch,
    backoff: constant(100),
    hedging: { delayMs: 100 },
    ...options,
  });
  return { clock, fetch, seen: fake.seen };
}

/** Answers with `response` after `ms` on the clock, or rejects with the request's abort reason first. */
function answerAfter(
  clock: VirtualClock,
  ms: number,
  request: Request,
  response: () => Response,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const signal = request.signal;
    const timer = clock.setTimeout(() => resolve(response()), ms);
    signal.addEventListener(
      'abort',
      () => {
        timer.clear();
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** Records how a call settled, so a test can advance the clock meanwhile. */
function start(promise: Promise<Response>) {
  const state: { response?: Response; error?: unknown; settled: boolean } = { settled: false };
  const done = promise.then(
    (response) => {
      state.response = response;
      state.settled = true;
    },
    (error: unknown) => {
      state.error = error;
      state.settled = true;
    },
  );
  return { state, done };
}

describe('createFetch() hedging', () => {
  it("keeps the first attempt when a hedge is refused by the origin's full bulkhead", async () => {
    const clock = new VirtualClock();
    const { fetch, seen } = setup(
      (request) => answerAfter(clock, 300, request, () => new Response('first')),
      { bulkheads: { maxConcurrent: 1, maxQueue: 0 } },
      clock,
    );
    const call = start(fetch(URL_A));
    await clock.advance(100);
    await settle();
    await clock.advance(200);
    await call.done;
    expect(call.state.error).toBeUndefined();
    expect(await call.state.response?.text()).toBe('first');
    expect(seen).toHaveLength(1);
  });

  it('hedges a slow GET after the delay; the first answer wins and the loser is aborted', async () => {
    const clock = new VirtualClock();
    const { fetch, seen } = setup(
      (request, n) =>
        n === 1 ? hang(request) : answerAfter(clock, 50, request, () => new Response('hedge')),
      {},
      clock,
    );
    const hedges: number[] = [];
    fetch.hedging?.onHedge(({ attempt }) => hedges.push(attempt));
    const call = start(fetch(URL_A));
    await clock.advance(99);
    expect(seen).toHaveLength(1);
    await clock.advance(1);
    await settle();
    expect(seen).toHaveLength(2);
    await clock.advance(50);
    await call.done;
    expect(await call.state.response!.text()).toBe('hedge');
    expect(hedges).toEqual([2]);
    // The same request, numbered as the next attempt, and the loser aborted through its signal.
    expect(seen[1]!.request.url).toBe(URL_A);
    expect(seen[1]!.request.headers.get('x-retry-attempt')).toBe('2');
    expect(seen[0]!.request.signal.aborted).toBe(true);
    expect(seen[0]!.request.signal.reason).toBeInstanceOf(HedgeLostError);
  });

  it('hedges HEAD and keyed requests, and never a POST without a key', async () => {
    const clock = new VirtualClock();
    const { fetch, seen } = setup(
      (request) =>
        answerAfter(clock, 150, request, () => new Response(request.method === 'HEAD' ? null : 'ok')),
      {},
      clock,
    );
    const sent = async (init: RequestInit) => {
      const before = seen.length;
      const call = start(fetch(URL_A, init));
      await clock.advance(300);
      await call.done;
      expect(call.state.settled).toBe(true);
      return seen.slice(before);
    };
    expect(await sent({ method: 'HEAD' })).toHaveLength(2);
    expect(await sent({ method: 'POST', body: 'x' })).toHaveLength(1);
    expect(await sent({ method: 'PUT', body: 'x' })).toHaveLength(1);
    const keyed = await sent({ method: 'POST', body: 'x', headers: { 'idempotency-key': '"k1"' } });
    expect(keyed).toHaveLength(2);
    expect(keyed.map((s) => s.request.headers.get('idempotency-key'))).toEqual(['"k1"', '"k1"']);
    expect(keyed.map((s) => s.body)).toEqual(['x', 'x']);
    // A body that is a stream cannot be sent twice: never hedged.
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('s'));
        c.close();
      },
    });
    expect(
      await sent({
        method: 'POST',
        body: stream,
        headers: { 'idempotency-key': '"k2"' },
        duplex: 'half',
      } as RequestInit),
    ).toHaveLength(1);
  });

  it('hedges a keyed request whose key createFetch added, with the same key', async () => {
    const clock = new VirtualClock();
    const { fetch, seen } = setup(
      (request) => answerAfter(clock, 150, request, () => new Response('ok')),
      { idempotencyKeys: true },
      clock,
    );
    const call = start(fetch(URL_A, { method: 'POST', body: 'x' }));
    await clock.advance(300);
    await call.done;
    expect(seen).toHaveLength(2);
    const keys = seen.map((s) => s.request.headers.get('idempotency-key'));
    expect(keys[0]).not.toBeNull();
    expect(keys[1]).toBe(keys[0]);
  });

  it("does not let a hedge's in-progress 409 (the first attempt holds the key on the server) beat the first attempt", async () => {
    const clock = new VirtualClock();
    const inProgress = () =>
      new Response('busy', {
        status: 409,
        headers: { 'idempotency-in-progress': 'true', 'retry-after': '1' },
      });
    const { fetch, seen } = setup(
      (request, n) =>
        n === 1
          ? answerAfter(clock, 1_500, request, () => new Response('created', { status: 201 }))
          : Promise.resolve(inProgress()),
      { idempotencyKeys: true, deadlineMs: 2_000, maxAttempts: 1 },
      clock,
    );
    const call = start(fetch(URL_A, { method: 'POST', body: 'x' }));
    for (let t = 0; t < 20; t++) {
      await clock.advance(100);
      await settle();
    }
    await call.done;
    expect(call.state.error).toBeUndefined();
    expect(call.state.response?.status).toBe(201);
    expect(seen.length).toBeGreaterThanOrEqual(2);
  });

  it("returns a hedge's held in-progress 409 when the first attempt then fails and nothing else runs", async () => {
    const clock = new VirtualClock();
    const { fetch } = setup(
      (request, n) =>
        n === 1
          ? new Promise<Response>((_, reject) =>
              clock.setTimeout(() => reject(new TypeError('fetch failed')), 300),
            )
          : Promise.resolve(
              new Response('busy', {
                status: 409,
                headers: { 'idempotency-in-progress': 'true', 'retry-after': '10' },
              }),
            ),
      { idempotencyKeys: true, deadlineMs: 5_000, maxAttempts: 1 },
      clock,
    );
    const call = start(fetch(URL_A, { method: 'POST', body: 'x' }));
    for (let t = 0; t < 5 && !call.state.settled; t++) {
      await clock.advance(100);
      await settle();
    }
    expect(call.state.settled).toBe(true);
    expect(call.state.response?.status).toBe(409);
    expect(clock.now()).toBeLessThan(1_000);
  });

  it('discards the body of a response that lost the race', async () => {
    const clock = new VirtualClock();
    const loser = trackedResponse(503, 'busy');
    const { fetch, seen } = setup(
      (request, n) =>
        n === 1
          ? answerAfter(clock, 150, request, () => loser.response)
          : answerAfter(clock, 100, request, () => new Response('ok')),
      {
        maxAttempts: 1,
        // A 503 is not an answer to keep: the race goes on to the hedge.
        hedging: { delayMs: 100, hedgeOn: (o) => (o.ok ? (o.value as Response).status === 503 : true) },
      },
      clock,
    );
    const call = start(fetch(URL_A));
    await clock.advance(150);
    await settle();
    // The 503 came first and lost; the hedge is still running.
    expect(call.state.settled).toBe(false);
    await clock.advance(50);
    await call.done;
    expect(await call.state.response!.text()).toBe('ok');
    expect(seen).toHaveLength(2);
    await settle();
    expect(loser.state.cancelled || loser.state.finished).toBe(true);
  });

  it('discards a loser that answers in the same instant, and the deadline watches the winner’s body', async () => {
    const clock = new VirtualClock();
    // Both attempts answer from one timer callback: their answers race through the layers together.
    const waiting: Array<() => void> = [];
    const answers: Response[] = [];
    const { fetch, seen } = setup(
      (request, n) =>
        new Promise<Response>((resolve) => {
          waiting.push(() => {
            const response = stallingResponse(request.signal, `body${n}`);
            answers.push(response);
            resolve(response);
          });
          if (n === 2)
            clock.setTimeout(() => {
              for (const answer of waiting) answer();
            }, 100);
        }),
      { deadlineMs: 1_000, attemptTimeoutMs: 500 },
      clock,
    );
    const call = start(fetch(URL_A));
    await clock.advance(100); // the hedge starts
    await settle();
    await clock.advance(100); // both answer now
    await call.done;
    expect(seen).toHaveLength(2);
    const reader = call.state.response!.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(['body1', 'body2']).toContain(first);
    const winner = first === 'body1' ? 0 : 1;
    expect(answers[winner]).toBe(call.state.response);
    // The loser's body was cancelled, so its connection is let go.
    await settle();
    expect(answers[1 - winner]!.bodyUsed).toBe(true);
    // The winner's body is cut by the deadline.
    const cut = expect(reader.read()).rejects.toBeInstanceOf(DeadlineExceededError);
    await clock.advance(800);
    await cut;
  });

  it('withdraws hedges from the fetch’s retry budget and counts each call once', async () => {
    const clock = new VirtualClock();
    const budget = retryBudget({ ratio: 0, minRetriesPerSecond: 0.1, windowMs: 10_000, clock }); // 1 in the window
    const { fetch, seen } = setup(
      (request, n) =>
        n <= 2
          ? answerAfter(clock, 150, request, () => new Response('slow'))
          : answerAfter(clock, 150, request, () => new Response('busy', { status: 503 })),
      { budget },
      clock,
    );
    expect(fetch.hedging?.budget).toBe(budget);
    const denied: HedgeDeniedEvent[] = [];
    fetch.hedging?.onDenied((e) => denied.push(e));
    const giveUps: string[] = [];
    fetch.retry.onGiveUp(({ reason }) => giveUps.push(reason));
    // The first call's hedge spends the only token.
    const first = start(fetch(URL_A));
    await clock.advance(300);
    await first.done;
    expect(seen).toHaveLength(2);
    // The second call's hedge is denied, and so is its retry of the 503.
    const second = start(fetch(URL_A));
    await clock.advance(300);
    await second.done;
    expect(seen).toHaveLength(3);
    expect(second.state.response!.status).toBe(503);
    expect(denied.map((d) => d.reason)).toEqual(['budget']);
    expect(giveUps).toEqual(['budget']);
    // Pending requests are counted in batches of 16: force the count with 14 more calls.
    for (let i = 0; i < 14; i++) fetch(URL_A).catch(() => {});
    await settle();
    expect(budget.stats().requests).toBe(16);
  });

  it('takes a HedgingPolicy as it is, and refuses bad values naming them', () => {
    const clock = new VirtualClock();
    const policy = hedging({ clock, delayMs: 10 });
    expect(createFetch({ clock, hedging: policy }).hedging).toBe(policy);
    expect(createFetch({ clock, hedging: false }).hedging).toBeUndefined();
    expect(createFetch({ clock }).hedging).toBeUndefined();
    const refuse = (value: unknown, pattern: RegExp) => {
      const make = () => createFetch({ clock, hedging: value as never });
      expect(make).toThrow(InvalidOptionsError);
      expect(make).toThrow(pattern);
    };
    refuse(true, /hedging must be hedging options, a HedgingPolicy, or false, got true/);
    refuse({ maxHedgedAttempts: 0 }, /hedging\.maxHedgedAttempts must be .*got 0/);
    refuse({ delayMS: 5 }, /hedging\.delayMS/);
    refuse(hedging({ delayMs: 10 }), /hedging\.clock must be createFetch\(\)'s clock/);
  });
});
