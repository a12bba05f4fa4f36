// Both server plugins on real sockets: a Fastify 5 and an Express 5 server on
// 127.0.0.1, called with fetch and node:http. Every wait is bounded and small.
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { type BulkheadPolicy, bulkhead } from '@bulwark/bulkhead';
import { isBulwarkError } from '@bulwark/core';
import { currentDeadline } from '@bulwark/deadline';
import { bulwarkExpress, idempotent } from '@bulwark/express';
import { bulwarkFastify } from '@bulwark/fastify';
import { memoryStore } from '@bulwark/idempotency';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenOnLoopback } from '../support/loopback.ts';

/** What the handlers saw, for the tests to check. */
interface Recorder {
  /** Requests to /hold wait for this; `open()` lets them finish. */
  gate: Promise<void>;
  open: () => void;
  executed: number;
  flaky: number;
  started: string[];
  aborts: Array<{ path: string; reason: unknown; afterMs: number }>;
}

interface Running {
  readonly url: string;
  readonly recorder: Recorder;
  readonly limiter: BulkheadPolicy;
  close(): Promise<void>;
}

function newRecorder(): Recorder {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { gate, open, executed: 0, flaky: 0, started: [], aborts: [] };
}

function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
  });
}

/** Waits for the handler of `path` to record an abort (at most 2 s). */
async function abortOf(recorder: Recorder, path: string) {
  for (let i = 0; i < 400; i++) {
    const found = recorder.aborts.find((a) => a.path === path);
    if (found !== undefined) return found;
    await sleep(5);
  }
  throw new Error(`no abort recorded for ${path}`);
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (condition()) return;
    await sleep(5);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The order handler's work: count it, wait `delayMs`, answer 201. */
async function placeOrder(recorder: Recorder, body: { delayMs?: number } | undefined) {
  recorder.executed++;
  const remaining = currentDeadline()?.remaining();
  await sleep(body?.delayMs ?? 0);
  return { id: recorder.executed, scoped: remaining !== undefined };
}

/** The wait handler: record when the signal aborts and why. */
async function waitForAbort(recorder: Recorder, path: string, signal: AbortSignal): Promise<boolean> {
  recorder.started.push(path);
  const start = performance.now();
  const reason = await aborted(signal);
  recorder.aborts.push({ path, reason, afterMs: performance.now() - start });
  return isBulwarkError(reason, 'ERR_DEADLINE_EXCEEDED');
}

async function startFastify(limit: number): Promise<Running> {
  const recorder = newRecorder();
  const limiter = bulkhead({ maxConcurrent: limit });
  // A connection the client aborted can keep close() waiting for seconds: end them all.
  const app = Fastify({ forceCloseConnections: true });
  await app.register(bulwarkFastify, { bulkhead: limiter });
  app.get('/wait/:id', async (request, reply) => {
    const timedOut = await waitForAbort(recorder, request.url, request.bulwark.signal);
    return reply.code(timedOut ? 504 : 499).send({ timedOut });
  });
  app.get('/hold', async () => {
    recorder.started.push('/hold');
    await recorder.gate;
    return 'held';
  });
  app.post('/orders', { config: { idempotency: { store: memoryStore() } } }, async (request, reply) =>
    reply.code(201).send(await placeOrder(recorder, request.body as { delayMs?: number })),
  );
  app.post('/flaky', { config: { idempotency: { store: memoryStore() } } }, async (_request, reply) => {
    if (++recorder.flaky === 1) throw new Error('the first attempt fails');
    return reply.code(201).send({ attempt: recorder.flaky });
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, recorder, limiter, close: () => app.close() };
}

async function startExpress(limit: number): Promise<Running> {
  const recorder = newRecorder();
  const limiter = bulkhead({ maxConcurrent: limit });
  const app = express();
  app.use(bulwarkExpress({ bulkhead: limiter }));
  app.use(express.json());
  app.get('/wait/:id', async (req, res) => {
    const timedOut = await waitForAbort(recorder, req.originalUrl, req.bulwark.signal);
    if (!res.destroyed) res.status(timedOut ? 504 : 499).json({ timedOut });
  });
  app.get('/hold', async (_req, res) => {
    recorder.started.push('/hold');
    await recorder.gate;
    res.send('held');
  });
  app.post('/orders', idempotent({ store: memoryStore() }), async (req, res) => {
    res.status(201).json(await placeOrder(recorder, req.body));
  });
  app.post('/flaky', idempotent({ store: memoryStore() }), async (_req, res) => {
    if (++recorder.flaky === 1) throw new Error('the first attempt fails');
    res.status(201).json({ attempt: recorder.flaky });
  });
  // Errors answer 500 quietly (Express's default handler would log the stack).
  app.use((_error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).json({ error: 'internal' });
  });
  const { url, close } = await listenOnLoopback(createServer(app));
  return {
    url,
    recorder,
    limiter,
    close,
  };
}

async function problemOf(response: Response) {
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  return (await response.json()) as { type: string; title: string; status: number; detail: string };
}

describe.each([
  ['fastify', startFastify],
  ['express', startExpress],
] as const)('%s server plugin on loopback', (_name, start) => {
  let server: Running;
  let tight: Running;
  beforeAll(async () => {
    server = await start(50);
    tight = await start(2);
  });
  afterAll(async () => {
    await Promise.all([server?.close(), tight?.close()]);
  });

  it("honours x-request-timeout-ms: the handler's signal fires at the deadline", async () => {
    // 400 ms leaves a loaded machine time to reach the handler before the deadline.
    const response = await fetch(`${server.url}/wait/deadline`, {
      headers: { 'x-request-timeout-ms': '400' },
    });
    // The plugin ends the request at its deadline, whatever the handler does.
    expect(response.status).toBe(504);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(((await response.json()) as { type: string }).type).toBe('urn:bulwark:deadline:expired');
    const abort = await abortOf(server.recorder, '/wait/deadline');
    expect(isBulwarkError(abort.reason, 'ERR_DEADLINE_EXCEEDED')).toBe(true);
    expect(abort.afterMs).toBeGreaterThan(0);
    expect(abort.afterMs).toBeLessThan(2_000);
  });

  it('answers 504 without running the handler when the deadline passed on arrival', async () => {
    for (const headers of [{ 'x-request-timeout-ms': '0' }, { 'grpc-timeout': '0n' }]) {
      const response = await fetch(`${server.url}/wait/expired`, { headers });
      expect(response.status).toBe(504);
      expect((await problemOf(response)).type).toBe('urn:bulwark:deadline:expired');
    }
    expect(server.recorder.started).not.toContain('/wait/expired');
  });

  it('answers 400 problem+json naming a malformed deadline or idempotency header', async () => {
    const deadlineCases: Array<[string, string]> = [
      ['grpc-timeout', '1000000000S'],
      ['x-request-timeout-ms', 'soon'],
      ['connect-timeout-ms', '1.5'],
      ['x-envoy-expected-rq-timeout-ms', '-5'],
    ];
    for (const [header, value] of deadlineCases) {
      const response = await fetch(`${server.url}/wait/malformed`, { headers: { [header]: value } });
      expect(response.status).toBe(400);
      expect((await problemOf(response)).title).toBe(`The ${header} header is malformed`);
    }
    const badKey = await fetch(`${server.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'two, keys' },
      body: '{}',
    });
    expect(badKey.status).toBe(400);
    expect((await problemOf(badKey)).title).toBe('The Idempotency-Key header is malformed');
    expect(server.recorder.started).not.toContain('/wait/malformed');
  });

  it('executes 10 concurrent duplicate POSTs with one key once; the rest get 409 or the replay', async () => {
    const before = server.recorder.executed;
    const post = () =>
      fetch(`${server.url}/orders`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': '"order-42"',
          'x-request-timeout-ms': '5000',
        },
        body: JSON.stringify({ sku: 'book', delayMs: 100 }),
      });
    const responses = await Promise.all(Array.from({ length: 10 }, post));
    expect(server.recorder.executed - before).toBe(1);
    const executed = responses.filter((r) => r.status === 201 && !r.headers.has('idempotent-replayed'));
    expect(executed).toHaveLength(1);
    const original = await executed[0]!.json();
    expect(original).toEqual({ id: before + 1, scoped: true });
    for (const r of responses) {
      if (r === executed[0]) continue;
      if (r.status === 409) expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      else {
        expect(r.status).toBe(201);
        expect(r.headers.get('idempotent-replayed')).toBe('true');
      }
      await r.body?.cancel();
    }
    const retry = await post();
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await retry.json()).toEqual(original);
    expect(server.recorder.executed - before).toBe(1);

    const reused = await fetch(`${server.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': '"order-42"' },
      body: JSON.stringify({ sku: 'pen' }),
    });
    expect(reused.status).toBe(422);
    await reused.body?.cancel();
  });

  it('releases the key when the handler throws, so the retry with the same key executes', async () => {
    const post = () =>
      fetch(`${server.url}/flaky`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': '"flaky-1"' },
        body: '{}',
      });
    const failed = await post();
    expect(failed.status).toBe(500);
    await failed.body?.cancel();
    const retried = await post();
    expect(retried.status).toBe(201);
    expect(await retried.json()).toEqual({ attempt: 2 });
    const replayed = await post();
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(await replayed.json()).toEqual({ attempt: 2 });
    expect(server.recorder.flaky).toBe(2);
  });

  it("aborts the handler's signal when the client disconnects, and frees its slot", async () => {
    const path = '/wait/disconnect';
    const { port } = new URL(tight.url);
    const client = httpRequest({ host: '127.0.0.1', port, path, method: 'GET' });
    client.on('error', () => {});
    client.end();
    await until(() => tight.recorder.started.includes(path), 'the handler to start');
    expect(tight.limiter.active).toBe(1);
    client.destroy();
    const abort = await abortOf(tight.recorder, path);
    expect(abort.reason).toBeInstanceOf(DOMException);
    expect((abort.reason as DOMException).name).toBe('AbortError');
    await until(() => tight.limiter.active === 0, 'the slot to be released');
  });

  it('sheds load with 503 and Retry-After when the bulkhead is full, and never leaks a slot', async () => {
    const held = [fetch(`${tight.url}/hold`), fetch(`${tight.url}/hold`)];
    await until(() => tight.recorder.started.filter((p) => p === '/hold').length === 2, 'two held requests');
    const shed = await Promise.all(Array.from({ length: 4 }, () => fetch(`${tight.url}/hold`)));
    for (const r of shed) {
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('1');
      expect((await problemOf(r)).type).toBe('urn:bulwark:server:overloaded');
    }
    expect(tight.limiter.active).toBe(2);
    tight.recorder.open();
    for (const r of await Promise.all(held)) {
      expect(r.status).toBe(200);
      expect(await r.text()).toBe('held');
    }
    await until(() => tight.limiter.active === 0, 'every slot to be released');
    const after = await fetch(`${tight.url}/hold`);
    expect(after.status).toBe(200);
    await after.text();
    await until(() => server.limiter.active === 0 && tight.limiter.active === 0, 'no slot held');
  });
});
