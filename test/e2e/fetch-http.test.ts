import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { BrokenCircuitError } from '@bulwark/circuit-breaker';
import { DeadlineExceededError } from '@bulwark/core';
import { type CreateFetchOptions, createFetch } from '@bulwark/fetch';
import { constant } from '@bulwark/retry';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

// Real node:http servers on loopback, called through the real global fetch.
// Every wait is tens of milliseconds, except the one-second delta-seconds
// Retry-After, and every server is closed even when a test fails.

interface Seen {
  readonly method: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  /** Which connection carried the request: 1 for the server's first, 2 for its second, … */
  readonly socket: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

interface TestServer {
  readonly url: string;
  readonly seen: Seen[];
  /** Connections open now, by number (1 for the server's first). */
  readonly open: Set<number>;
  /** Responses whose connection closed before they were finished, by request number. */
  readonly cutOff: number[];
  close(): Promise<void>;
}

const servers = new Set<Server>();

async function serve(handler: Handler): Promise<TestServer> {
  const seen: Seen[] = [];
  const open = new Set<number>();
  const cutOff: number[] = [];
  const ids = new WeakMap<Socket, number>();
  let sockets = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.push({
        method: req.method!,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
        socket: ids.get(req.socket)!,
      });
      const n = seen.length;
      res.on('close', () => {
        if (!res.writableFinished) cutOff.push(n);
      });
      handler(req, res, n);
    });
  });
  server.keepAliveTimeout = 5_000;
  server.on('connection', (socket: Socket) => {
    const id = ++sockets;
    ids.set(socket, id);
    open.add(id);
    socket.on('close', () => open.delete(id));
  });
  servers.add(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    open,
    cutOff,
    async close() {
      if (!servers.delete(server)) return;
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

let current: TestServer | undefined;
async function start(handler: Handler): Promise<TestServer> {
  current = await serve(handler);
  return current;
}

afterEach(async () => {
  await current?.close();
  current = undefined;
});

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
  servers.clear();
});

/** A fetch with tiny waits, so the suite stays fast. */
function client(options: CreateFetchOptions = {}) {
  return createFetch({ backoff: constant(10), attemptTimeoutMs: 2_000, deadlineMs: 5_000, ...options });
}

/** Resolves when `check` holds, polling every few milliseconds for at most `ms`. */
async function eventually(check: () => boolean, ms = 2_000): Promise<void> {
  const until = performance.now() + ms;
  while (!check()) {
    if (performance.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('@bulwark/fetch against real HTTP servers on loopback', () => {
  it('retries a connection the server resets, and returns the next answer', async () => {
    const server = await start((req, res, n) => {
      if (n === 1) req.socket.destroy();
      else res.end('ok');
    });
    const response = await client()(`${server.url}/reset`);
    expect(await response.text()).toBe('ok');
    expect(server.seen).toHaveLength(2);
    expect(server.seen[1]!.headers['x-retry-attempt']).toBe('2');
  });

  it('retries a refused connection and rethrows fetch’s own error when the attempts run out', async () => {
    const server = await start((_, res) => res.end());
    const url = server.url;
    await server.close();
    const fetch = client();
    const attempts: number[] = [];
    fetch.retry.onRetry(({ attempt }) => attempts.push(attempt));
    const error = await fetch(`${url}/gone`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as TypeError).message).toBe('fetch failed');
    expect(attempts).toEqual([1, 2]);
  });

  it('times out a hanging response, closes that request, and returns the retry’s answer', async () => {
    const server = await start((_, res, n) => {
      if (n > 1) res.end('late but fine');
    });
    const response = await client({ attemptTimeoutMs: 80 })(`${server.url}/hang`);
    expect(await response.text()).toBe('late but fine');
    expect(server.seen).toHaveLength(2);
    await eventually(() => server.cutOff.includes(1));
  });

  it('errors a slow body with DeadlineExceededError when the deadline passes mid-read', async () => {
    const server = await start((_, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first chunk ');
      // …and the rest never comes.
    });
    const started = performance.now();
    const response = await client({ deadlineMs: 150, attemptTimeoutMs: 150 })(`${server.url}/slow`);
    expect(response.status).toBe(200);
    const error = await response.text().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect((error as DeadlineExceededError).source).toBe('deadline');
    expect(performance.now() - started).toBeLessThan(2_000);
    await eventually(() => server.cutOff.includes(1));
  });

  it('honours a delta-seconds Retry-After on a 503', async () => {
    const server = await start((_, res, n) => {
      if (n === 1) res.writeHead(503, { 'retry-after': '1' }).end('busy');
      else res.end('ok');
    });
    const started = performance.now();
    const response = await client()(`${server.url}/retry-after`);
    expect(await response.text()).toBe('ok');
    expect(performance.now() - started).toBeGreaterThanOrEqual(990);
    expect(server.seen).toHaveLength(2);
  });

  it('honours an HTTP-date Retry-After on a 503, converted with one wall-clock reading', async () => {
    const date = 'Sat, 05 Dec 2026 17:00:00 GMT';
    const server = await start((_, res, n) => {
      if (n === 1) res.writeHead(503, { 'retry-after': date }).end('busy');
      else res.end('ok');
    });
    // The server's date is 120 ms ahead of our wall clock.
    const fetch = client({ wallClock: () => Date.parse(date) - 120 });
    const delays: number[] = [];
    fetch.retry.onRetry(({ delayMs }) => delays.push(delayMs));
    const started = performance.now();
    const response = await fetch(`${server.url}/retry-date`);
    expect(await response.text()).toBe('ok');
    expect(delays).toEqual([120]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);
  });

  it('retries a POST only when it carries an Idempotency-Key, and keeps an added key across attempts', async () => {
    const server = await start((_, res, n) => {
      // Every odd request is answered 503, every even one 201.
      if (n % 2 === 1) res.writeHead(503).end('busy');
      else res.writeHead(201).end('created');
    });
    const fetch = client();
    const bare = await fetch(`${server.url}/orders`, { method: 'POST', body: 'a' });
    expect(bare.status).toBe(503);
    await bare.arrayBuffer();
    expect(server.seen).toHaveLength(1);

    // Request 2 gets a 201 at once; make the count odd again first.
    await (await fetch(`${server.url}/align`)).arrayBuffer();
    const keyed = await fetch(`${server.url}/orders`, {
      method: 'POST',
      body: 'b',
      headers: { 'Idempotency-Key': '"order-b"' },
    });
    expect(keyed.status).toBe(201);
    expect(server.seen.slice(2).map((s) => [s.body, s.headers['idempotency-key']])).toEqual([
      ['b', '"order-b"'],
      ['b', '"order-b"'],
    ]);

    const auto = await client({ idempotencyKeys: true })(`${server.url}/orders`, {
      method: 'POST',
      body: 'c',
    });
    expect(auto.status).toBe(201);
    const [first, second] = server.seen.slice(4);
    expect(first!.headers['idempotency-key']).toMatch(/^"[0-9A-Z]{26}"$/);
    expect(second!.headers['idempotency-key']).toBe(first!.headers['idempotency-key']);
    expect(second!.body).toBe('c');
  });

  it('drains a short discarded body, so the retry reuses the connection', async () => {
    const server = await start((_, res, n) => {
      if (n === 1) res.writeHead(503, { 'content-length': '4' }).end('busy');
      else res.end('ok');
    });
    const response = await client()(`${server.url}/drain`);
    expect(await response.text()).toBe('ok');
    expect(server.seen.map((s) => s.socket)).toEqual([1, 1]);
    expect(server.cutOff).toEqual([]);
  });

  it('cancels an unbounded discarded body, closing its connection instead of leaking it', async () => {
    const server = await start((_, res, n) => {
      if (n % 2 === 1) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.write('an endless apology… ');
      } else res.end('ok');
    });
    const fetch = client();
    for (let i = 0; i < 5; i++) expect(await (await fetch(`${server.url}/cancel`)).text()).toBe('ok');
    // Each discarded 503 was cut off and its connection closed, while the
    // connection that carried the answers stays open for reuse: the open
    // connections do not grow with the number of calls.
    await eventually(() => server.cutOff.length === 5);
    expect(server.cutOff).toEqual([1, 3, 5, 7, 9]);
    const discarded = new Set(server.seen.filter((_, i) => i % 2 === 0).map((s) => s.socket));
    expect(discarded.size).toBe(5);
    await eventually(() => [...discarded].every((id) => !server.open.has(id)));
    expect(server.open.size).toBeLessThanOrEqual(2);
  });

  it('opens the origin’s breaker after repeated 500s, and stops calling it', async () => {
    const server = await start((_, res) => res.writeHead(500).end('broken'));
    const fetch = client({ breakers: { openMs: 60_000 } });
    for (let i = 0; i < 5; i++) {
      const response = await fetch(`${server.url}/broken`);
      expect([response.status, await response.text()]).toEqual([500, 'broken']);
    }
    const refused = await fetch(`${server.url}/broken`).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BrokenCircuitError);
    expect(server.seen).toHaveLength(5);
  });

  it('sends the time left and the attempt number on every attempt', async () => {
    const server = await start((_, res, n) => {
      if (n === 1) res.writeHead(502).end();
      else res.end('ok');
    });
    await (await client({ attemptTimeoutMs: 1_000, safetyMarginMs: 20 })(`${server.url}/headers`)).text();
    const [first, second] = server.seen;
    expect([first!.headers['x-retry-attempt'], second!.headers['x-retry-attempt']]).toEqual(['1', '2']);
    for (const seen of [first!, second!]) {
      const ms = Number(seen.headers['x-request-timeout-ms']);
      expect(ms).toBeGreaterThan(0);
      expect(ms).toBeLessThanOrEqual(980);
    }
  });
});
