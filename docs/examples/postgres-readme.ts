import { idempotency } from '@bulwark/idempotency';
import { postgresIdempotencyStore } from '@bulwark/postgres';
import pg from 'pg';

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  connectionTimeoutMillis: 1_000, // an outage fails fast, and the guard fails closed
  query_timeout: 2_000,
});
// Required: the pool emits 'error' when an idle connection dies (a server
// restart, a network cut); without a listener the process exits.
pool.on('error', (error) => console.error('postgres:', error.message));
const store = postgresIdempotencyStore(pool, { table: 'idempotency_records' });
await store.migrate(); // creates the table once; safe at every start, from many processes at once
export const guard = idempotency({ store });
