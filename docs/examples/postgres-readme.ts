import { idempotency } from '@bulwark/idempotency';
import { postgresIdempotencyStore } from '@bulwark/postgres';
import pg from 'pg';

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  connectionTimeoutMillis: 1_000, // an outage fails fast, and the guard fails closed
  query_timeout: 2_000,
});
// pg reports a broken idle connection as an 'error' event on the pool: without a
// listener, that event would end the process.
pool.on('error', (error) => console.warn('idle PostgreSQL connection lost', error.message));
const store = postgresIdempotencyStore(pool, { table: 'idempotency_records' });
await store.migrate(); // creates the table once; safe at every start, from many processes at once
export const guard = idempotency({ store });
