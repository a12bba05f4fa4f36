// A client that leaves stops the handler's PostgreSQL query: the request's
// signal (request.bulwark.signal, req.bulwark.signal) passed to
// withQueryPolicy's query cancels it on the server. Real Fastify and Express
// servers on loopback, real PostgreSQL; every wait is bounded.
import { createServer, request as httpRequest } from 'node:http';
import { pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { bulwarkExpress } from '@bulwark/express';
import { bulwarkFastify } from '@bulwark/fastify';
import { withQueryPolicy } from '@bulwark/postgres';
import express from 'express';
import Fastify from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_URL, postgresAvailable, RUN_ID, sleep } from '../integration/services.ts';
import { listenOnLoopback } from '../support/loopback.ts';

const available = await postgresAvailable();

type Ended = { readonly outcome: 'resolved' } | { readonly outcome: 'rejected'; readonly name: string };

describe.skipIf(!available)('a client disconnect cancels the handler’s query', () => {
  let pool: pg.Pool;
  let observer: pg.Pool;

  beforeAll(() => {
    pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    observer = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  });

  afterAll(async () => {
    await pool.end();
    await observer.end();
  });

  async function running(marker: string): Promise<number> {
    const { rows } = await observer.query(
      "select count(*)::int as n from pg_stat_activity where state = 'active' and query like $1 and pid <> pg_backend_pid()",
      [`%${marker}%`],
    );
    return (rows[0] as { n: number }).n;
  }

  async function until(marker: string, count: number): Promise<boolean> {
    for (let i = 0; i < 200; i++) {
      if ((await running(marker)) === count) return true;
      await sleep(25);
    }
    return false;
  }

  /** Sends GET `path` and destroys the request once the handler's query runs; resolves when the query ended on the server. */
  async function leaveMidQuery(url: string, marker: string): Promise<{ stoppedAfterMs: number }> {
    const req = httpRequest(`${url}/slow`);
    req.on('error', () => {}); // the client destroys its own request
    req.end();
    expect(await until(marker, 1)).toBe(true);
    const leftAt = performance.now();
    req.destroy();
    expect(await until(marker, 0)).toBe(true);
    return { stoppedAfterMs: performance.now() - leftAt };
  }

  // A 30 s deadline: only the disconnect can end pg_sleep(4) early.
  const db = () => withQueryPolicy(pool, pipeline(deadline(30_000)));

  it('Fastify: pg_sleep(4) stops on the server within a small bound after the client leaves', async () => {
    const marker = `bulwark_fastify_leave_${RUN_ID}`;
    let ended: (value: Ended) => void = () => {};
    const handlerEnded = new Promise<Ended>((resolve) => {
      ended = resolve;
    });
    const app = Fastify();
    await app.register(bulwarkFastify);
    const queries = db();
    app.get('/slow', async (request) => {
      try {
        await queries.query(`select pg_sleep(4) /* ${marker} */`, [], { signal: request.bulwark.signal });
        ended({ outcome: 'resolved' });
      } catch (error) {
        ended({ outcome: 'rejected', name: (error as Error).name });
        throw error;
      }
      return { done: true };
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const address = app.server.address() as { port: number };
      const { stoppedAfterMs } = await leaveMidQuery(`http://127.0.0.1:${address.port}`, marker);
      expect(stoppedAfterMs).toBeLessThan(1_500); // generous for CI; pg_sleep(4) would take 4,000
      expect(await handlerEnded).toEqual({ outcome: 'rejected', name: 'AbortError' });
    } finally {
      await app.close();
    }
  });

  it('Express: pg_sleep(4) stops on the server within a small bound after the client leaves', async () => {
    const marker = `bulwark_express_leave_${RUN_ID}`;
    let ended: (value: Ended) => void = () => {};
    const handlerEnded = new Promise<Ended>((resolve) => {
      ended = resolve;
    });
    const app = express();
    app.use(bulwarkExpress());
    const queries = db();
    app.get('/slow', async (req, res) => {
      try {
        await queries.query(`select pg_sleep(4) /* ${marker} */`, [], { signal: req.bulwark.signal });
        ended({ outcome: 'resolved' });
        res.json({ done: true });
      } catch (error) {
        ended({ outcome: 'rejected', name: (error as Error).name });
        if (!res.headersSent) res.status(499).end();
      }
    });
    const { url, close } = await listenOnLoopback(createServer(app));
    try {
      const { stoppedAfterMs } = await leaveMidQuery(url, marker);
      expect(stoppedAfterMs).toBeLessThan(1_500);
      expect(await handlerEnded).toEqual({ outcome: 'rejected', name: 'AbortError' });
    } finally {
      await close();
    }
  });
});
