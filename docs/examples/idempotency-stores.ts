// Distributed stores: Redis (node-redis) and PostgreSQL (pg).
import { idempotency } from '@bulwark/idempotency';
import { postgresIdempotencyStore } from '@bulwark/postgres';
import { redisIdempotencyStore } from '@bulwark/redis';
import pg from 'pg';
import { createClient } from 'redis';

// Redis: short timeouts and no offline queue, so an outage fails fast (and closed).
const redis = await createClient({
  url: process.env.REDIS_URL,
  socket: { connectTimeout: 1_000 },
  disableOfflineQueue: true,
}).connect();
export const onRedis = idempotency({ store: redisIdempotencyStore(redis, { prefix: 'orders:idem:' }) });

// PostgreSQL: migrate() creates the table once; it is safe to run at every start.
const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  connectionTimeoutMillis: 1_000,
  query_timeout: 2_000,
});
const store = postgresIdempotencyStore(pool, { table: 'idempotency_records' });
await store.migrate();
export const onPostgres = idempotency({ store });
