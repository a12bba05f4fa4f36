// The Express middleware driven directly, on a VirtualClock, with minimal
// request and response objects (real sockets are in test/e2e/server-plugins.test.ts).
import { EventEmitter } from 'node:events';
import { bulkhead } from '@bulwark/bulkhead';
import { VirtualClock } from '@bulwark/clock';
import { InvalidOptionsError, isBulwarkError } from '@bulwark/core';
import { currentDeadline } from '@bulwark/deadline';
import { BULWARK_EXPRESS_DEFAULTS, bulwarkExpress, idempotent } from '@bulwark/express';
import { memoryStore } from '@bulwark/idempotency';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { describe, expect, it } from 'vitest';

/** A response that records what was sent; `close()` plays the connection closing. */
class FakeResponse extends EventEmitter {
  statusCode = 200;
  writableEnded = false;
  headersSent = false;
  sent: { status: number; headers: Record<string, string>; body: string } | undefined;
  readonly #headers: Record<string, string> = {};
  #chunks: string[] = [];
  setHeader(name: string, value: string) {
    this.#headers[name.toLowerCase()] = value;
    return this;
  }
  getHeaders() {
    return { ...this.#headers };
  }
  writeHead(status: number, headers: Record<string, string>) {
    this.statusCode = status;
    for (const [name, value] of Object.entries(headers)) this.setHeader(name, value);
    return this;
  }
  write(chunk: string) {
    this.headersSent = true;
    this.#chunks.push(chunk);
    return true;
  }
  end(chunk?: string) {
    if (chunk !== undefined) this.#chunks.push(chunk);
    this.writableEnded = true;
    this.headersSent = true;
    this.sent = { status: this.statusCode, headers: this.getHeaders(), body: this.#chunks.join('') };
    return this;
  }
  close() {
    this.emit('close');
  }
}

function request(headers: Record<string, string> = {}, extra: Partial<Request> = {}): Request {
  return { headers, method: 'GET', originalUrl: '/', ...extra } as unknown as Request;
}

/** Runs `handler` and resolves with what it passed to next (undefined when it answered itself). */
async function run(handler: RequestHandler, req: Request, res: FakeResponse) {
  let nextCalled = false;
  let nextError: unknown;
  const next: NextFunction = (error?: unknown) => {
    nextCalled = true;
    nextError = error;
  };
  await handler(req, res as unknown as Response, next);
  return { nextCalled, nextError };
}

describe('bulwarkExpress() options', () => {
  it('rejects bad options with one RangeError listing each', () => {
    let error: unknown;
    try {
      bulwarkExpress({ bulkhead: 5 as never, retryAfterSeconds: -1, defaultTimeoutMs: Number.NaN });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RangeError);
    expect((error as InvalidOptionsError).violations.map((v) => v.option)).toEqual([
      'bulkhead',
      'retryAfterSeconds',
      'defaultTimeoutMs',
    ]);
  });

  it('rejects bad idempotent() options, its own and those of httpIdempotency(), with one RangeError', () => {
    let error: unknown;
    try {
      idempotent({ store: memoryStore(), scope: 'user' as never, storeStatus: 200 as never });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).violations.map((v) => v.option).sort()).toEqual([
      'scope',
      'storeStatus',
    ]);
  });

  it('documents its defaults', () => {
    expect(BULWARK_EXPRESS_DEFAULTS).toEqual({
      retryAfterSeconds: 1,
      defaultTimeoutMs: Number.POSITIVE_INFINITY,
      maxTimeoutMs: Number.POSITIVE_INFINITY,
    });
  });
});

describe('bulwarkExpress()', () => {
  it('runs the rest of the chain inside the deadline and aborts req.bulwark.signal at it', async () => {
    const clock = new VirtualClock();
    const req = request({ 'x-request-timeout-ms': '900', 'grpc-timeout': '250m' });
    const res = new FakeResponse();
    let scoped: number | undefined;
    await bulwarkExpress({ clock })(req, res as unknown as Response, () => {
      scoped = currentDeadline({ clock })?.remaining();
    });
    expect(scoped).toBe(250);
    expect(req.bulwark.deadlineHeader).toBe('grpc-timeout');
    await clock.advance(249);
    expect(req.bulwark.signal.aborted).toBe(false);
    await clock.advance(1);
    expect(isBulwarkError(req.bulwark.signal.reason, 'ERR_DEADLINE_EXCEEDED')).toBe(true);
  });

  it('answers 504 on arrival when the budget is spent, and 400 naming a malformed header', async () => {
    const middleware = bulwarkExpress({ clock: new VirtualClock() });
    const late = new FakeResponse();
    expect((await run(middleware, request({ 'connect-timeout-ms': '0' }), late)).nextCalled).toBe(false);
    expect(late.sent?.status).toBe(504);
    const bad = new FakeResponse();
    expect((await run(middleware, request({ 'x-request-timeout-ms': 'abc' }), bad)).nextCalled).toBe(false);
    expect(bad.sent?.status).toBe(400);
    expect(bad.sent?.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(bad.sent!.body).title).toBe('The x-request-timeout-ms header is malformed');
  });

  it('sheds with 503 when full and gives the slot back once when the response closes', async () => {
    const limiter = bulkhead({ maxConcurrent: 1 });
    const middleware = bulwarkExpress({ bulkhead: limiter, retryAfterSeconds: 2 });
    const first = new FakeResponse();
    expect((await run(middleware, request(), first)).nextCalled).toBe(true);
    const shed = new FakeResponse();
    expect((await run(middleware, request(), shed)).nextCalled).toBe(false);
    expect(shed.sent?.status).toBe(503);
    expect(shed.sent?.headers['retry-after']).toBe('2');
    expect(limiter.active).toBe(1);
    first.end('done');
    first.close();
    first.close();
    expect(limiter.active).toBe(0);
  });

  it('aborts the signal with an AbortError when the client goes away before the response ends', async () => {
    const clock = new VirtualClock();
    const req = request({ 'x-request-timeout-ms': '1000' });
    const res = new FakeResponse();
    await run(bulwarkExpress({ clock }), req, res);
    res.close();
    expect(req.bulwark.signal.aborted).toBe(true);
    expect((req.bulwark.signal.reason as DOMException).name).toBe('AbortError');
    // The deadline's timer is gone: advancing past it changes nothing.
    await clock.advance(2_000);
    expect((req.bulwark.signal.reason as DOMException).name).toBe('AbortError');
  });
});

describe('idempotent()', () => {
  const post = (key: string | undefined, body: unknown) =>
    request(key === undefined ? {} : { 'idempotency-key': key }, {
      method: 'POST',
      originalUrl: '/orders',
      body,
    } as Partial<Request>);

  it('stores the response before sending it, then replays it', async () => {
    const route = idempotent({ store: memoryStore() });
    const res = new FakeResponse();
    await run(route, post('"a"', { n: 1 }), res);
    res.statusCode = 201;
    res.setHeader('content-type', 'application/json');
    res.write('{"id":');
    res.end('7}');
    // end() is held until the record is stored.
    expect(res.sent).toBeUndefined();
    await new Promise((r) => setImmediate(r));
    expect(res.sent).toMatchObject({ status: 201, body: '{"id":7}' });
    const replay = new FakeResponse();
    expect((await run(route, post('"a"', { n: 1 }), replay)).nextCalled).toBe(false);
    expect(replay.sent).toEqual({
      status: 201,
      headers: { 'content-type': 'application/json', 'idempotent-replayed': 'true' },
      body: '{"id":7}',
    });
  });

  it('keeps the key after a disconnect while the handler runs, and stores what the handler sends', async () => {
    const route = idempotent({ store: memoryStore() });
    const res = new FakeResponse();
    expect((await run(route, post('"b"', {}), res)).nextCalled).toBe(true);
    res.close(); // the client went away; the handler is still running
    const retry = new FakeResponse();
    await run(route, post('"b"', {}), retry);
    expect(retry.sent?.status).toBe(409);
    res.statusCode = 201;
    res.end('{"done":true}');
    await new Promise((r) => setImmediate(r));
    const replay = new FakeResponse();
    await run(route, post('"b"', {}), replay);
    expect(replay.sent).toMatchObject({ status: 201, body: '{"done":true}' });
  });

  it('releases the key when the handler fails with a 5xx, so the retry executes', async () => {
    const route = idempotent({ store: memoryStore() });
    const res = new FakeResponse();
    await run(route, post('"e"', {}), res);
    res.statusCode = 500;
    res.end('{"error":"internal"}');
    await new Promise((r) => setImmediate(r));
    expect((await run(route, post('"e"', {}), new FakeResponse())).nextCalled).toBe(true);
  });

  it('answers 504 instead of running the handler when the deadline passed while the key was taken', async () => {
    const clock = new VirtualClock();
    const req = post('"late"', {});
    req.headers['x-request-timeout-ms'] = '50';
    const res = new FakeResponse();
    await run(bulwarkExpress({ clock }), req, res);
    await clock.advance(60);
    expect((await run(idempotent({ store: memoryStore() }), req, res)).nextCalled).toBe(false);
    expect(res.sent?.status).toBe(504);
    expect(JSON.parse(res.sent!.body).type).toBe('urn:bulwark:deadline:expired');
  });

  it('answers 400 for a missing key, 422 for a reused one, and passes keyless requests when not required', async () => {
    const route = idempotent({ store: memoryStore() });
    const missing = new FakeResponse();
    await run(route, post(undefined, {}), missing);
    expect(missing.sent?.status).toBe(400);
    const res = new FakeResponse();
    await run(route, post('"c"', { n: 1 }), res);
    res.end('ok');
    await new Promise((r) => setImmediate(r));
    const reused = new FakeResponse();
    await run(route, post('"c"', { n: 2 }), reused);
    expect(reused.sent?.status).toBe(422);
    const optional = idempotent({ store: memoryStore(), required: false });
    expect((await run(optional, post(undefined, {}), new FakeResponse())).nextCalled).toBe(true);
  });
});
