import { pipeline, wrapMethods } from '@bulwark/core';
import { deadline, timeout } from '@bulwark/deadline';
import { withQueryPolicy } from '@bulwark/postgres';
import pg from 'pg';
import { createClient } from 'redis';

// PostgreSQL: every query gets 2 s in all and 500 ms per attempt. A query still
// running when its time is up is cancelled on the server, not just abandoned.
// Both clients need an 'error' listener: without one, a lost connection crashes
// the process.
const pool = new pg.Pool({ max: 10 });
pool.on('error', (error) => console.error('postgres:', error.message));
export const db = withQueryPolicy(pool, pipeline(deadline(2_000), timeout(500)));
export const orders = await db.query('select id, total from orders where customer = $1', ['c-42']);

// Any client: run chosen async methods through a policy.
const client = createClient({ url: 'redis://127.0.0.1:6379' });
client.on('error', (error: Error) => console.error('redis:', error.message));
await client.connect();
export const cache = wrapMethods(client, timeout(50), {
  methods: ['get', 'set'],
  operation: (m) => `redis.${m}`,
});
await cache.set('greeting', 'hello');
