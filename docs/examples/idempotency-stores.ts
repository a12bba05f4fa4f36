// Distributed stores: Redis (node-redis) and PostgreSQL (pg).
import { idempotency } from '@bulwark/idempotency';
import { postgresIdempotencyStore } from '@bulwark/postgres';
import { redisIdempotencyStore } from '@bulwark/redis';
import pg from 'pg';
import { createClient } from 'redis';

// Redis: short timeouts and no offline queue, so an outage fails fast (and closed).
const redis = createClient({
  url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  socket: { connectTimeout: 1_000 },
  disableOfflineQueue: true,
});
// Required: without an 'error' listener, a lost connection crashes the process.
// The client reconnects by itself; meanwhile the guard fails closed (503).
redis.on('error', (error: Error) => console.error('redis:', error.message));
await redis.connect();
export const onRedis = idempotency({ store: redisIdempotencyStore(redis, { prefix: 'orders:idem:' }) });

// PostgreSQL: migrate() creates the table once; it is safe to run at every start.
const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  connectionTimeoutMillis: 1_000,
  query_timeout: 2_000,
});
// Required too: the pool emits 'error' when an idle connection dies.
pool.on('error', (error) => console.error('postgres:', error.message));
const store = postgresIdempotencyStore(pool, { table: 'idempotency_records' });
await store.migrate();
export const onPostgres = idempotency({ store });
