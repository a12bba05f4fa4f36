// The seams between bulwark's server adapters and their frameworks, on real
// sockets on 127.0.0.1: Fastify idempotency in every registration order, store
// failures that reach the framework's logger and the guard's events, and
// bulwark errors answered as problem+json by each framework's error handling.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bulkhead } from '@bulwark/bulkhead';
import { BrokenCircuitError } from '@bulwark/circuit-breaker';
import { BulwarkError, DeadlineExceededError } from '@bulwark/core';
import { bulwarkErrorHandler, bulwarkExpress, idempotent } from '@bulwark/express';
import { type BulwarkFastifyOptions, bulwarkErrorReply, bulwarkFastify } from '@bulwark/fastify';
import { bulwarkHttp } from '@bulwark/http-server';
import { type IdempotencyStore, memoryStore, type OutcomeEvent } from '@bulwark/idempotency';
import express from 'express';
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { listenOnLoopback } from '../support/loopback.ts';

const BOUND_MS = 5_000;

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

function post(url: string, key?: string, body = '{"sku":"book"}'): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (key !== undefined) headers['idempotency-key'] = `"${key}"`;
  return fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(BOUND_MS) });
}

interface LogLine {
  level: number;
  msg: string;
  reqId?: string;
  err?: { message: string; type: string; cause?: { message: string } };
}

/** A Fastify app whose log lines are collected in `logs`. */
function fastifyApp(logs: LogLine[] = []): FastifyInstance {
  const app = Fastify({
    forceCloseConnections: true,
    logger: { level: 'info', stream: { write: (line: string) => logs.push(JSON.parse(line) as LogLine) } },
  });
  closers.push(() => app.close());
  return app;
}

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** Declares the idempotent route under test on `scope`; `ran` counts its executions. */
function declareOrders(scope: FastifyInstance, ran: string[], store: IdempotencyStore): void {
  scope.post('/orders', { config: { idempotency: { store } } }, async (_request, reply) => {
    ran.push('order');
    return reply.code(201).send({ order: ran.length });
  });
}

/** Idempotency holds: a missing key is refused, a repeated key is replayed, the handler ran once. */
async function expectEnforced(url: string, ran: string[]): Promise<void> {
  const missing = await post(`${url}/orders`);
  expect(missing.status).toBe(400);
  expect(missing.headers.get('content-type')).toBe('application/problem+json');
  const first = await post(`${url}/orders`, 'same');
  expect(first.status).toBe(201);
  const again = await post(`${url}/orders`, 'same');
  expect(again.status).toBe(201);
  expect(again.headers.get('idempotent-replayed')).toBe('true');
  expect(await again.json()).toEqual({ order: 1 });
  expect(ran).toEqual(['order']);
}

type Order = (app: FastifyInstance, ran: string[], store: IdempotencyStore) => Promise<void> | void;

const orders: ReadonlyArray<readonly [string, Order]> = [
  [
    'await app.register(), then the routes',
    async (app, ran, store) => {
      await app.register(bulwarkFastify);
      declareOrders(app, ran, store);
    },
  ],
  [
    'app.register() without await, then the routes',
    (app, ran, store) => {
      void app.register(bulwarkFastify);
      declareOrders(app, ran, store);
    },
  ],
  [
    'the routes first, then await app.register()',
    async (app, ran, store) => {
      declareOrders(app, ran, store);
      await app.register(bulwarkFastify);
    },
  ],
  [
    'app.register() without await, then the routes in a child plugin',
    (app, ran, store) => {
      void app.register(bulwarkFastify);
      const routes: FastifyPluginAsync = async (child) => declareOrders(child, ran, store);
      void app.register(routes);
    },
  ],
  [
    'the plugin and the routes inside one child plugin, without await',
    (app, ran, store) => {
      const child: FastifyPluginAsync = async (scope) => {
        void scope.register(bulwarkFastify);
        declareOrders(scope, ran, store);
      };
      void app.register(child);
    },
  ],
];

describe('Fastify idempotency in every registration order', { timeout: BOUND_MS * 2 }, () => {
  it.each(orders)('is enforced with %s', async (_name, order) => {
    const app = fastifyApp();
    const ran: string[] = [];
    await order(app, ran, memoryStore());
    await expectEnforced(await listen(app), ran);
  });

  it('warns, once per route, that a route added before the plugin loaded takes its key before its own preHandler hooks', async () => {
    const logs: LogLine[] = [];
    const app = fastifyApp(logs);
    void app.register(bulwarkFastify);
    declareOrders(app, [], memoryStore());
    const url = await listen(app);
    await post(`${url}/orders`, 'a');
    await post(`${url}/orders`, 'b');
    const warnings = logs.filter((l) => l.level === 40 && l.msg.includes('POST /orders'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toContain('await app.register(bulwarkFastify');
  });

  it('fails at ready() when the plugin is registered twice (two slots and two keys per request otherwise)', async () => {
    const app = fastifyApp();
    void app.register(bulwarkFastify);
    void app.register(async (child) => {
      await child.register(bulwarkFastify);
    });
    const error = await app.ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toMatch(/plugin.*registered once/);
  });
});

/** A store whose every call fails, as an unreachable server's does. */
function brokenStore(): IdempotencyStore {
  const down = () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6390'));
  return { begin: down, complete: down, release: down, renew: down };
}

/** A store that takes keys but fails to store responses. */
function completeFails(): IdempotencyStore {
  const store = memoryStore();
  return {
    begin: (request) => store.begin(request),
    complete: () => Promise.reject(new Error('READONLY You cannot write against a read only replica')),
    release: (key, token) => store.release(key, token),
    renew: (key, token, retainMs) => store.renew(key, token, retainMs),
  };
}

describe('store failures are visible', { timeout: BOUND_MS * 2 }, () => {
  it("Fastify logs the cause of a 503 through the request's logger", async () => {
    const logs: LogLine[] = [];
    const app = fastifyApp(logs);
    await app.register(bulwarkFastify);
    declareOrders(app, [], brokenStore());
    const response = await post(`${await listen(app)}/orders`, 'k');
    expect(response.status).toBe(503);
    const line = logs.find((l) => l.level === 50 && l.msg.includes('idempotency store unavailable'));
    expect(line?.reqId).toBeDefined();
    expect(line?.err?.type).toBe('StoreUnavailableError');
    expect(line?.err?.message).toContain('ECONNREFUSED');
  });

  it('Fastify logs a response that could not be stored, with its cause', async () => {
    const logs: LogLine[] = [];
    const app = fastifyApp(logs);
    await app.register(bulwarkFastify);
    declareOrders(app, [], completeFails());
    const response = await post(`${await listen(app)}/orders`, 'k');
    expect(response.status).toBe(201);
    const line = logs.find((l) => l.level === 50 && l.msg.includes('not stored'));
    expect(line?.err?.message).toContain('READONLY');
  });

  it("Fastify hands each route's guard to onGuard, and its events fire", async () => {
    const app = fastifyApp();
    await app.register(bulwarkFastify);
    const outcomes: OutcomeEvent['outcome'][] = [];
    app.post(
      '/orders',
      {
        config: {
          idempotency: {
            store: memoryStore(),
            onGuard: (guard) => guard.onOutcome((event) => outcomes.push(event.outcome)),
          },
        },
      },
      async () => 'ok',
    );
    const url = await listen(app);
    await post(`${url}/orders`, 'k');
    await post(`${url}/orders`, 'k');
    expect(outcomes).toEqual(['executed', 'replayed']);
  });

  it('Express tells onStoreError the cause of a 503, and exposes the guard on the middleware', async () => {
    const seen: unknown[] = [];
    const app = express();
    app.use(bulwarkExpress());
    app.use(express.json());
    const route = idempotent({
      store: brokenStore(),
      onStoreError: (error, phase, req) => seen.push([phase, (error as Error).message, req?.originalUrl]),
    });
    const outcomes: string[] = [];
    route.guard.onOutcome((event) => outcomes.push(event.outcome));
    app.post('/orders', route, (_req, res) => {
      res.status(201).json({});
    });
    const { url, close } = await listenOnLoopback(createServer(app));
    closers.push(close);
    expect((await post(`${url}/orders`, 'k')).status).toBe(503);
    expect(seen).toHaveLength(1);
    const [phase, message, path] = seen[0] as [string, string, string];
    expect(phase).toBe('begin');
    expect(message).toContain('ECONNREFUSED');
    expect(path).toBe('/orders');
    expect(outcomes).toEqual(['store-error']);
  });
});

/** Errors a handler may let escape, and the answer expected for each. */
const thrown = [
  {
    name: 'a DeadlineExceededError',
    error: () => new DeadlineExceededError('deadline', 250),
    status: 504,
    type: 'urn:bulwark:deadline:expired',
    retryAfter: null,
  },
  {
    name: 'an open circuit',
    error: () => new BrokenCircuitError('open', 2_500, 'payments'),
    status: 503,
    type: 'urn:bulwark:server:dependency-unavailable',
    retryAfter: '3',
  },
  {
    name: 'a rate limit (by code and retryAfterMs)',
    error: () => new BulwarkError('ERR_RATE_LIMITED', 'rate limited', { retryAfterMs: 1_200 }),
    status: 503,
    type: 'urn:bulwark:server:overloaded',
    retryAfter: '2',
  },
  {
    name: 'a full bulkhead',
    error: () => new BulwarkError('ERR_BULKHEAD_FULL', 'bulkhead full'),
    status: 503,
    type: 'urn:bulwark:server:overloaded',
    retryAfter: '1',
  },
] as const;

async function expectProblem(response: Response, expected: (typeof thrown)[number]): Promise<void> {
  expect(response.status).toBe(expected.status);
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  expect(response.headers.get('retry-after')).toBe(expected.retryAfter);
  const body = (await response.json()) as { type: string; status: number; title: string };
  expect(body.type).toBe(expected.type);
  expect(body.status).toBe(expected.status);
}

describe('bulwark errors are answered as problem+json', { timeout: BOUND_MS * 2 }, () => {
  it.each(thrown)('Fastify answers $name thrown by a handler with $status', async (expected) => {
    const app = fastifyApp();
    await app.register(bulwarkFastify);
    app.get('/x', async () => {
      throw expected.error();
    });
    await expectProblem(await fetch(`${await listen(app)}/x`), expected);
  });

  it.each(thrown)('Express answers $name with $status through bulwarkErrorHandler()', async (expected) => {
    const app = express();
    app.use(bulwarkExpress());
    app.get('/x', async () => {
      throw expected.error();
    });
    app.use(bulwarkErrorHandler());
    const { url, close } = await listenOnLoopback(createServer(app));
    closers.push(close);
    await expectProblem(await fetch(`${url}/x`), expected);
  });

  it.each(thrown)('bulwarkHttp() answers $name with $status', async (expected) => {
    const { url, close } = await listenOnLoopback(
      createServer(
        bulwarkHttp(async () => {
          throw expected.error();
        }),
      ),
    );
    closers.push(close);
    await expectProblem(await fetch(`${url}/x`), expected);
  });

  it("Fastify passes other errors to the application's error handler, and leaves them alone when errorHandler is false", async () => {
    const app = fastifyApp();
    app.setErrorHandler((_error, _request, reply) => reply.code(418).send({ mine: true }));
    await app.register(bulwarkFastify);
    app.get('/plain', async () => {
      throw new Error('boom');
    });
    app.get('/deadline', async () => {
      throw new DeadlineExceededError('deadline', 10);
    });
    const url = await listen(app);
    expect((await fetch(`${url}/plain`)).status).toBe(418);
    expect((await fetch(`${url}/deadline`)).status).toBe(504);

    const off = fastifyApp();
    await off.register(bulwarkFastify, { errorHandler: false } satisfies BulwarkFastifyOptions);
    off.setErrorHandler((error, _request, reply) => {
      if (bulwarkErrorReply(error, reply)) return reply;
      return reply.code(500).send({ own: true });
    });
    off.get('/deadline', async () => {
      throw new DeadlineExceededError('deadline', 10);
    });
    off.get('/plain', async () => {
      throw new Error('boom');
    });
    const offUrl = await listen(off);
    const mapped = await fetch(`${offUrl}/deadline`);
    expect(mapped.status).toBe(504);
    expect(mapped.headers.get('content-type')).toBe('application/problem+json');
    expect(await (await fetch(`${offUrl}/plain`)).json()).toEqual({ own: true });
  });

  it('every adapter sends problem+json refusals as application/problem+json exactly', async () => {
    // One bulkhead whose only slot the test holds: every request is shed.
    const full = bulkhead({ maxConcurrent: 1 });
    const held = full.tryAcquire();
    expect(held).toBeDefined();
    const fastify = fastifyApp();
    await fastify.register(bulwarkFastify, { bulkhead: full });
    fastify.get('/x', async () => 'ok');
    const shedF = await fetch(`${await listen(fastify)}/x`);
    const app = express();
    app.use(bulwarkExpress({ bulkhead: full }));
    const { url, close } = await listenOnLoopback(createServer(app));
    closers.push(close);
    const shedE = await fetch(`${url}/x`);
    for (const shed of [shedF, shedE]) {
      expect(shed.status).toBe(503);
      expect(shed.headers.get('content-type')).toBe('application/problem+json');
    }
    held!.release();
  });
});
