import { Readable } from 'node:stream';
import { CallbackError, InvalidOptionsError, isBulwarkError } from '@bulwark/core';
import {
  completeIdempotent,
  type IdempotentMessage,
  type ProceedDecision,
  replayableResponse,
  routeIdempotency,
} from '@bulwark/http-server';
import { memoryStore } from '@bulwark/idempotency';
import { describe, expect, it } from 'vitest';

interface Caller {
  readonly user: string;
}

/** A POST to /orders; the key is sent as a structured-field string (quoted), as the header requires. */
function message(key: string | string[] | undefined, body: unknown = { n: 1 }): IdempotentMessage {
  const quoted = Array.isArray(key) ? key.map((k) => `"${k}"`) : key === undefined ? undefined : `"${key}"`;
  return {
    headers: quoted === undefined ? {} : { 'idempotency-key': quoted },
    method: 'POST',
    url: '/orders',
    body,
  };
}

async function proceed(promise: Promise<unknown>): Promise<ProceedDecision> {
  const decision = (await promise) as { action: string };
  if (decision.action !== 'proceed') throw new Error(`expected proceed, got ${JSON.stringify(decision)}`);
  return decision as ProceedDecision;
}

describe('replayableResponse()', () => {
  it('keeps the status, the body as text and the headers that describe the resource', () => {
    const response = replayableResponse(
      201,
      {
        'Content-Type': 'application/json',
        'content-length': 9,
        'set-cookie': ['a=1', 'b=2'],
        date: 'Sat, 05 Dec 2026 10:00:00 GMT',
        vary: ['accept', 'accept-encoding'],
        'x-count': 3,
        'x-unset': undefined,
      },
      Buffer.from('{"id":7}'),
    );
    expect(response).toEqual({
      status: 201,
      headers: { 'content-type': 'application/json', vary: 'accept, accept-encoding', 'x-count': '3' },
      body: '{"id":7}',
    });
  });

  it('stores no body as an empty one, and a string as it is', () => {
    expect(replayableResponse(204, {}, undefined)?.body).toBe('');
    expect(replayableResponse(204, {}, null)?.body).toBe('');
    expect(replayableResponse(200, {}, 'plain')?.body).toBe('plain');
  });

  it('refuses a body it cannot replay: a stream, binary content', () => {
    expect(replayableResponse(200, {}, Readable.from(['x']))).toBeUndefined();
    expect(replayableResponse(200, {}, Buffer.from([0xff, 0xfe, 0x00]))).toBeUndefined();
  });
});

describe('routeIdempotency()', () => {
  it('lists its own bad options and those of httpIdempotency() in one error named after the caller', () => {
    let error: unknown;
    try {
      routeIdempotency('route POST /x', { store: undefined as never, scope: 'user' as never, ttlMs: -1 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as Error).message).toContain('route POST /x');
    expect((error as InvalidOptionsError).violations.map((v) => v.option).sort()).toEqual(
      ['scope', 'store', 'ttlMs'].sort(),
    );
    expect(() => routeIdempotency('r', null as never)).toThrow(InvalidOptionsError);
  });

  it('commits what was sent, then replays it for the same key and request', async () => {
    const route = routeIdempotency<Caller>('r', { store: memoryStore() });
    const first = await proceed(route.begin({ user: 'a' }, message('k1')));
    expect(first.key).toBe('k1');
    await completeIdempotent(first, 201, { 'content-type': 'text/plain' }, Buffer.from('made'));
    const again = await route.begin({ user: 'a' }, message('k1'));
    expect(again).toMatchObject({
      action: 'respond',
      reason: 'replayed',
      response: { status: 201, body: 'made', headers: { 'content-type': 'text/plain' } },
    });
    const reused = await route.begin({ user: 'a' }, message('k1', { n: 2 }));
    expect(reused).toMatchObject({ action: 'respond', reason: 'mismatch', response: { status: 422 } });
  });

  it('releases the key when the response cannot be replayed, so the retry runs', async () => {
    const route = routeIdempotency<Caller>('r', { store: memoryStore() });
    const first = await proceed(route.begin({ user: 'a' }, message('k2')));
    // While the first request holds the key, its duplicate waits.
    expect(await route.begin({ user: 'a' }, message('k2'))).toMatchObject({
      action: 'respond',
      reason: 'in-progress',
      response: { status: 409 },
    });
    // A binary body cannot be replayed: the key is released, nothing is stored.
    expect(await completeIdempotent(first, 200, {}, Buffer.from([0xff, 0x00]))).toBeUndefined();
    const retry = await route.begin({ user: 'a' }, message('k2'));
    expect(retry.action).toBe('proceed');
    expect((retry as ProceedDecision).key).toBe('k2');
  });

  it('fails closed with a CallbackError when scope throws: no key is taken and nothing runs', async () => {
    const store = memoryStore();
    const denied = new Error('no principal');
    let anonymous = true;
    const route = routeIdempotency<Caller>('r', {
      store,
      scope: (caller) => {
        if (anonymous) throw denied;
        return caller.user;
      },
    });
    const begun = route.begin({ user: 'a' }, message('k3'));
    expect(begun).toBeInstanceOf(Promise);
    const error = await begun.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CallbackError);
    expect(isBulwarkError(error, 'ERR_CALLBACK_FAILED')).toBe(true);
    expect((error as CallbackError).callback).toBe('scope');
    expect((error as CallbackError).cause).toBe(denied);
    expect((error as Error).message).toBe('scope threw: no principal');
    // The key was never taken: once scope answers, the same request proceeds.
    anonymous = false;
    expect((await proceed(route.begin({ user: 'a' }, message('k3')))).key).toBe('k3');
  });

  it('fails closed when scope returns something other than a string, rather than mixing namespaces', async () => {
    const route = routeIdempotency<Caller>('r', {
      store: memoryStore(),
      scope: (() => null) as unknown as (caller: Caller) => string,
    });
    const error = await route.begin({ user: 'a' }, message('k4')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CallbackError);
    expect((error as CallbackError).callback).toBe('scope');
    expect((error as CallbackError).cause).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('scope threw: it returned null, not a string or undefined');
  });

  it('namespaces keys by scope, and refuses a repeated header as one malformed key', async () => {
    const route = routeIdempotency<Caller>('r', { store: memoryStore(), scope: (caller) => caller.user });
    const mine = await proceed(route.begin({ user: 'a' }, message('shared')));
    // Another caller's request with the same key is a different key, not a conflict.
    const theirs = await proceed(route.begin({ user: 'b' }, message('shared')));
    expect([mine.key, theirs.key]).toEqual(['shared', 'shared']);
    // Two Idempotency-Key fields are joined into one value, which is no single key.
    expect(await route.begin({ user: 'a' }, message(['one', 'two']))).toMatchObject({
      action: 'respond',
      reason: 'invalid-key',
      response: { status: 400 },
    });
  });

  it('refuses a missing key with 400 unless the route does not require one', async () => {
    const required = routeIdempotency<Caller>('r', { store: memoryStore() });
    expect(await required.begin({ user: 'a' }, message(undefined))).toMatchObject({
      action: 'respond',
      reason: 'missing-key',
      response: { status: 400 },
    });
    const optional = routeIdempotency<Caller>('r', { store: memoryStore(), required: false });
    expect((await proceed(optional.begin({ user: 'a' }, message(undefined)))).key).toBeUndefined();
  });
});
