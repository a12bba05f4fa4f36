import { type BulkheadPermit, type BulkheadPolicy, bulkhead } from '@bulwark/bulkhead';
import { VirtualClock } from '@bulwark/clock';
import { InvalidOptionsError, isBulwarkError } from '@bulwark/core';
import { currentDeadline } from '@bulwark/deadline';
import { BULWARK_FASTIFY_DEFAULTS, type BulwarkFastifyOptions, bulwarkFastify } from '@bulwark/fastify';
import { type IdempotencyStore, memoryStore } from '@bulwark/idempotency';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';

/** A promise with its resolve function, to let a test wait for a handler. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Resolves with the signal's reason once it aborts. */
function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
  });
}

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function app(options: BulwarkFastifyOptions = {}): Promise<FastifyInstance> {
  const instance = Fastify();
  apps.push(instance);
  await instance.register(bulwarkFastify, options);
  return instance;
}

function problem(response: { headers: Record<string, unknown>; body: string }) {
  expect(String(response.headers['content-type'])).toMatch(/^application\/problem\+json/);
  return JSON.parse(response.body) as { type: string; title: string; status: number; detail: string };
}

describe('bulwarkFastify() options', () => {
  it('rejects bad options with one RangeError listing each, when the plugin loads', async () => {
    const instance = Fastify();
    apps.push(instance);
    instance.register(bulwarkFastify, {
      bulkhead: {} as BulkheadPolicy,
      retryAfterSeconds: 1.5,
      defaultTimeoutMs: 0,
      maxTimeoutMs: -1,
      clock: 'now' as never,
    });
    const error = await instance.ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RangeError);
    expect((error as InvalidOptionsError).violations.map((v) => v.option)).toEqual([
      'bulkhead',
      'retryAfterSeconds',
      'defaultTimeoutMs',
      'maxTimeoutMs',
      'clock',
    ]);
  });

  it('rejects a route whose idempotency options are bad, naming the route, with one RangeError', async () => {
    const instance = await app();
    let error: unknown;
    try {
      instance.post(
        '/orders',
        { config: { idempotency: { store: memoryStore(), required: 'yes' as never, scope: 1 as never } } },
        async () => 'ok',
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as Error).message).toContain('POST /orders');
    expect((error as InvalidOptionsError).violations.map((v) => v.option).sort()).toEqual([
      'required',
      'scope',
    ]);
  });

  it('documents its defaults', () => {
    expect(BULWARK_FASTIFY_DEFAULTS).toEqual({
      retryAfterSeconds: 1,
      defaultTimeoutMs: Number.POSITIVE_INFINITY,
      maxTimeoutMs: Number.POSITIVE_INFINITY,
    });
    expect(Object.isFrozen(BULWARK_FASTIFY_DEFAULTS)).toBe(true);
  });
});

describe('bulwarkFastify() deadlines', () => {
  it('runs the handler inside the smallest inbound budget and aborts its signal at the deadline', async () => {
    const clock = new VirtualClock();
    const instance = await app({ clock });
    const started = deferred<{ remaining: number | undefined; header: string | undefined }>();
    let reason: unknown;
    instance.get('/work', async (request, reply) => {
      started.resolve({
        remaining: currentDeadline({ clock })?.remaining(),
        header: request.bulwark.deadlineHeader,
      });
      reason = await aborted(request.bulwark.signal);
      return reply.code(504).send({ gaveUp: true });
    });
    const response = instance.inject({
      url: '/work',
      headers: { 'grpc-timeout': '2S', 'x-request-timeout-ms': '300', 'connect-timeout-ms': '400' },
    });
    expect(await started.promise).toEqual({ remaining: 300, header: 'x-request-timeout-ms' });
    await clock.advance(299);
    expect(reason).toBeUndefined();
    await clock.advance(1);
    expect((await response).statusCode).toBe(504);
    expect(isBulwarkError(reason, 'ERR_DEADLINE_EXCEEDED')).toBe(true);
  });

  it('uses defaultTimeoutMs without a header and caps a long budget at maxTimeoutMs', async () => {
    const clock = new VirtualClock();
    const instance = await app({ clock, defaultTimeoutMs: 1_000, maxTimeoutMs: 5_000 });
    instance.get('/left', async (request) => ({
      remaining: request.bulwark.remainingMs(),
      scoped: currentDeadline({ clock })?.remaining(),
    }));
    expect((await instance.inject({ url: '/left' })).json()).toEqual({ remaining: 1_000, scoped: 1_000 });
    const capped = await instance.inject({
      url: '/left',
      headers: { 'x-envoy-expected-rq-timeout-ms': '60000' },
    });
    expect(capped.json()).toEqual({ remaining: 5_000, scoped: 5_000 });
  });

  it('gives a request without deadline headers no deadline, but still a signal', async () => {
    const instance = await app({ clock: new VirtualClock() });
    instance.get('/none', async (request) => ({
      deadline: request.bulwark.deadline === undefined,
      remaining: String(request.bulwark.remainingMs()),
      aborted: request.bulwark.signal.aborted,
      scoped: currentDeadline() === undefined,
    }));
    expect((await instance.inject({ url: '/none' })).json()).toEqual({
      deadline: true,
      remaining: 'Infinity',
      aborted: false,
      scoped: true,
    });
  });

  it('answers 504 without running the handler when the deadline passed on arrival', async () => {
    const instance = await app({ clock: new VirtualClock() });
    let ran = 0;
    instance.get('/late', async () => {
      ran++;
      return 'ran';
    });
    for (const headers of [{ 'x-request-timeout-ms': '0' }, { 'grpc-timeout': '0m' }]) {
      const response = await instance.inject({ url: '/late', headers });
      expect(response.statusCode).toBe(504);
      expect(problem(response).type).toBe('urn:bulwark:deadline:expired');
    }
    expect(ran).toBe(0);
  });

  it('answers 504 without running the handler when the deadline passes before the handler starts', async () => {
    const clock = new VirtualClock();
    const instance = await app({ clock });
    let ran = 0;
    instance.get(
      '/slow-auth',
      {
        preValidation: async () => {
          await clock.advance(150);
        },
      },
      async () => {
        ran++;
        return 'ran';
      },
    );
    const response = await instance.inject({ url: '/slow-auth', headers: { 'x-request-timeout-ms': '100' } });
    expect(response.statusCode).toBe(504);
    expect(problem(response).detail).toContain('100 ms');
    expect(ran).toBe(0);
  });

  it('answers 504 without running the handler when a later preHandler hook used up the deadline', async () => {
    const clock = new VirtualClock();
    const instance = await app({ clock, defaultTimeoutMs: 100 });
    // Added after the plugin's own preHandler, and a route-level one: both run after its check.
    instance.addHook('preHandler', async () => {
      await clock.advance(60);
    });
    let ran = 0;
    instance.get('/late', { preHandler: async () => void (await clock.advance(60)) }, async () => {
      ran++;
      return 'ran';
    });
    instance.get('/in-time', async (request) => {
      ran++;
      return { aborted: request.bulwark.signal.aborted, scoped: currentDeadline({ clock })?.remaining() };
    });
    const late = await instance.inject({ url: '/late' });
    expect(late.statusCode).toBe(504);
    expect(problem(late).type).toBe('urn:bulwark:deadline:expired');
    expect(ran).toBe(0);
    const inTime = await instance.inject({ url: '/in-time' });
    expect(inTime.statusCode).toBe(200);
    expect(inTime.json()).toEqual({ aborted: false, scoped: 40 });
    expect(ran).toBe(1);
  });

  it('answers 504 on an idempotent route when the deadline passed while the key was taken, and releases the key', async () => {
    const clock = new VirtualClock();
    const instance = await app({ clock, defaultTimeoutMs: 100 });
    const memory = memoryStore();
    let delay = 150;
    let ran = 0;
    // A slow store: taking the key uses up the deadline.
    const store: IdempotencyStore = {
      begin: async (request) => {
        await clock.advance(delay);
        return memory.begin(request);
      },
      renew: (...args) => memory.renew(...args),
      complete: (...args) => memory.complete(...args),
      release: (...args) => memory.release(...args),
    };
    instance.post('/pay', { config: { idempotency: { store } } }, async () => {
      ran++;
      return { paid: true };
    });
    const pay = () =>
      instance.inject({ method: 'POST', url: '/pay', headers: { 'idempotency-key': '"p-1"' }, payload: {} });
    expect((await pay()).statusCode).toBe(504);
    expect(ran).toBe(0);
    delay = 0;
    const retry = await pay();
    expect(retry.statusCode).toBe(200);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(ran).toBe(1);
  });

  it('answers 400 problem+json naming each malformed deadline header', async () => {
    const instance = await app({ clock: new VirtualClock() });
    let ran = 0;
    instance.get('/x', async () => {
      ran++;
      return 'ran';
    });
    const cases: Array<[string, string]> = [
      ['grpc-timeout', '5 seconds'],
      ['x-request-timeout-ms', '-1'],
      ['connect-timeout-ms', '12345678901'],
      ['x-envoy-expected-rq-timeout-ms', '1e3'],
    ];
    for (const [header, value] of cases) {
      const response = await instance.inject({ url: '/x', headers: { [header]: value } });
      expect(response.statusCode).toBe(400);
      const body = problem(response);
      expect(body).toMatchObject({ status: 400, title: `The ${header} header is malformed` });
      expect(body.detail).toContain(header);
    }
    expect(ran).toBe(0);
  });

  it('applies to routes registered in child plugins too', async () => {
    const instance = await app({ clock: new VirtualClock() });
    await instance.register(async (child) => {
      child.get('/child', async (request) => ({ remaining: request.bulwark.remainingMs() }));
    });
    const response = await instance.inject({ url: '/child', headers: { 'x-request-timeout-ms': '250' } });
    expect(response.json()).toEqual({ remaining: 250 });
  });
});

describe('bulwarkFastify() load shedding', () => {
  it('answers 503 with Retry-After when the bulkhead is full, and gives every slot back', async () => {
    const limiter = bulkhead({ maxConcurrent: 2 });
    const instance = await app({ bulkhead: limiter, retryAfterSeconds: 3 });
    const gate = deferred();
    let running = 0;
    const twoRunning = deferred();
    instance.get('/busy', async () => {
      if (++running === 2) twoRunning.resolve();
      await gate.promise;
      return 'done';
    });
    const held = [instance.inject({ url: '/busy' }), instance.inject({ url: '/busy' })];
    await twoRunning.promise;
    const shed = await instance.inject({ url: '/busy' });
    expect(shed.statusCode).toBe(503);
    expect(shed.headers['retry-after']).toBe('3');
    expect(problem(shed).type).toBe('urn:bulwark:server:overloaded');
    expect(limiter.active).toBe(2);
    gate.resolve();
    expect((await Promise.all(held)).map((r) => r.statusCode)).toEqual([200, 200]);
    expect(limiter.active).toBe(0);
    expect((await instance.inject({ url: '/busy' })).statusCode).toBe(200);
    expect(limiter.active).toBe(0);
  });

  it('tells the limit how each request went: success, failure (5xx) or dropped (deadline)', async () => {
    const clock = new VirtualClock();
    const outcomes: string[] = [];
    const recording = {
      tryAcquire(): BulkheadPermit {
        const report = (outcome: string) => () => {
          outcomes.push(outcome);
        };
        return {
          success: report('success'),
          failure: report('failure'),
          dropped: report('dropped'),
          release: report('release'),
        };
      },
    } as unknown as BulkheadPolicy;
    const instance = await app({ bulkhead: recording, clock });
    instance.get('/ok', async () => 'ok');
    instance.get('/boom', async () => {
      throw new Error('boom');
    });
    instance.get('/deadline', async (request, reply) => {
      await aborted(request.bulwark.signal);
      return reply.code(504).send('late');
    });
    await instance.inject({ url: '/ok' });
    await instance.inject({ url: '/boom' });
    const late = instance.inject({ url: '/deadline', headers: { 'x-request-timeout-ms': '10' } });
    await clock.advance(10);
    await late;
    expect(outcomes).toEqual(['success', 'failure', 'dropped']);
  });
});

describe('bulwarkFastify() idempotency', () => {
  async function ordersApp(options: { required?: boolean; leaseMs?: number } = {}) {
    const instance = await app();
    let executed = 0;
    const gate = { promise: Promise.resolve() as Promise<void> };
    instance.post(
      '/orders',
      { config: { idempotency: { store: memoryStore(), ...options } } },
      async (request, reply) => {
        executed++;
        await gate.promise;
        const body = request.body as { fail?: boolean } | null;
        if (body?.fail) return reply.code(500).send({ error: 'failed' });
        return reply
          .code(201)
          .header('location', `/orders/${executed}`)
          .send({ id: executed, key: request.bulwark.idempotencyKey });
      },
    );
    const post = (key: string | undefined, body: unknown = { sku: 'a' }) =>
      instance.inject({
        method: 'POST',
        url: '/orders',
        headers: key === undefined ? {} : { 'idempotency-key': key },
        payload: body as object,
      });
    return { instance, post, gate, executed: () => executed };
  }

  it('executes once and replays the stored response, status, headers and body', async () => {
    const { post, executed } = await ordersApp();
    const first = await post('"k-1"');
    expect(first.statusCode).toBe(201);
    expect(first.json()).toEqual({ id: 1, key: 'k-1' });
    const replay = await post('"k-1"');
    expect(replay.statusCode).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.headers.location).toBe('/orders/1');
    expect(replay.json()).toEqual({ id: 1, key: 'k-1' });
    expect(executed()).toBe(1);
  });

  it('answers 409 with Retry-After while the first request with the key still runs', async () => {
    const { post, gate, executed } = await ordersApp();
    const open = deferred();
    gate.promise = open.promise;
    const first = post('"k-2"');
    while (executed() === 0) await new Promise((r) => setImmediate(r));
    const second = await post('"k-2"');
    expect(second.statusCode).toBe(409);
    expect(Number(second.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(problem(second).type).toBe('urn:bulwark:idempotency:in-progress');
    open.resolve();
    expect((await first).statusCode).toBe(201);
    expect(executed()).toBe(1);
  });

  it('answers 422 when the key was used for a different request', async () => {
    const { post } = await ordersApp();
    await post('"k-3"', { sku: 'a' });
    const reused = await post('"k-3"', { sku: 'b' });
    expect(reused.statusCode).toBe(422);
    expect(problem(reused).type).toBe('urn:bulwark:idempotency:key-reused');
  });

  it('answers 400 naming the header when the key is missing or malformed', async () => {
    const { post, executed } = await ordersApp();
    const missing = await post(undefined);
    expect(missing.statusCode).toBe(400);
    expect(problem(missing).title).toContain('Idempotency-Key');
    const malformed = await post('"unterminated');
    expect(malformed.statusCode).toBe(400);
    expect(problem(malformed)).toMatchObject({
      type: 'urn:bulwark:idempotency:invalid-key',
      title: 'The Idempotency-Key header is malformed',
    });
    expect(executed()).toBe(0);
  });

  it('lets requests without a key through when the key is not required', async () => {
    const { post, executed } = await ordersApp({ required: false });
    expect((await post(undefined)).statusCode).toBe(201);
    expect((await post(undefined)).statusCode).toBe(201);
    expect(executed()).toBe(2);
  });

  it('releases the key after a 5xx, so the retry executes again', async () => {
    const { post, executed } = await ordersApp();
    expect((await post('"k-4"', { fail: true })).statusCode).toBe(500);
    const retry = await post('"k-4"', { fail: true });
    expect(retry.statusCode).toBe(500);
    expect(retry.headers['idempotent-replayed']).toBeUndefined();
    expect(executed()).toBe(2);
  });

  it('namespaces keys by scope, so one client never replays another', async () => {
    const instance = await app();
    let executed = 0;
    instance.post(
      '/pay',
      {
        config: {
          idempotency: { store: memoryStore(), scope: (request) => String(request.headers['x-user']) },
        },
      },
      async () => ({ n: ++executed }),
    );
    const pay = (user: string) =>
      instance.inject({
        method: 'POST',
        url: '/pay',
        headers: { 'idempotency-key': '"same"', 'x-user': user },
        payload: {},
      });
    expect((await pay('alice')).json()).toEqual({ n: 1 });
    expect((await pay('bob')).json()).toEqual({ n: 2 });
    expect((await pay('alice')).json()).toEqual({ n: 1 });
  });

  it('leaves routes without idempotency options alone', async () => {
    const instance = await app();
    instance.post('/free', async () => 'free');
    const response = await instance.inject({ method: 'POST', url: '/free', payload: {} });
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe('free');
  });
});
