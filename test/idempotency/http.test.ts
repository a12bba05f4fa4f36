import { VirtualClock } from '@bulwark/clock';
import {
  defaultStoreStatus,
  type HttpDecision,
  type HttpResponse,
  httpIdempotency,
  type IdempotencyStore,
  memoryStore,
} from '@bulwark/idempotency';
import { describe, expect, it } from 'vitest';

const created: HttpResponse = {
  status: 201,
  headers: { 'Content-Type': 'application/json', Location: '/orders/1' },
  body: '{"id":1}',
};

function problemOf(decision: HttpDecision): { status: number; headers: Record<string, string>; body: any } {
  if (decision.action !== 'respond') throw new Error(`expected a response, got ${decision.action}`);
  return { ...decision.response, body: JSON.parse(decision.response.body) };
}

describe('httpIdempotency()', () => {
  const setup = (options: { required?: boolean } = {}) => {
    const clock = new VirtualClock();
    return {
      clock,
      http: httpIdempotency({ store: memoryStore({ clock }), leaseMs: 10_000, clock, ...options }),
    };
  };

  it('answers 400 problem+json when a required key is missing', async () => {
    const { http } = setup();
    const p = problemOf(await http.begin({ key: undefined, fingerprint: 'POST /orders {}' }));
    expect(p.status).toBe(400);
    expect(p.headers['content-type']).toBe('application/problem+json');
    expect(p.body).toMatchObject({ status: 400, type: 'urn:bulwark:idempotency:missing-key' });
    expect(p.body.title).toMatch(/Idempotency-Key/);
  });

  it('runs the handler unguarded when the key is optional and absent', async () => {
    const { http } = setup({ required: false });
    const d = await http.begin({ key: undefined, fingerprint: 'x' });
    expect(d).toMatchObject({ action: 'proceed', key: undefined });
    if (d.action === 'proceed') expect(await d.commit(created)).toBe('unguarded');
  });

  it('answers 400 for an empty, overlong or unquoted key', async () => {
    const { http } = setup();
    for (const key of ['""', `"${'a'.repeat(256)}"`, '"abc', '"a\u0001"', 'a\u0001']) {
      const p = problemOf(await http.begin({ key, fingerprint: 'x' }));
      expect(p.status).toBe(400);
      expect(p.body.type).toBe('urn:bulwark:idempotency:invalid-key');
    }
  });

  it('stores a 2xx response and replays it with Idempotent-Replayed: true', async () => {
    const { http } = setup();
    const first = await http.begin({ key: '"k1"', fingerprint: 'body' });
    if (first.action !== 'proceed') throw new Error('expected proceed');
    expect(first.key).toBe('k1');
    expect(await first.commit(created)).toBe('stored');
    const replay = await http.begin({ key: '"k1"', fingerprint: 'body' });
    expect(replay).toEqual({
      action: 'respond',
      reason: 'replayed',
      response: {
        status: 201,
        headers: { 'content-type': 'application/json', location: '/orders/1', 'idempotent-replayed': 'true' },
        body: '{"id":1}',
      },
    });
  });

  it('answers 422 when the key is reused for a different request', async () => {
    const { http } = setup();
    const first = await http.begin({ key: '"k"', fingerprint: { amount: 1 } });
    if (first.action === 'proceed') await first.commit(created);
    const p = problemOf(await http.begin({ key: '"k"', fingerprint: { amount: 2 } }));
    expect(p.status).toBe(422);
    expect(p.body.type).toBe('urn:bulwark:idempotency:key-reused');
  });

  it('answers 409 marked in progress with a poll interval of 1 s as Retry-After, not the lease left', async () => {
    const { http, clock } = setup();
    const first = await http.begin({ key: '"k"', fingerprint: 'b' });
    expect(first.action).toBe('proceed');
    await clock.advance(2_500);
    const p = problemOf(await http.begin({ key: '"k"', fingerprint: 'b' }));
    expect(p.status).toBe(409);
    expect(p.body.type).toBe('urn:bulwark:idempotency:in-progress');
    expect(p.headers['idempotency-in-progress']).toBe('true');
    expect(p.headers['retry-after']).toBe('1');
  });

  it('takes the in-progress poll interval from inProgressRetryAfterSeconds, never past the time until a takeover', async () => {
    const clock = new VirtualClock();
    const store = memoryStore({ clock });
    const options = { store, leaseMs: 10_000, inProgressRetryAfterSeconds: 5 };
    const http = httpIdempotency({ ...options, clock });
    // The first request's process stalls (its clock never moves: it never renews).
    const stalled = httpIdempotency({ ...options, clock: new VirtualClock() });
    expect((await stalled.begin({ key: '"k"', fingerprint: 'b' })).action).toBe('proceed');
    await clock.advance(1_000);
    // First sighting: a takeover is possible 10 s later.
    expect(problemOf(await http.begin({ key: '"k"', fingerprint: 'b' })).headers['retry-after']).toBe('5');
    await clock.advance(7_500); // 2.5 s until a takeover is possible
    expect(problemOf(await http.begin({ key: '"k"', fingerprint: 'b' })).headers['retry-after']).toBe('3');
    await clock.advance(2_300); // 0.2 s left: still at least 1 s
    expect(problemOf(await http.begin({ key: '"k"', fingerprint: 'b' })).headers['retry-after']).toBe('1');
  });

  it('refuses an inProgressRetryAfterSeconds that is not a whole number of seconds >= 1, naming it', () => {
    for (const bad of [0, 1.5, -1, Number.NaN, '2']) {
      expect(() =>
        httpIdempotency({ store: memoryStore(), inProgressRetryAfterSeconds: bad as number }),
      ).toThrow(/inProgressRetryAfterSeconds/);
    }
  });

  it('does not mark any other refusal as in progress', async () => {
    const { http } = setup();
    await http.begin({ key: '"m"', fingerprint: 'b' });
    for (const request of [
      { key: undefined, fingerprint: 'b' },
      { key: '"m"', fingerprint: 'other' },
    ]) {
      const p = problemOf(await http.begin(request));
      expect(p.headers['idempotency-in-progress']).toBeUndefined();
    }
  });

  it('releases the key after 5xx, 408 and 429 so the retry runs, and keeps 4xx', async () => {
    const { http } = setup();
    for (const [i, status] of [500, 503, 408, 429].entries()) {
      const d = await http.begin({ key: `"r${i}"`, fingerprint: 'b' });
      if (d.action !== 'proceed') throw new Error('expected proceed');
      expect(await d.commit({ status, headers: {}, body: '' })).toBe('released');
      expect((await http.begin({ key: `"r${i}"`, fingerprint: 'b' })).action).toBe('proceed');
    }
    const d = await http.begin({ key: '"bad"', fingerprint: 'b' });
    if (d.action === 'proceed')
      expect(await d.commit({ status: 404, headers: {}, body: '"no"' })).toBe('stored');
    expect(problemOf(await http.begin({ key: '"bad"', fingerprint: 'b' })).status).toBe(404);
    expect([200, 201, 299, 400, 404, 422].every(defaultStoreStatus)).toBe(true);
    expect([100, 302, 408, 429, 500, 504].some(defaultStoreStatus)).toBe(false);
  });

  it('releases the key when the handler throws', async () => {
    const { http } = setup();
    const d = await http.begin({ key: '"k"', fingerprint: 'b' });
    if (d.action !== 'proceed') throw new Error('expected proceed');
    await d.release();
    expect((await http.begin({ key: '"k"', fingerprint: 'b' })).action).toBe('proceed');
  });

  it('namespaces keys by scope, so one client never sees another client`s response', async () => {
    const { http } = setup();
    const alice = await http.begin({ key: '"same"', fingerprint: 'b', scope: 'alice' });
    if (alice.action === 'proceed') await alice.commit(created);
    const bob = await http.begin({ key: '"same"', fingerprint: 'b', scope: 'bob' });
    expect(bob.action).toBe('proceed');
    const aliceAgain = await http.begin({ key: '"same"', fingerprint: 'b', scope: 'alice' });
    expect(aliceAgain).toMatchObject({ action: 'respond', reason: 'replayed' });
    // A scope containing the separator cannot collide with another scope and key.
    const tricky = await http.begin({ key: '"x"', fingerprint: 'b', scope: 'alice:same' });
    expect(tricky.action).toBe('proceed');
  });

  it('answers 503 problem+json when the store is unreachable, without proceeding', async () => {
    const down: IdempotencyStore = {
      begin: () => Promise.reject(new Error('ECONNREFUSED')),
      renew: () => Promise.reject(new Error('ECONNREFUSED')),
      complete: () => Promise.reject(new Error('ECONNREFUSED')),
      release: () => Promise.reject(new Error('ECONNREFUSED')),
    };
    const p = problemOf(await httpIdempotency({ store: down }).begin({ key: '"k"', fingerprint: 'b' }));
    expect(p.status).toBe(503);
    expect(p.headers['retry-after']).toBe('1');
    expect(p.body.type).toBe('urn:bulwark:idempotency:store-unavailable');
  });
});

describe('httpIdempotency() scopes', () => {
  it('accepts a 255-character key under a long scope', async () => {
    const http = httpIdempotency({ store: memoryStore() });
    const d = await http.begin({ key: `"${'k'.repeat(255)}"`, fingerprint: 'b', scope: 'p'.repeat(500) });
    expect(d.action).toBe('proceed');
  });
});

describe('httpIdempotency() and a store that hangs', () => {
  it('answers 503 once storeTimeoutMs has passed, without proceeding', async () => {
    const clock = new VirtualClock();
    const never: IdempotencyStore = {
      begin: () => new Promise(() => {}),
      renew: () => new Promise(() => {}),
      complete: () => new Promise(() => {}),
      release: () => new Promise(() => {}),
    };
    const decision = httpIdempotency({ store: never, clock, storeTimeoutMs: 250 }).begin({
      key: '"k"',
      fingerprint: 'b',
    });
    await clock.advance(250);
    const p = problemOf(await decision);
    expect(p.status).toBe(503);
    expect(p.body.type).toBe('urn:bulwark:idempotency:store-unavailable');
  });
});
