// The inbound rate limit of every server adapter (Fastify, Express, node:http)
// on real sockets on 127.0.0.1: 429 with Retry-After over the limit, the IETF
// RateLimit-Policy and RateLimit fields on every answer, keys, and a shared
// store that cannot decide. The limit runs on a VirtualClock, so counts are exact.
import { createServer } from 'node:http';
import { VirtualClock } from '@bulwark/clock';
import { InvalidOptionsError } from '@bulwark/core';
import { bulwarkExpress } from '@bulwark/express';
import { bulwarkFastify } from '@bulwark/fastify';
import { type BulwarkServerOptions, bulwarkHttp } from '@bulwark/http-server';
import { type RateLimitStore, RateLimitStoreError, rateLimit } from '@bulwark/rate-limit';
import express from 'express';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { listenOnLoopback } from '../support/loopback.ts';

interface Running {
  readonly url: string;
  /** How many times the handler ran. */
  readonly ran: () => number;
  close(): Promise<void>;
}

type Start = (options: BulwarkServerOptions) => Promise<Running>;

const adapters: Record<string, Start> = {
  fastify: async (options) => {
    let ran = 0;
    const app = Fastify();
    await app.register(bulwarkFastify, options);
    app.get('/', async () => {
      ran++;
      return 'ok';
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as { port: number };
    return { url: `http://127.0.0.1:${port}`, ran: () => ran, close: () => app.close() };
  },
  express: async (options) => {
    let ran = 0;
    const app = express();
    app.use(bulwarkExpress(options));
    app.get('/', (_req, res) => {
      ran++;
      res.send('ok');
    });
    const { url, close } = await listenOnLoopback(createServer(app));
    return { url, ran: () => ran, close };
  },
  'node:http': async (options) => {
    let ran = 0;
    const handler = bulwarkHttp((_req, res) => {
      ran++;
      res.end('ok');
    }, options);
    const { url, close } = await listenOnLoopback(createServer(handler));
    return { url, ran: () => ran, close };
  },
};

/** A store whose every decision fails as a shared store's would, or admits blindly (fail-open). */
function brokenStore(failMode: 'fail-open' | 'fail-closed'): RateLimitStore {
  return {
    take: async (key) => {
      if (failMode === 'fail-closed') throw new RateLimitStoreError('unavailable', key, 'connection refused');
      return { allowed: true, delayMs: 0, retryAfterMs: 0, remaining: 0, resetMs: 0 };
    },
  };
}

for (const [name, start] of Object.entries(adapters)) {
  describe(`${name}: inbound rate limit`, () => {
    it('answers 429 with Retry-After over the limit, without running the handler, and sends the RateLimit fields', async () => {
      const clock = new VirtualClock();
      const limit = rateLimit({ ratePerSecond: 0.5, burst: 2, clock });
      const server = await start({ rateLimit: { limit, name: 'api' } });
      try {
        const first = await fetch(server.url);
        expect(first.status).toBe(200);
        expect(first.headers.get('ratelimit-policy')).toBe('api;q=2;w=4');
        expect(first.headers.get('ratelimit')).toBe('api;r=1;t=2');
        const second = await fetch(server.url);
        expect(second.status).toBe(200);
        expect(second.headers.get('ratelimit')).toBe('api;r=0;t=4');
        const third = await fetch(server.url);
        expect(third.status).toBe(429);
        expect(third.headers.get('retry-after')).toBe('2');
        expect(third.headers.get('ratelimit')).toBe('api;r=0;t=4');
        expect(third.headers.get('ratelimit-policy')).toBe('api;q=2;w=4');
        expect(third.headers.get('content-type')).toBe('application/problem+json');
        expect(await third.json()).toMatchObject({ status: 429, type: 'urn:bulwark:server:rate-limited' });
        expect(server.ran()).toBe(2);
        await clock.advance(2_000);
        expect((await fetch(server.url)).status).toBe(200);
        expect(server.ran()).toBe(3);
      } finally {
        await server.close();
      }
    });

    it('counts each key apart', async () => {
      const limit = rateLimit({ ratePerSecond: 0.5, burst: 1, clock: new VirtualClock() });
      const server = await start({
        rateLimit: { limit, key: (req) => String(req.headers['x-tenant'] ?? 'anonymous') },
      });
      try {
        const as = (tenant: string) =>
          fetch(server.url, { headers: { 'x-tenant': tenant } }).then((r) => r.status);
        expect([await as('a'), await as('a'), await as('b'), await as('b')]).toEqual([200, 429, 200, 429]);
      } finally {
        await server.close();
      }
    });

    it('answers 503 when a shared store cannot decide and fails closed, and serves when it fails open', async () => {
      const closed = await start({
        rateLimit: { limit: rateLimit({ ratePerSecond: 1, burst: 1, store: brokenStore('fail-closed') }) },
      });
      try {
        const response = await fetch(closed.url);
        expect(response.status).toBe(503);
        expect(response.headers.get('retry-after')).toBe('1');
        expect(closed.ran()).toBe(0);
      } finally {
        await closed.close();
      }
      const open = await start({
        rateLimit: { limit: rateLimit({ ratePerSecond: 1, burst: 1, store: brokenStore('fail-open') }) },
      });
      try {
        expect((await fetch(open.url)).status).toBe(200);
        expect(open.ran()).toBe(1);
      } finally {
        await open.close();
      }
    });
  });
}

describe('the rateLimit server option', () => {
  it('lists every invalid field at once', () => {
    let error: unknown;
    try {
      bulwarkExpress({
        rateLimit: { limit: {} as never, key: 'ip' as never, name: 'two words', keys: 1 } as never,
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).violations.map((v) => v.option)).toEqual([
      'rateLimit.keys',
      'rateLimit.limit',
      'rateLimit.key',
      'rateLimit.name',
    ]);
  });
});
