// @bulwark/fetch calling the server plugins end to end, on 127.0.0.1: the
// deadline travels in x-request-timeout-ms, and an idempotent POST that is
// retried (after a 503, or after its attempt timed out) runs once.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { type BulkheadPermit, type BulkheadPolicy, bulkhead } from '@bulwark/bulkhead';
import { bulwarkExpress, idempotent } from '@bulwark/express';
import { bulwarkFastify } from '@bulwark/fastify';
import { createFetch } from '@bulwark/fetch';
import { memoryStore } from '@bulwark/idempotency';
import { constant } from '@bulwark/retry';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenOnLoopback } from '../support/loopback.ts';

/** What the server saw. */
interface Seen {
  budgets: Array<{ remaining: number; header: string | undefined }>;
  orders: Array<{ key: string | undefined; attempt: string | undefined }>;
  slowRuns: number;
  /** The x-retry-attempt of the run of /charges. */
  slowAttempt: string | undefined;
}

/** A bulkhead that sheds the next `shedNext` requests, then admits as usual. */
function sheddable(): { policy: BulkheadPolicy; real: BulkheadPolicy; shed(n: number): void } {
  const real = bulkhead({ maxConcurrent: 20 });
  let shedNext = 0;
  const policy = {
    tryAcquire(): BulkheadPermit | undefined {
      if (shedNext > 0) {
        shedNext--;
        return undefined;
      }
      return real.tryAcquire();
    },
  } as unknown as BulkheadPolicy;
  return { policy, real, shed: (n) => (shedNext = n) };
}

interface Running {
  readonly url: string;
  readonly seen: Seen;
  readonly limiter: ReturnType<typeof sheddable>;
  close(): Promise<void>;
}

const header = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

async function startFastify(): Promise<Running> {
  const seen: Seen = { budgets: [], orders: [], slowRuns: 0, slowAttempt: undefined };
  const limiter = sheddable();
  // A connection the client aborted can keep close() waiting for seconds: end them all.
  const app = Fastify({ forceCloseConnections: true });
  await app.register(bulwarkFastify, { bulkhead: limiter.policy, retryAfterSeconds: 0 });
  app.get('/budget', async (request) => {
    seen.budgets.push({ remaining: request.bulwark.remainingMs(), header: request.bulwark.deadlineHeader });
    return 'ok';
  });
  app.post('/orders', { config: { idempotency: { store: memoryStore() } } }, async (request, reply) => {
    seen.orders.push({
      key: request.bulwark.idempotencyKey,
      attempt: header(request.headers['x-retry-attempt']),
    });
    return reply.code(201).send({ order: seen.orders.length });
  });
  // Work that completes even when the caller stops waiting (the charge went out).
  app.post('/charges', { config: { idempotency: { store: memoryStore() } } }, async (request, reply) => {
    seen.slowRuns++;
    seen.slowAttempt = header(request.headers['x-retry-attempt']);
    await sleep(250);
    return reply.code(201).send({ charge: seen.slowRuns });
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen, limiter, close: () => app.close() };
}

async function startExpress(): Promise<Running> {
  const seen: Seen = { budgets: [], orders: [], slowRuns: 0, slowAttempt: undefined };
  const limiter = sheddable();
  const app = express();
  app.use(bulwarkExpress({ bulkhead: limiter.policy, retryAfterSeconds: 0 }));
  app.use(express.json());
  app.get('/budget', (req, res) => {
    seen.budgets.push({ remaining: req.bulwark.remainingMs(), header: req.bulwark.deadlineHeader });
    res.send('ok');
  });
  app.post('/orders', idempotent({ store: memoryStore() }), (req, res) => {
    seen.orders.push({ key: req.bulwark.idempotencyKey, attempt: req.get('x-retry-attempt') });
    res.status(201).json({ order: seen.orders.length });
  });
  app.post('/charges', idempotent({ store: memoryStore() }), async (req, res) => {
    seen.slowRuns++;
    seen.slowAttempt = req.get('x-retry-attempt');
    await sleep(250);
    res.status(201).json({ charge: seen.slowRuns });
  });
  const { url, close } = await listenOnLoopback(createServer(app));
  return {
    url,
    seen,
    limiter,
    close,
  };
}

describe.each([
  ['fastify', startFastify],
  ['express', startExpress],
] as const)('@bulwark/fetch against the %s plugin', (_name, start) => {
  let server: Running;
  beforeAll(async () => {
    server = await start();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('propagates the remaining deadline in x-request-timeout-ms', async () => {
    const fetch = createFetch({ deadlineMs: 400 });
    const response = await fetch(`${server.url}/budget`);
    expect(response.status).toBe(200);
    await response.text();
    const [seen] = server.seen.budgets;
    expect(seen?.header).toBe('x-request-timeout-ms');
    // 400 ms less the 10 ms safety margin and the trip so far.
    expect(seen?.remaining).toBeGreaterThan(0);
    expect(seen?.remaining).toBeLessThanOrEqual(390);
  });

  it('retries an idempotent POST shed with 503, with the same key, and the server runs it once', async () => {
    const fetch = createFetch({ idempotencyKeys: true, backoff: constant(10), deadlineMs: 5_000 });
    server.limiter.shed(1);
    const response = await fetch(`${server.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sku: 'book' }),
    });
    expect(response.status).toBe(201);
    expect(await response.json()).toEqual({ order: 1 });
    expect(server.seen.orders).toHaveLength(1);
    // The handler ran on the second attempt; the first was shed before it.
    expect(server.seen.orders[0]?.attempt).toBe('2');
    expect(server.seen.orders[0]?.key).toMatch(/^[0-9A-Z]{26}$/);
    expect(server.limiter.real.active).toBe(0);
  });

  it('retries a POST whose attempt timed out: 409 while it runs, then the stored response; it runs once', async () => {
    // Statuses as they came back, polls included.
    const statuses: number[] = [];
    const fetch = createFetch({
      idempotencyKeys: true,
      attemptTimeoutMs: 100,
      deadlineMs: 5_000,
      backoff: constant(10),
      fetch: async (input, init) => {
        const response = await globalThis.fetch(input, init);
        statuses.push(response.status);
        return response;
      },
    });
    const response = await fetch(`${server.url}/charges`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 5 }),
    });
    expect(response.status).toBe(201);
    // Replayed from the record the first attempt's run stored (unless a slow
    // machine kept that attempt from reaching the server at all).
    if (server.seen.slowAttempt === '1') {
      expect(statuses).toContain(409);
      expect(response.headers.get('idempotent-replayed')).toBe('true');
    }
    expect(await response.json()).toEqual({ charge: 1 });
    expect(server.seen.slowRuns).toBe(1);
    for (let i = 0; i < 100 && server.limiter.real.active > 0; i++) await sleep(5);
    expect(server.limiter.real.active).toBe(0);
  });
});
