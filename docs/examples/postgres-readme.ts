import { idempotency } from '@bulwark/idempotency';
import { postgresIdempotencyStore } from '@bulwark/postgres';
import pg from 'pg';

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  connectionTimeoutMillis: 1_000, // an outage fails fast, and the guard fails closed
  query_timeout: 2_000,
});
const store = postgresIdempotencyStore(pool, { table: 'idempotency_records' });
await store.migrate(); // creates the table once; safe at every start, from many processes at once
export const guard = idempotency({ store });
