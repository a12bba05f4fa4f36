// Idempotent routes on real Express 5 and Fastify 5 servers on 127.0.0.1: a
// reused key with a different body is refused (422), never replayed, whatever
// the content type, whichever body parsers ran, and in any mounting order.
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bulwarkExpress, idempotent } from '@bulwark/express';
import { bulwarkFastify } from '@bulwark/fastify';
import { formatIdempotencyKeyHeader, memoryStore } from '@bulwark/idempotency';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenOnLoopback } from '../support/loopback.ts';

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

let keys = 0;
function newKey(): string {
  return formatIdempotencyKeyHeader(`body-${process.pid}-${++keys}`);
}

/**
 * POSTs `body` with node:http: with a content-length, or chunked (in pieces of
 * at most 8 KiB) when `chunked`. Bounded by a 5 s timeout.
 */
function post(
  url: string,
  key: string,
  contentType: string | undefined,
  body: string | Buffer,
  chunked = false,
): Promise<Reply> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const headers: Record<string, string> = { 'idempotency-key': key };
  if (contentType !== undefined) headers['content-type'] = contentType;
  if (!chunked) headers['content-length'] = String(bytes.length);
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    if (chunked) for (let i = 0; i < bytes.length; i += 8_192) req.write(bytes.subarray(i, i + 8_192));
    req.end(chunked ? undefined : bytes);
  });
}

/** POSTs the first bytes of a chunked body and never the rest; resolves with the reply, then hangs up. */
function postStalled(url: string, key: string, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: 'POST',
        headers: { 'idempotency-key': key, 'content-type': 'text/plain', ...headers },
        timeout: 5_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() });
          req.destroy();
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    req.write('the first part of a body that never ends');
  });
}

/** Sends `first`, then `second` with the same key; returns both replies. */
async function reuse(
  url: string,
  first: [string | undefined, string | Buffer],
  second: [string | undefined, string | Buffer],
): Promise<[Reply, Reply]> {
  const key = newKey();
  const a = await post(url, key, ...first);
  const b = await post(url, key, ...second);
  return [a, b];
}

describe('Express idempotent() and bodies', () => {
  let base: string;
  let close: () => Promise<void>;
  const executed: Record<string, number> = {};
  const count = (route: string) => {
    executed[route] = (executed[route] ?? 0) + 1;
  };

  beforeAll(async () => {
    const app = express();
    app.use(bulwarkExpress());
    // Registered before the app-wide (strict) JSON parser. Both parsers before it: the same text as JSON and as plain text are two requests.
    app.post(
      '/parsed',
      express.json({ strict: false }),
      express.text(),
      idempotent({ store: memoryStore() }),
      (req, res) => {
        count('parsed');
        res.status(201).json({ got: req.body as unknown });
      },
    );
    app.use(express.json());
    // No parser for text/plain: the handler reads the stream itself.
    app.post('/raw', idempotent({ store: memoryStore() }), async (req, res) => {
      count('raw');
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      res.status(201).json({ got: Buffer.concat(chunks).toString() });
    });
    // Mounted before the parsers: the parsers after it still read the body.
    app.post(
      '/before',
      idempotent({ store: memoryStore() }),
      express.json(),
      express.text({ limit: '1mb' }),
      (req, res) => {
        count('before');
        res.status(201).json({ got: req.body as unknown });
      },
    );
    app.post('/small', idempotent({ store: memoryStore(), maxUnparsedBodyBytes: 16 }), (_req, res) => {
      count('small');
      res.status(201).send('ok');
    });
    // Something reads the body without setting req.body: refused, never fingerprinted as "no body".
    app.post(
      '/swallowed',
      async (req, _res, next) => {
        for await (const _ of req);
        next();
      },
      idempotent({ store: memoryStore() }),
      (_req, res) => {
        count('swallowed');
        res.status(201).send('ok');
      },
    );
    ({ url: base, close } = await listenOnLoopback(createServer(app)));
  });
  afterAll(() => close());

  it('refuses two text/plain bodies that no parser read with 422, and replays the same one', async () => {
    const [a, b] = await reuse(
      `${base}/raw`,
      ['text/plain', 'pay alice 10'],
      ['text/plain', 'pay mallory 10'],
    );
    expect(a.status).toBe(201);
    expect(JSON.parse(a.body)).toEqual({ got: 'pay alice 10' }); // the handler read the body put back
    expect(b.status).toBe(422);
    expect(JSON.parse(b.body).type).toBe('urn:bulwark:idempotency:key-reused');
    const key = newKey();
    await post(`${base}/raw`, key, 'text/plain', 'same');
    const replay = await post(`${base}/raw`, key, 'text/plain', 'same');
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(JSON.parse(replay.body)).toEqual({ got: 'same' });
    expect(executed.raw).toBe(2);
  });

  it('tells the same bytes under two content types apart', async () => {
    const [, b] = await reuse(`${base}/raw`, ['text/plain', '{}'], ['application/x-custom', '{}']);
    expect(b.status).toBe(422);
  });

  it('fingerprints the body when mounted before the parsers, which still parse it', async () => {
    const [a, b] = await reuse(
      `${base}/before`,
      ['application/json', '{"amount":1}'],
      ['application/json', '{"amount":2}'],
    );
    expect(a.status).toBe(201);
    expect(JSON.parse(a.body)).toEqual({ got: { amount: 1 } });
    expect(b.status).toBe(422);
    const key = newKey();
    const big = 'x'.repeat(200_000); // many chunks, sent chunked
    const first = await post(`${base}/before`, key, 'text/plain', big, true);
    expect(first.status).toBe(201);
    expect(JSON.parse(first.body).got).toHaveLength(200_000);
    const replay = await post(`${base}/before`, key, 'text/plain', big, true);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    const changed = await post(`${base}/before`, key, 'text/plain', `${big.slice(1)}y`, true);
    expect(changed.status).toBe(422);
    expect(executed.before).toBe(2);
  });

  it('tells JSON "abc" from the plain text abc after both parsers ran', async () => {
    const [a, b] = await reuse(`${base}/parsed`, ['application/json', '"abc"'], ['text/plain', 'abc']);
    expect(JSON.parse(a.body)).toEqual({ got: 'abc' });
    expect(b.status).toBe(422);
  });

  it('answers 413 without running the handler when an unparsed body exceeds maxUnparsedBodyBytes', async () => {
    const sized = await post(`${base}/small`, newKey(), 'text/plain', 'x'.repeat(17));
    expect(sized.status).toBe(413);
    expect(JSON.parse(sized.body).type).toBe('urn:bulwark:idempotency:body-too-large');
    const streamed = await post(`${base}/small`, newKey(), 'text/plain', 'x'.repeat(17), true);
    expect(streamed.status).toBe(413);
    expect(executed.small).toBeUndefined();
    expect((await post(`${base}/small`, newKey(), 'text/plain', 'x'.repeat(16))).status).toBe(201);
  });

  it('answers 504 without running the handler when the deadline passes while it reads the body', async () => {
    const before = executed.raw ?? 0;
    const started = performance.now();
    const reply = await postStalled(`${base}/raw`, newKey(), { 'x-request-timeout-ms': '150' });
    expect(reply.status).toBe(504);
    expect(JSON.parse(reply.body).type).toBe('urn:bulwark:deadline:expired');
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(executed.raw ?? 0).toBe(before);
  });

  it('rejects a bad maxUnparsedBodyBytes with the other option errors', () => {
    expect(() => idempotent({ store: memoryStore(), maxUnparsedBodyBytes: -1 })).toThrow(
      /maxUnparsedBodyBytes/,
    );
  });

  it('answers 500 problem+json naming the fix when the body was read but not parsed', async () => {
    const reply = await post(`${base}/swallowed`, newKey(), 'text/plain', 'abc');
    expect(reply.status).toBe(500);
    expect(reply.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(reply.body).detail).toMatch(/Mount the idempotency middleware before/);
    expect(executed.swallowed).toBeUndefined();
  });
});

describe('Fastify idempotency and bodies', () => {
  let app: FastifyInstance;
  let base: string;
  let executed = 0;

  beforeAll(async () => {
    app = Fastify({ forceCloseConnections: true });
    await app.register(bulwarkFastify, {});
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) =>
      done(null, body),
    );
    // A parser that hands the stream on: the body cannot be fingerprinted.
    app.addContentTypeParser('application/x-stream', (_req, payload, done) => done(null, payload));
    const config = { idempotency: { store: memoryStore() } };
    app.post('/any', { config }, async (request, reply) => {
      executed++;
      const body = request.body;
      return reply.code(201).send({ got: Buffer.isBuffer(body) ? body.toString('hex') : body });
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  afterAll(() => app.close());

  it('tells JSON "abc" from the plain text abc', async () => {
    const [a, b] = await reuse(`${base}/any`, ['application/json', '"abc"'], ['text/plain', 'abc']);
    expect(JSON.parse(a.body)).toEqual({ got: 'abc' });
    expect(b.status).toBe(422);
  });

  it('refuses two different buffered bodies with 422, and replays the same one', async () => {
    const octets = 'application/octet-stream';
    const [, b] = await reuse(`${base}/any`, [octets, Buffer.from([1, 2])], [octets, Buffer.from([1, 3])]);
    expect(b.status).toBe(422);
    const key = newKey();
    await post(`${base}/any`, key, octets, Buffer.from([9]));
    const replay = await post(`${base}/any`, key, octets, Buffer.from([9]));
    expect(replay.headers['idempotent-replayed']).toBe('true');
  });

  it('answers 500 without running the handler when the body is a stream no parser buffered', async () => {
    const before = executed;
    const reply = await post(`${base}/any`, newKey(), 'application/x-stream', 'abc');
    expect(reply.status).toBe(500);
    expect(executed).toBe(before);
  });
});
