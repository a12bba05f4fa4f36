import { isBulwarkError, pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { bulwarkExpress } from '@bulwark/express';
import { bulwarkFastify } from '@bulwark/fastify';
import { withQueryPolicy } from '@bulwark/postgres';
import express from 'express';
import Fastify from 'fastify';
import pg from 'pg';

const pool = new pg.Pool({ max: 10 });
pool.on('error', (error) => console.warn('idle PostgreSQL connection lost', error.message));
const db = withQueryPolicy(pool, pipeline(deadline(5_000)));

interface Order {
  id: string;
  total: number;
}

// Fastify: the request's signal aborts at its deadline or when the client goes
// away; either one cancels the query on the server.
const app = Fastify();
await app.register(bulwarkFastify);
app.get<{ Params: { id: string } }>('/orders/:id', async (request) => {
  const { rows } = await db.query<Order>('select id, total from orders where id = $1', [request.params.id], {
    signal: request.bulwark.signal,
  });
  return rows[0] ?? null;
});

// Express: the same signal is req.bulwark.signal.
const api = express();
api.use(bulwarkExpress());
api.get('/orders/:id', async (req, res) => {
  try {
    const { rows } = await db.query<Order>('select id, total from orders where id = $1', [req.params.id], {
      signal: req.bulwark.signal,
    });
    res.json(rows[0] ?? null);
  } catch (error) {
    // The connection broke mid-query: the query may or may not have run.
    if (isBulwarkError(error, 'ERR_CONNECTION_LOST')) res.status(503).end();
    else if (!res.headersSent) res.status(500).end();
  }
});

export { api, app };
