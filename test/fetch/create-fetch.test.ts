import { getEventListeners } from 'node:events';
import { BulkheadRejectedError } from '@bulwark/bulkhead';
import { BrokenCircuitError, circuitBreakers, consecutive } from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { CallbackError, DeadlineExceededError, InvalidOptionsError, isBulwarkError } from '@bulwark/core';
import { withDeadline } from '@bulwark/deadline';
import { createFetch, FETCH_DEFAULTS, type ResilientFetch } from '@bulwark/fetch';
import { parseIdempotencyKeyHeader } from '@bulwark/idempotency';
import { constant, retryBudget } from '@bulwark/retry';
import { describe, expect, it, vi } from 'vitest';
import { fakeFetch, hang, type Script, settle, stallingResponse, trackedResponse } from './helpers.ts';

const URL_A = 'http://a.test/items';
const URL_B = 'http://b.test/items';

function setup(script: Script, options: Parameters<typeof createFetch>[0] = {}) {
  const clock = new VirtualClock();
  const fake = fakeFetch(script);
  const fetch = createFetch({ clock, fetch: fake.fetch, backoff: constant(100), ...options });
  return { clock, fetch, seen: fake.seen };
}

/** Starts a call and records how it settled, so a test can advance the clock meanwhile. */
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

describe('createFetch() on the happy path', () => {
  it('returns the response and sends the attempt number and the time left', async () => {
    const { fetch, seen } = setup(() => new Response('ok'));
    const response = await fetch(URL_A, { headers: { accept: 'text/plain' } });
    expect(await response.text()).toBe('ok');
    expect(seen).toHaveLength(1);
    const headers = seen[0]!.request.headers;
    expect(headers.get('accept')).toBe('text/plain');
    expect(headers.get('x-retry-attempt')).toBe('1');
    // The attempt timeout (10 s) is the tighter bound; the safety margin comes off it.
    expect(headers.get('x-request-timeout-ms')).toBe(
      String(FETCH_DEFAULTS.attemptTimeoutMs - FETCH_DEFAULTS.safetyMarginMs),
    );
  });

  it('is assignable to the global fetch type', () => {
    const { fetch } = setup(() => new Response('ok'));
    const asGlobal: typeof globalThis.fetch = fetch;
    expect(typeof asGlobal).toBe('function');
  });

  it('keeps a smaller x-request-timeout-ms the caller set, and sends the overall deadline when it is tighter', async () => {
    const { fetch, seen } = setup(() => new Response('ok'), { deadlineMs: 2_000, safetyMarginMs: 0 });
    await fetch(URL_A, { headers: { 'x-request-timeout-ms': '500' } });
    await fetch(URL_A);
    expect(seen[0]!.request.headers.get('x-request-timeout-ms')).toBe('500');
    expect(seen[1]!.request.headers.get('x-request-timeout-ms')).toBe('2000');
  });

  it('sends neither header when both are turned off, and no deadline header without a deadline', async () => {
    const off = setup(() => new Response('ok'), { deadlineHeader: false, attemptHeader: false });
    await off.fetch(URL_A);
    expect(off.seen[0]!.request.headers.has('x-retry-attempt')).toBe(false);
    expect(off.seen[0]!.request.headers.has('x-request-timeout-ms')).toBe(false);
    const unbounded = setup(() => new Response('ok'), {
      deadlineMs: Number.POSITIVE_INFINITY,
      attemptTimeoutMs: Number.POSITIVE_INFINITY,
    });
    await unbounded.fetch(URL_A);
    expect(unbounded.seen[0]!.request.headers.has('x-request-timeout-ms')).toBe(false);
    expect(unbounded.seen[0]!.request.headers.get('x-retry-attempt')).toBe('1');
  });

  it('takes method, headers and body from a Request, and lets init override them', async () => {
    const { fetch, seen } = setup(() => new Response('ok'));
    await fetch(new Request(URL_A, { method: 'PUT', body: 'one', headers: { 'x-a': '1' } }));
    await fetch(new Request(URL_A, { method: 'PUT', body: 'one', headers: { 'x-a': '1' } }), {
      method: 'DELETE',
      headers: { 'x-b': '2' },
    });
    expect(seen[0]!.request.method).toBe('PUT');
    expect(seen[0]!.body).toBe('one');
    expect(seen[0]!.request.headers.get('x-a')).toBe('1');
    expect(seen[1]!.request.method).toBe('DELETE');
    expect(seen[1]!.request.headers.get('x-a')).toBeNull();
    expect(seen[1]!.request.headers.get('x-b')).toBe('2');
  });

  it('accepts URL objects and header arrays', async () => {
    const { fetch, seen } = setup(() => new Response('ok'));
    await fetch(new URL(URL_A), { headers: [['x-list', 'yes']] });
    expect(seen[0]!.request.url).toBe(URL_A);
    expect(seen[0]!.request.headers.get('x-list')).toBe('yes');
  });

  it('hands non-HTTP URLs to the underlying fetch untouched', async () => {
    const { fetch, seen } = setup(() => new Response('data'));
    await fetch('data:text/plain,hi');
    expect(seen[0]!.request.headers.has('x-retry-attempt')).toBe(false);
  });
});

describe('createFetch() retries', () => {
  for (const status of [408, 429, 502, 503, 504]) {
    it(`retries a ${status} response and returns the next one`, async () => {
      const { clock, fetch, seen } = setup(
        (_, n) => new Response(n === 1 ? 'busy' : 'ok', { status: n === 1 ? status : 200 }),
      );
      const call = start(fetch(URL_A));
      await clock.advance(100);
      await call.done;
      expect(call.state.response!.status).toBe(200);
      expect(seen.map((s) => s.request.headers.get('x-retry-attempt'))).toEqual(['1', '2']);
    });
  }

  for (const status of [400, 404, 500, 501]) {
    it(`returns a ${status} response without retrying it`, async () => {
      const { fetch, seen } = setup(() => new Response('no', { status }));
      const response = await fetch(URL_A);
      expect(response.status).toBe(status);
      expect(await response.text()).toBe('no');
      expect(seen).toHaveLength(1);
    });
  }

  it('cancels the body of a retried response that has no length, and drains a short one', async () => {
    const streamed = trackedResponse(503, 'x'.repeat(10));
    const sized = trackedResponse(503, 'y'.repeat(10), { 'content-length': '10' });
    const { clock, fetch } = setup((_, n) =>
      n === 1 ? streamed.response : n === 2 ? sized.response : new Response('ok'),
    );
    const call = start(fetch(URL_A));
    await clock.advance(100);
    await clock.advance(100);
    await call.done;
    expect(call.state.response!.status).toBe(200);
    expect(streamed.state).toEqual({ cancelled: true, finished: false });
    expect(sized.state).toEqual({ cancelled: false, finished: true });
  });

  it('returns the last response, body intact, when the attempts run out', async () => {
    const last = trackedResponse(503, 'still busy');
    const { clock, fetch, seen } = setup((_, n) =>
      n < 3 ? new Response('busy', { status: 503 }) : last.response,
    );
    const call = start(fetch(URL_A));
    await clock.advance(100);
    await clock.advance(100);
    await call.done;
    expect(seen).toHaveLength(3);
    expect(call.state.response!.status).toBe(503);
    expect(await call.state.response!.text()).toBe('still busy');
    expect(last.state.cancelled).toBe(false);
  });

  it('retries a network error and rethrows the last one when the attempts run out', async () => {
    const failure = () =>
      new TypeError('fetch failed', { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) });
    const { clock, fetch, seen } = setup(() => {
      throw failure();
    });
    const call = start(fetch(URL_A));
    await clock.advance(100);
    await clock.advance(100);
    await call.done;
    expect(seen).toHaveLength(3);
    expect(call.state.error).toBeInstanceOf(TypeError);
    expect((call.state.error as TypeError).message).toBe('fetch failed');
  });

  it('does not retry a programming error', async () => {
    const { fetch, seen } = setup(() => {
      throw new TypeError('Invalid header value');
    });
    await expect(fetch(URL_A)).rejects.toThrow('Invalid header value');
    expect(seen).toHaveLength(1);
  });

  it('waits as long as a delta-seconds Retry-After asks', async () => {
    const { clock, fetch, seen } = setup((_, n) =>
      n === 1 ? new Response('', { status: 429, headers: { 'retry-after': '2' } }) : new Response('ok'),
    );
    const call = start(fetch(URL_A));
    await clock.advance(1_999);
    expect(seen).toHaveLength(1);
    await clock.advance(1);
    await call.done;
    expect(seen).toHaveLength(2);
    expect(call.state.response!.status).toBe(200);
  });

  it('turns an HTTP-date Retry-After into a wait with one wall-clock reading', async () => {
    const now = Date.parse('Sat, 05 Dec 2026 17:00:00 GMT');
    let readings = 0;
    const wallClock = () => {
      readings++;
      return now;
    };
    const { clock, fetch, seen } = setup(
      (_, n) =>
        n === 1
          ? new Response('', { status: 503, headers: { 'retry-after': 'Sat, 05 Dec 2026 17:00:03 GMT' } })
          : new Response('ok'),
      { wallClock },
    );
    const call = start(fetch(URL_A));
    await clock.advance(2_999);
    expect(seen).toHaveLength(1);
    await clock.advance(1);
    await call.done;
    expect(call.state.response!.status).toBe(200);
    expect(readings).toBe(1);
  });

  it('retries at once when the HTTP-date has passed', async () => {
    const { clock, fetch, seen } = setup(
      (_, n) =>
        n === 1
          ? new Response('', { status: 503, headers: { 'retry-after': 'Sat, 05 Dec 2026 16:00:00 GMT' } })
          : new Response('ok'),
      { wallClock: () => Date.parse('Sat, 05 Dec 2026 17:00:00 GMT') },
    );
    const call = start(fetch(URL_A));
    await clock.advance(0);
    await call.done;
    expect(seen).toHaveLength(2);
  });

  it('returns the response when Retry-After asks for longer than maxRetryAfterMs or than the deadline allows', async () => {
    const tooLong = setup(() => new Response('later', { status: 503, headers: { 'retry-after': '60' } }));
    expect((await tooLong.fetch(URL_A)).status).toBe(503);
    expect(tooLong.seen).toHaveLength(1);
    const pastDeadline = setup(
      () => new Response('later', { status: 503, headers: { 'retry-after': '5' } }),
      {
        deadlineMs: 3_000,
      },
    );
    const response = await pastDeadline.fetch(URL_A);
    expect(response.status).toBe(503);
    expect(await response.text()).toBe('later');
    expect(pastDeadline.seen).toHaveLength(1);
  });

  it('stops retrying when the budget is spent', async () => {
    const budget = retryBudget({ ratio: 0, minRetriesPerSecond: 0.1, windowMs: 10_000 }); // one retry per window
    const { clock, fetch, seen } = setup(() => new Response('', { status: 503 }), {
      budget,
      breakers: false,
    });
    const first = start(fetch(URL_A));
    await clock.advance(100);
    await clock.advance(100);
    await first.done;
    expect(seen).toHaveLength(2); // one retry, then the budget said no
    expect(first.state.response!.status).toBe(503);
    expect(budget.available()).toBe(0);
  });

  it('does not retry when maxAttempts is 1', async () => {
    const { fetch, seen } = setup(() => new Response('', { status: 503 }), { maxAttempts: 1 });
    expect((await fetch(URL_A)).status).toBe(503);
    expect(seen).toHaveLength(1);
  });
});

describe('createFetch() and non-idempotent methods', () => {
  const flaky: Script = (_, n) => new Response(n === 1 ? 'busy' : 'done', { status: n === 1 ? 503 : 201 });

  it('does not retry a POST without an Idempotency-Key', async () => {
    const { fetch, seen } = setup(flaky);
    const response = await fetch(URL_A, { method: 'POST', body: 'order' });
    expect(response.status).toBe(503);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.request.headers.has('idempotency-key')).toBe(false);
  });

  it('does not retry a PATCH that failed on the network without a key', async () => {
    const { fetch, seen } = setup(() => {
      throw new TypeError('fetch failed');
    });
    await expect(fetch(URL_A, { method: 'PATCH', body: '{}' })).rejects.toThrow('fetch failed');
    expect(seen).toHaveLength(1);
  });

  it('retries a POST that carries an Idempotency-Key, resending the body and the key', async () => {
    const { clock, fetch, seen } = setup(flaky);
    const call = start(
      fetch(URL_A, { method: 'POST', body: 'order', headers: { 'Idempotency-Key': '"k-1"' } }),
    );
    await clock.advance(100);
    await call.done;
    expect(call.state.response!.status).toBe(201);
    expect(seen.map((s) => [s.body, s.request.headers.get('idempotency-key')])).toEqual([
      ['order', '"k-1"'],
      ['order', '"k-1"'],
    ]);
  });

  it('with idempotencyKeys adds one key and keeps it on every attempt', async () => {
    const { clock, fetch, seen } = setup(flaky, { idempotencyKeys: true });
    const call = start(fetch(URL_A, { method: 'POST', body: 'order' }));
    await clock.advance(100);
    await call.done;
    const keys = seen.map((s) => s.request.headers.get('idempotency-key'));
    expect(keys).toHaveLength(2);
    expect(keys[0]).toBe(keys[1]);
    expect(parseIdempotencyKeyHeader(keys[0]!)).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    await fetch(URL_A, { method: 'POST', body: 'another' });
    expect(seen[2]!.request.headers.get('idempotency-key')).not.toBe(keys[0]);
  });

  it('with idempotencyKeys keeps a key the caller set and adds none to a GET', async () => {
    const { fetch, seen } = setup(() => new Response('ok'), {
      idempotencyKeys: true,
      generateIdempotencyKey: () => 'generated',
    });
    await fetch(URL_A, { method: 'POST', headers: { 'idempotency-key': '"mine"' } });
    await fetch(URL_A, { method: 'POST' });
    await fetch(URL_A);
    expect(seen.map((s) => s.request.headers.get('idempotency-key'))).toEqual([
      '"mine"',
      '"generated"',
      null,
    ]);
  });

  it('resends the body of a Request input on every attempt', async () => {
    const { clock, fetch, seen } = setup(flaky);
    const call = start(fetch(new Request(URL_A, { method: 'PUT', body: 'payload' })));
    await clock.advance(100);
    await call.done;
    expect(seen.map((s) => s.body)).toEqual(['payload', 'payload']);
  });

  it('never retries a request whose body is a stream', async () => {
    const { fetch, seen } = setup(flaky);
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('streamed'));
        controller.close();
      },
    });
    const response = await fetch(URL_A, { method: 'PUT', body, duplex: 'half' } as RequestInit);
    expect(response.status).toBe(503);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.body).toBe('streamed');
  });
});

describe('createFetch() and an in-progress 409 from a bulwark server', () => {
  const inProgress = (retryAfter: string | undefined = '1') =>
    new Response('{"type":"urn:bulwark:idempotency:in-progress"}', {
      status: 409,
      headers: {
        'content-type': 'application/problem+json',
        'idempotency-in-progress': 'true',
        ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }),
      },
    });
  const replay = () =>
    new Response('{"charge":1}', { status: 201, headers: { 'idempotent-replayed': 'true' } });
  const post = { method: 'POST', body: '{"amount":5}' };

  it('polls after each Retry-After until the stored response comes, spending neither attempts nor budget', async () => {
    const budget = retryBudget({ ratio: 0, minRetriesPerSecond: 0 }); // no retry at all
    const { clock, fetch, seen } = setup((_, n) => (n <= 3 ? inProgress() : replay()), {
      idempotencyKeys: true,
      maxAttempts: 1,
      budget,
    });
    const call = start(fetch(URL_A, post));
    await clock.advance(999);
    expect(seen).toHaveLength(1);
    await clock.advance(1);
    expect(seen).toHaveLength(2);
    await clock.advance(2_000);
    await call.done;
    expect(call.state.response!.status).toBe(201);
    expect(await call.state.response!.text()).toBe('{"charge":1}');
    expect(seen).toHaveLength(4);
    const keys = new Set(seen.map((s) => s.request.headers.get('idempotency-key')));
    expect(keys.size).toBe(1);
    expect(seen.every((s) => s.body === '{"amount":5}')).toBe(true);
    // A poll carries the number of the attempt it belongs to.
    expect(seen.map((s) => s.request.headers.get('x-retry-attempt'))).toEqual(['1', '1', '1', '1']);
  });

  it('polls after a retry whose earlier attempt timed out, and that retry is the only one spent', async () => {
    const { clock, fetch, seen } = setup(
      (request, n) => (n === 1 ? hang(request) : n === 2 ? inProgress() : replay()),
      {
        idempotencyKeys: true,
        attemptTimeoutMs: 500,
        maxAttempts: 2,
      },
    );
    const retried: number[] = [];
    fetch.retry.onRetry(({ attempt }) => retried.push(attempt));
    const call = start(fetch(URL_A, post));
    await clock.advance(600); // timeout at 500, backoff 100, then the 409
    expect(seen).toHaveLength(2);
    await clock.advance(1_000);
    await call.done;
    expect(call.state.response!.status).toBe(201);
    expect(seen).toHaveLength(3);
    expect(retried).toEqual([1]);
  });

  it('returns any other 409 at once', async () => {
    const { fetch, seen } = setup(
      () => new Response('conflict', { status: 409, headers: { 'retry-after': '1' } }),
      { idempotencyKeys: true },
    );
    const response = await fetch(URL_A, post);
    expect(response.status).toBe(409);
    expect(await response.text()).toBe('conflict');
    expect(seen).toHaveLength(1);
  });

  it('returns the 409 when the next poll would reach the deadline', async () => {
    const { clock, fetch, seen } = setup(() => inProgress(), { idempotencyKeys: true, deadlineMs: 2_500 });
    const call = start(fetch(URL_A, post));
    await clock.advance(2_000);
    await call.done;
    expect(seen).toHaveLength(3); // at 0, 1,000 and 2,000 ms; a poll at 3,000 ms is past the deadline
    expect(call.state.response!.status).toBe(409);
    expect(call.state.response!.headers.get('idempotency-in-progress')).toBe('true');
  });

  it('returns the 409 when Retry-After asks for more than maxRetryAfterMs', async () => {
    const { fetch, seen } = setup(() => inProgress('60'), { idempotencyKeys: true });
    expect((await fetch(URL_A, post)).status).toBe(409);
    expect(seen).toHaveLength(1);
  });

  it('waits 1 s without Retry-After and at least 100 ms whatever it says', async () => {
    const none = setup((_, n) => (n === 1 ? inProgress(undefined) : replay()), { idempotencyKeys: true });
    const first = start(none.fetch(URL_A, post));
    await none.clock.advance(999);
    expect(none.seen).toHaveLength(1);
    await none.clock.advance(1);
    await first.done;
    expect(first.state.response!.status).toBe(201);
    const zero = setup((_, n) => (n === 1 ? inProgress('0') : replay()), { idempotencyKeys: true });
    const second = start(zero.fetch(URL_A, post));
    await zero.clock.advance(99);
    expect(zero.seen).toHaveLength(1);
    await zero.clock.advance(1);
    await second.done;
    expect(second.state.response!.status).toBe(201);
  });

  it('does not poll with pollInProgress: false, nor a request without a key or with a stream body', async () => {
    const off = setup(() => inProgress(), { idempotencyKeys: true, pollInProgress: false });
    expect((await off.fetch(URL_A, post)).status).toBe(409);
    expect(off.seen).toHaveLength(1);
    const keyless = setup(() => inProgress());
    expect((await keyless.fetch(URL_A, post)).status).toBe(409);
    expect(keyless.seen).toHaveLength(1);
    const streamed = setup(() => inProgress(), { idempotencyKeys: true });
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('x'));
        controller.close();
      },
    });
    expect(
      (await streamed.fetch(URL_A, { method: 'POST', body, duplex: 'half' } as RequestInit)).status,
    ).toBe(409);
    expect(streamed.seen).toHaveLength(1);
  });

  it('ends the wait between polls with the caller reason when the caller aborts', async () => {
    const { clock, fetch, seen } = setup(() => inProgress(), { idempotencyKeys: true });
    const controller = new AbortController();
    const call = start(fetch(URL_A, { ...post, signal: controller.signal }));
    await clock.advance(500);
    controller.abort('enough');
    await call.done;
    expect(call.state.error).toBe('enough');
    expect(seen).toHaveLength(1);
  });
});

describe('createFetch() deadlines and timeouts', () => {
  it('times out a hanging attempt, retries it, and returns the next answer', async () => {
    const { clock, fetch, seen } = setup((request, n) => (n === 1 ? hang(request) : new Response('ok')), {
      attemptTimeoutMs: 1_000,
    });
    const call = start(fetch(URL_A));
    await clock.advance(1_000);
    expect(isBulwarkError(seen[0]!.request.signal.reason, 'ERR_DEADLINE_EXCEEDED')).toBe(true);
    await clock.advance(100);
    await call.done;
    expect(call.state.response!.status).toBe(200);
    expect(seen[1]!.request.headers.get('x-retry-attempt')).toBe('2');
  });

  it('rejects with DeadlineExceededError from the overall deadline and sends no attempt after it', async () => {
    const { clock, fetch, seen } = setup((request) => hang(request), {
      deadlineMs: 2_500,
      attemptTimeoutMs: 1_000,
    });
    const call = start(fetch(URL_A));
    await clock.advance(2_500);
    await call.done;
    expect(call.state.error).toBeInstanceOf(DeadlineExceededError);
    expect((call.state.error as DeadlineExceededError).source).toBe('deadline');
    expect(seen).toHaveLength(3);
    expect(seen[2]!.request.headers.get('x-request-timeout-ms')).toBe('290'); // attempts start at 0, 1,100 and 2,200 ms: 300 ms left, less the 10 ms margin
  });

  it('uses a tighter deadline in scope', async () => {
    const clock = new VirtualClock();
    const fake = fakeFetch(() => new Response('ok'));
    const fetch = createFetch({ clock, fetch: fake.fetch, safetyMarginMs: 0 });
    await withDeadline(250, () => fetch(URL_A), { clock });
    expect(fake.seen[0]!.request.headers.get('x-request-timeout-ms')).toBe('250');
  });

  it('errors the body with DeadlineExceededError when the deadline passes mid-read', async () => {
    const { clock, fetch } = setup((request) => stallingResponse(request.signal, 'first '), {
      deadlineMs: 1_000,
    });
    const response = await fetch(URL_A);
    const reader = response.body!.getReader();
    const chunk = await reader.read();
    expect(new TextDecoder().decode(chunk.value)).toBe('first ');
    const next = reader.read();
    const outcome = next.then(
      () => 'read',
      (error: unknown) => error,
    );
    await clock.advance(999);
    await settle();
    await clock.advance(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect((error as DeadlineExceededError).source).toBe('deadline');
  });

  it('does not abort a body after the attempt timeout: only the overall deadline bounds it', async () => {
    const { clock, fetch, seen } = setup((request) => stallingResponse(request.signal, 'x'), {
      attemptTimeoutMs: 100,
      deadlineMs: 5_000,
    });
    await fetch(URL_A);
    await clock.advance(1_000);
    expect(seen[0]!.request.signal.aborted).toBe(false);
    await clock.advance(4_000);
    expect(seen[0]!.request.signal.aborted).toBe(true);
  });
});

describe('createFetch() and the caller signal', () => {
  it('rejects with the caller reason, unchanged, and aborts the attempt', async () => {
    const { fetch, seen } = setup((request) => hang(request));
    const controller = new AbortController();
    const call = start(fetch(URL_A, { signal: controller.signal }));
    await settle();
    const reason = new Error('user left');
    controller.abort(reason);
    await call.done;
    expect(call.state.error).toBe(reason);
    expect(seen[0]!.request.signal.reason).toBe(reason);
  });

  it('follows the signal of a Request input, and rejects at once when it has aborted', async () => {
    const { fetch, seen } = setup((request) => hang(request));
    const controller = new AbortController();
    const call = start(fetch(new Request(URL_A, { signal: controller.signal })));
    await settle();
    controller.abort('stop');
    await call.done;
    expect(call.state.error).toBe('stop');
    await expect(fetch(URL_A, { signal: AbortSignal.abort('already') })).rejects.toBe('already');
    expect(seen).toHaveLength(1);
  });

  it('ends the wait between attempts when the caller aborts', async () => {
    const { clock, fetch, seen } = setup(() => new Response('', { status: 503 }), {
      backoff: constant(5_000),
    });
    const controller = new AbortController();
    const call = start(fetch(URL_A, { signal: controller.signal }));
    await clock.advance(1_000);
    controller.abort('enough');
    await call.done;
    expect(call.state.error).toBe('enough');
    expect(seen).toHaveLength(1);
  });
});

describe('createFetch() and a long-lived caller signal', () => {
  it('leaves no listener on the caller signal after 500 calls', async () => {
    const { fetch } = setup((request) => stallingResponse(request.signal, 'x'));
    const controller = new AbortController();
    const responses: Response[] = [];
    for (let i = 0; i < 500; i++) responses.push(await fetch(URL_A, { signal: controller.signal }));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(responses).toHaveLength(500);
  });

  it('still aborts a body being read when the caller aborts, with no deadline at all', async () => {
    const { fetch } = setup((request) => stallingResponse(request.signal, 'x'), {
      deadlineMs: Number.POSITIVE_INFINITY,
      attemptTimeoutMs: Number.POSITIVE_INFINITY,
    });
    const controller = new AbortController();
    const response = await fetch(URL_A, { signal: controller.signal });
    const reading = response.text().catch((error: unknown) => error);
    await settle();
    controller.abort('stop reading');
    expect(await reading).toBe('stop reading');
  });
});

describe('createFetch() per-origin breakers and bulkheads', () => {
  it('opens the breaker of a failing origin only', async () => {
    const { fetch, seen } = setup(
      (request) => new Response('', { status: request.url.startsWith(URL_A) ? 500 : 200 }),
      {
        breakers: { trip: consecutive(2) },
      },
    );
    await fetch(URL_A);
    await fetch(URL_A);
    const refused = await fetch(URL_A).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(BrokenCircuitError);
    expect(seen).toHaveLength(2);
    expect((await fetch(URL_B)).status).toBe(200);
    expect(fetch.breakers!.peek('http://a.test')!.state).toBe('open');
    expect(fetch.breakers!.peek('http://b.test')!.state).toBe('closed');
  });

  it('counts 500, 502, 503 and 504 against the origin, but not 429 or 404', async () => {
    const statuses = [429, 404, 429, 404, 500, 502, 503, 504];
    const { fetch } = setup((_, n) => new Response('', { status: statuses[n - 1] }), {
      maxAttempts: 1,
      breakers: { trip: consecutive(4) },
    });
    for (let i = 0; i < 4; i++) await fetch(URL_A);
    expect(fetch.breakers!.peek('http://a.test')!.stats().failures).toBe(0);
    for (let i = 0; i < 4; i++) await fetch(URL_A);
    expect(fetch.breakers!.peek('http://a.test')!.state).toBe('open');
  });

  it('counts network errors against the origin and accepts a shared registry', async () => {
    const clock = new VirtualClock();
    const shared = circuitBreakers({ clock, trip: consecutive(1) });
    const fake = fakeFetch(() => {
      throw new TypeError('fetch failed');
    });
    const fetch = createFetch({ clock, fetch: fake.fetch, breakers: shared, maxAttempts: 1 });
    await expect(fetch(URL_A)).rejects.toThrow('fetch failed');
    expect(fetch.breakers).toBe(shared);
    expect(shared.peek('http://a.test')!.state).toBe('open');
  });

  it('sheds a call past the per-origin limit without counting it against the origin', async () => {
    const { fetch } = setup((request) => hang(request), {
      bulkheads: { maxConcurrent: 1, maxQueue: 0 },
      breakers: { trip: consecutive(1) },
    });
    const controller = new AbortController();
    const first = start(fetch(URL_A, { signal: controller.signal }));
    await settle();
    const second = await fetch(URL_A).catch((error: unknown) => error);
    expect(second).toBeInstanceOf(BulkheadRejectedError);
    expect(fetch.breakers!.peek('http://a.test')!.state).toBe('closed');
    expect(fetch.bulkheads!.peek('http://a.test')!.active).toBe(1);
    controller.abort('done');
    await first.done;
    expect(fetch.bulkheads!.peek('http://a.test')!.active).toBe(0);
  });

  it('works with breakers and bulkheads turned off', async () => {
    const { fetch } = setup(() => new Response('ok'), { breakers: false, bulkheads: false, budget: false });
    expect((await fetch(URL_A)).status).toBe(200);
    expect(fetch.breakers).toBeUndefined();
    expect(fetch.bulkheads).toBeUndefined();
    expect(fetch.budget).toBeUndefined();
  });
});

describe('createFetch() events', () => {
  it('reports retries through the retry policy', async () => {
    const { clock, fetch } = setup((_, n) => new Response('', { status: n === 1 ? 502 : 200 }));
    const attempts: number[] = [];
    (fetch as ResilientFetch).retry.onRetry(({ attempt }) => attempts.push(attempt));
    const call = start(fetch(URL_A));
    await clock.advance(100);
    await call.done;
    expect(attempts).toEqual([1]);
  });
});

describe('createFetch() options', () => {
  it('lists every invalid option in one RangeError, nested ones included', () => {
    let error: unknown;
    try {
      createFetch({
        deadlineMs: -1,
        attemptTimeoutMs: 0,
        maxAttempts: 1.5,
        backoff: { delayMs: 5 } as never,
        retryStatuses: [503, 42],
        idempotencyKeys: 'yes' as never,
        safetyMarginMs: Number.NaN,
        breakers: { maxKeys: 0 },
        bulkheads: { maxConcurrent: 0 },
        budget: { ratio: -1 },
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RangeError);
    expect(error).toBeInstanceOf(InvalidOptionsError);
    const options = (error as InvalidOptionsError).violations.map((v) => v.option);
    expect(options).toEqual(
      expect.arrayContaining([
        'deadlineMs',
        'attemptTimeoutMs',
        'maxAttempts',
        'retryStatuses',
        'idempotencyKeys',
        'safetyMarginMs',
        'breakers.maxKeys',
        'bulkheads.maxConcurrent',
        'budget.ratio',
      ]),
    );
    expect(options).toContain('backoff');
    expect(options.filter((o) => o.endsWith('maxAttempts'))).toEqual(['maxAttempts']);
    expect((error as Error).message).toContain('deadlineMs must be a number > 0, got -1');
  });

  it('reports a key generator that throws as a CallbackError, without sending anything', async () => {
    const { fetch, seen } = setup(() => new Response('ok'), {
      idempotencyKeys: true,
      generateIdempotencyKey: () => {
        throw new Error('no entropy');
      },
    });
    const error = await fetch(URL_A, { method: 'POST' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CallbackError);
    expect((error as CallbackError).callback).toBe('generateIdempotencyKey');
    expect(seen).toHaveLength(0);
  });

  it('reads the wall clock from @bulwark/clock by default to turn an HTTP-date Retry-After into a wait', async () => {
    // wallClockNow() reads Date.now(); pin it so the wait is exactly the date minus "now".
    const now = Date.parse('Sat, 05 Dec 2026 17:00:00 GMT');
    const retryAt = 'Sat, 05 Dec 2026 17:00:04 GMT';
    const dateNow = vi.spyOn(Date, 'now').mockReturnValue(now);
    try {
      const { clock, fetch, seen } = setup((_, n) =>
        n === 1 ? new Response('', { status: 503, headers: { 'retry-after': retryAt } }) : new Response('ok'),
      );
      const call = start(fetch(URL_A));
      await clock.advance(Date.parse(retryAt) - now - 1);
      expect(seen).toHaveLength(1);
      await clock.advance(1);
      await call.done;
      expect(seen).toHaveLength(2);
      expect(call.state.response!.status).toBe(200);
      expect(dateNow).toHaveBeenCalled();
    } finally {
      dateNow.mockRestore();
    }
  });

  it('accepts no options at all', () => {
    const fetch = createFetch();
    expect(fetch.retry.maxAttempts).toBe(FETCH_DEFAULTS.maxAttempts);
    expect(fetch.budget).toBeDefined();
  });
});
