// A request's deadline ends it in every phase, on all three adapters (node:http
// bulwarkHttp, Fastify, Express) on real sockets on 127.0.0.1: while its body is
// still arriving, in a slow hook or middleware, in a handler that ignores its
// signal, while the response is being written, and while the idempotency store
// does not answer. At the deadline the request gets 504 problem+json (or its
// connection closes, once the response had started) and its bulkhead slot goes
// back at once. Deadlines run on a VirtualClock: nothing sleeps; each test waits
// on events and is bounded to BOUND_MS.
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type BulkheadPolicy, bulkhead } from '@bulwark/bulkhead';
import { VirtualClock } from '@bulwark/clock';
import { bulwarkExpress, idempotent } from '@bulwark/express';
import { bulwarkFastify } from '@bulwark/fastify';
import { bulwarkHttp } from '@bulwark/http-server';
import type { BeginOutcome, BeginRequest, IdempotencyStore } from '@bulwark/idempotency';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { listenOnLoopback } from '../support/loopback.ts';

const BOUND_MS = 5_000;
const BUDGET = '300';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

/** A promise and the function that resolves it. */
function latch<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The connection closed before the response was complete. */
  readonly cut: boolean;
}

/**
 * A request whose body the test sends piece by piece; `answer` settles with
 * the response (or `cut: true` when the connection closes mid-response), and
 * rejects after BOUND_MS, so a request the server never ends fails the test.
 */
function open(url: string, path: string, method = 'POST', headers: Record<string, string> = {}) {
  const req = httpRequest(`${url}${path}`, {
    method,
    headers: { 'x-request-timeout-ms': BUDGET, 'content-type': 'application/json', ...headers },
  });
  const answer = new Promise<Answer>((resolve, reject) => {
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer within ${BOUND_MS} ms`));
    }, BOUND_MS);
    req.on('error', () => {
      clearTimeout(timer);
      resolve({ status: 0, headers: {}, body: '', cut: true });
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => {});
      res.on('close', () => {
        clearTimeout(timer);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
          cut: !res.complete,
        });
      });
    });
  });
  return {
    answer,
    write: (chunk: string) => req.write(chunk),
    end: (chunk?: string) => req.end(chunk),
    destroy: () => req.destroy(),
  };
}

/** Starts `server` on loopback and closes it after the test. */
async function serve(server: Server): Promise<string> {
  const { url, close } = await listenOnLoopback(server);
  closers.push(close);
  return url;
}

function expect504(answer: Answer): void {
  expect(answer.status).toBe(504);
  expect(answer.headers['content-type']).toBe('application/problem+json');
  expect(JSON.parse(answer.body).type).toBe('urn:bulwark:deadline:expired');
}

/** What a test needs from one adapter's server. */
interface Harness {
  readonly url: string;
  readonly limiter: BulkheadPolicy;
  readonly clock: VirtualClock;
  /** Resolves once a request reached the phase under test. */
  readonly reached: Promise<void>;
  /** Lets a stalled hook or handler go on (after the test has checked what it wanted). */
  release(): void;
}

type Phase = 'body' | 'hook' | 'handler' | 'write';

/** node:http: the handler reads the body itself, so "body" and "hook" are handler phases there. */
async function nodeServer(phase: Phase): Promise<Harness> {
  const clock = new VirtualClock();
  const limiter = bulkhead({ maxConcurrent: 1 });
  const reached = latch();
  const gate = latch();
  const handler = bulwarkHttp(
    async (req, res) => {
      reached.resolve();
      if (phase === 'body') for await (const _ of req);
      else if (phase === 'write') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
        await gate.promise;
      } else await gate.promise;
      if (!res.headersSent) res.end('late');
    },
    { bulkhead: limiter, clock },
  );
  const url = await serve(createServer(handler));
  return { url, limiter, clock, reached: reached.promise, release: gate.resolve };
}

async function fastifyServer(phase: Phase): Promise<Harness> {
  const clock = new VirtualClock();
  const limiter = bulkhead({ maxConcurrent: 1 });
  const reached = latch();
  const gate = latch();
  const app = Fastify({ forceCloseConnections: true });
  await app.register(bulwarkFastify, { bulkhead: limiter, clock });
  if (phase === 'body') app.addHook('preParsing', async () => reached.resolve());
  app.post(
    '/x',
    {
      preHandler: async () => {
        if (phase !== 'hook') return;
        reached.resolve();
        await gate.promise;
      },
    },
    async (_request, reply) => {
      if (phase === 'handler') {
        reached.resolve();
        await gate.promise;
      }
      if (phase === 'write') {
        reply.hijack();
        reply.raw.writeHead(200, { 'content-type': 'text/plain' });
        reply.raw.write('partial');
        reached.resolve();
        await gate.promise;
        reply.raw.end();
        return reply;
      }
      return 'late';
    },
  );
  await app.listen({ port: 0, host: '127.0.0.1' });
  closers.push(() => app.close());
  const { port } = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, limiter, clock, reached: reached.promise, release: gate.resolve };
}

async function expressServer(phase: Phase): Promise<Harness> {
  const clock = new VirtualClock();
  const limiter = bulkhead({ maxConcurrent: 1 });
  const reached = latch();
  const gate = latch();
  const app = express();
  app.use(bulwarkExpress({ bulkhead: limiter, clock }));
  app.use((_req, _res, next) => {
    if (phase === 'body') reached.resolve();
    next();
  });
  app.use(express.json());
  app.use(async (_req, _res, next) => {
    if (phase === 'hook') {
      reached.resolve();
      await gate.promise;
    }
    next();
  });
  app.post('/x', async (_req, res) => {
    if (phase === 'write') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
    }
    reached.resolve();
    if (phase === 'handler' || phase === 'write') await gate.promise;
    if (!res.headersSent) res.json('late');
    else if (!res.writableEnded) res.end();
  });
  const url = await serve(createServer(app));
  return { url, limiter, clock, reached: reached.promise, release: gate.resolve };
}

const adapters = [
  ['bulwarkHttp (node:http)', nodeServer],
  ['Fastify', fastifyServer],
  ['Express', expressServer],
] as const;

describe.each(adapters)(
  '%s: the deadline ends the request in every phase',
  { timeout: BOUND_MS * 2 },
  (_name, start) => {
    it('answers 504 and gives the slot back while the request body is still arriving', async () => {
      const server = await start('body');
      const slow = open(server.url, '/x', 'POST', { 'content-length': '1000' });
      slow.write('{"a":');
      await server.reached;
      expect(server.limiter.active).toBe(1);
      await server.clock.advance(301);
      // The body never finished: the answer comes from the deadline alone.
      const answer = await slow.answer;
      expect504(answer);
      expect(answer.headers.connection).toBe('close');
      expect(server.limiter.active).toBe(0);
      slow.destroy();
      server.release();
    });

    it('answers 504 and gives the slot back while a hook or middleware is still running', async () => {
      const server = await start('hook');
      const slow = open(server.url, '/x');
      slow.end('{}');
      await server.reached;
      await server.clock.advance(301);
      expect504(await slow.answer);
      expect(server.limiter.active).toBe(0);
      server.release();
    });

    it('answers 504 and gives the slot back when the handler ignores its aborted signal', async () => {
      const server = await start('handler');
      const slow = open(server.url, '/x');
      slow.end('{}');
      await server.reached;
      await server.clock.advance(301);
      expect504(await slow.answer);
      expect(server.limiter.active).toBe(0);
      // The handler going on later neither crashes the server nor takes a slot.
      server.release();
      const next = open(server.url, '/x');
      next.end('{}');
      await server.clock.advance(301);
      expect([200, 504]).toContain((await next.answer).status);
      expect(server.limiter.active).toBe(0);
    });

    it('closes the connection and gives the slot back when the response had started', async () => {
      const server = await start('write');
      const slow = open(server.url, '/x');
      slow.end('{}');
      await server.reached;
      await server.clock.advance(301);
      const answer = await slow.answer;
      expect(answer.status).toBe(200);
      expect(answer.cut).toBe(true);
      expect(server.limiter.active).toBe(0);
      server.release();
    });
  },
);

/** A store whose calls wait until the test settles them, and that records releases. */
function heldStore() {
  const begins: Array<{ request: BeginRequest; settle: (outcome: BeginOutcome) => void }> = [];
  const completes: Array<() => void> = [];
  const released: string[] = [];
  const store: IdempotencyStore = {
    begin: (request) =>
      new Promise<BeginOutcome>((resolve) => {
        begins.push({ request, settle: resolve });
      }),
    complete: () =>
      new Promise<boolean>((resolve) => {
        completes.push(() => resolve(true));
      }),
    release: async (_key, token) => {
      released.push(token);
      return true;
    },
    renew: async () => true,
  };
  return { store, begins, completes, released };
}

/** Waits until `check` holds, polling the event loop (bounded by the test's timeout). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setImmediate(r));
}

async function idempotentServer(kind: 'Fastify' | 'Express', store: IdempotencyStore, ran: string[]) {
  const clock = new VirtualClock();
  const limiter = bulkhead({ maxConcurrent: 1 });
  if (kind === 'Fastify') {
    const app = Fastify({ forceCloseConnections: true });
    await app.register(bulwarkFastify, { bulkhead: limiter, clock });
    app.post('/orders', { config: { idempotency: { store } } }, async (_request, reply) => {
      ran.push('order');
      return reply.code(201).send({ order: ran.length });
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => app.close());
    const { port } = app.server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, clock, limiter };
  }
  const app = express();
  app.use(bulwarkExpress({ bulkhead: limiter, clock }));
  app.use(express.json());
  app.post('/orders', idempotent({ store }), (_req, res) => {
    ran.push('order');
    res.status(201).json({ order: ran.length });
  });
  return { url: await serve(createServer(app)), clock, limiter };
}

describe.each(['Fastify', 'Express'] as const)(
  '%s: a store that does not answer',
  { timeout: BOUND_MS * 2 },
  (kind) => {
    it('answers 504 at the deadline while the key is being taken, and releases a key granted later', async () => {
      const held = heldStore();
      const ran: string[] = [];
      const server = await idempotentServer(kind, held.store, ran);
      const request = open(server.url, '/orders', 'POST', { 'idempotency-key': '"k1"' });
      request.end('{"sku":"book"}');
      await until(() => held.begins.length === 1);
      await server.clock.advance(301);
      expect504(await request.answer);
      expect(server.limiter.active).toBe(0);
      // The store answers at last: the key it granted is given back, and nothing runs.
      held.begins[0]!.settle({ status: 'acquired' });
      await until(() => held.released.length === 1);
      expect(held.released).toEqual([held.begins[0]!.request.token]);
      expect(ran).toEqual([]);
    });

    it("sends the handler's answer at the deadline while its record is still being written", async () => {
      const held = heldStore();
      const ran: string[] = [];
      const server = await idempotentServer(kind, held.store, ran);
      const request = open(server.url, '/orders', 'POST', { 'idempotency-key': '"k2"' });
      request.end('{"sku":"book"}');
      await until(() => held.begins.length === 1);
      held.begins[0]!.settle({ status: 'acquired' });
      await until(() => held.completes.length === 1);
      await server.clock.advance(301);
      const answer = await request.answer;
      expect(answer.status).toBe(201);
      expect(JSON.parse(answer.body)).toEqual({ order: 1 });
      expect(server.limiter.active).toBe(0);
      held.completes[0]!();
    });
  },
);
