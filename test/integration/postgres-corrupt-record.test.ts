// A completed record without a payload was changed outside bulwark: the
// PostgreSQL store fails closed with a store error naming the key, rather than
// replaying nothing or blaming the user's codec.
import { defaultFingerprint } from '@bulwark/idempotency';
import { postgresIdempotencyStore } from '@bulwark/postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectCorruptRecordFailsClosed } from './corrupt-record.ts';
import { DATABASE_URL, postgresAvailable, RUN_ID } from './services.ts';

const available = await postgresAvailable();
const table = `bulwark_corrupt_${RUN_ID}`;

describe.skipIf(!available)('PostgreSQL store, a completed record with a NULL payload', () => {
  let pool: pg.Pool;
  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2, connectionTimeoutMillis: 2_000 });
    await postgresIdempotencyStore(pool, { table }).migrate();
  });
  afterAll(async () => {
    if (pool === undefined) return;
    await pool.query(`DROP TABLE IF EXISTS "${table}"`);
    await pool.end();
  });

  it('fails closed with ERR_STORE_UNAVAILABLE naming the key, never running fn or calling the codec', async () => {
    await pool.query(
      `INSERT INTO "${table}" (key, fingerprint, state, owner, payload, lease_until, expires_at)
       VALUES ($1, $2, 'completed', NULL, NULL, NULL, now() + interval '1 hour')`,
      ['order-7', defaultFingerprint('request')],
    );
    await expectCorruptRecordFailsClosed(
      postgresIdempotencyStore(pool, { table }),
      /completed record for key "order-7" in table .* has a NULL payload/,
    );
    // The row is left as it was, for an operator to inspect.
    const { rows } = await pool.query(`SELECT state, payload FROM "${table}" WHERE key = $1`, ['order-7']);
    expect(rows).toEqual([{ state: 'completed', payload: null }]);
  });
});
