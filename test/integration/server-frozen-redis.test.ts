// A real Redis connection that stops answering (a loopback TCP proxy that drops
// every byte) behind the Fastify and Express adapters: a request with a 1 s
// inbound budget still gets its answer (504) at its deadline, with no
// storeTimeoutMs set, and gives its bulkhead slot back. Each request is bounded
// to 5 s; the proxy and every client are closed after each test.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type BulkheadPolicy, bulkhead } from '@bulwark/bulkhead';
import { bulwarkExpress, idempotent } from '@bulwark/express';
import { bulwarkFastify } from '@bulwark/fastify';
import { redisIdempotencyStore } from '@bulwark/redis';
import express from 'express';
import Fastify from 'fastify';
import { createClient } from 'redis';
import { afterEach, describe, expect, it } from 'vitest';
import { listenOnLoopback } from '../support/loopback.ts';
import { atPort, REDIS_URL, RUN_ID, redisAvailable } from './services.ts';
import { startProxy } from './tcp-proxy.ts';

const available = await redisAvailable();
const prefix = `bulwark:test:${RUN_ID}:frozen:`;
const BOUND_MS = 5_000;

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

/** A Redis client through a fresh proxy, with no command timeout of its own. */
async function proxiedRedis() {
  const server = new URL(REDIS_URL);
  const proxy = await startProxy(server.hostname, Number(server.port || 6379));
  cleanups.push(() => proxy.cut());
  const client = createClient({
    url: atPort(REDIS_URL, proxy.port),
    socket: { connectTimeout: 1_000, reconnectStrategy: false },
  });
  client.on('error', () => {});
  await client.connect();
  cleanups.push(async () => client.destroy());
  return { proxy, store: redisIdempotencyStore(client, { prefix }) };
}

async function fastifyApp(store: ReturnType<typeof redisIdempotencyStore>, limiter: BulkheadPolicy) {
  const app = Fastify({ forceCloseConnections: true });
  await app.register(bulwarkFastify, { bulkhead: limiter });
  app.post('/orders', { config: { idempotency: { store } } }, async (_request, reply) =>
    reply.code(201).send({ ok: true }),
  );
  await app.listen({ port: 0, host: '127.0.0.1' });
  cleanups.push(() => app.close());
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

async function expressApp(store: ReturnType<typeof redisIdempotencyStore>, limiter: BulkheadPolicy) {
  const app = express();
  app.use(bulwarkExpress({ bulkhead: limiter }));
  app.use(express.json());
  app.post('/orders', idempotent({ store }), (_req, res) => {
    res.status(201).json({ ok: true });
  });
  const { url, close } = await listenOnLoopback(createServer(app));
  cleanups.push(close);
  return url;
}

function post(url: string, key: string): Promise<Response> {
  return fetch(`${url}/orders`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'idempotency-key': `"${key}"`,
      'x-request-timeout-ms': '1000',
    },
    body: '{"sku":"book"}',
    signal: AbortSignal.timeout(BOUND_MS),
  });
}

describe.skipIf(!available)(
  'server adapters over a frozen Redis connection',
  { timeout: BOUND_MS * 3 },
  () => {
    it.each([
      ['Fastify', fastifyApp],
      ['Express', expressApp],
    ] as const)(
      '%s answers 504 within the 1 s inbound budget and gives the slot back',
      async (_name, start) => {
        const { proxy, store } = await proxiedRedis();
        const limiter = bulkhead({ maxConcurrent: 4 });
        const url = await start(store, limiter);
        expect((await post(url, `${RUN_ID}-${_name}-warm`)).status).toBe(201);
        proxy.freeze();
        const started = performance.now();
        const response = await post(url, `${RUN_ID}-${_name}-frozen`);
        const tookMs = performance.now() - started;
        expect(response.status).toBe(504);
        expect(response.headers.get('content-type')).toBe('application/problem+json');
        expect(tookMs).toBeGreaterThanOrEqual(900);
        expect(tookMs).toBeLessThan(2_500);
        expect(limiter.active).toBe(0);
      },
    );
  },
);
