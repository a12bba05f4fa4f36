// A completed record without a payload was changed outside bulwark: the
// PostgreSQL store fails closed with a store error naming the key, rather than
// replaying nothing or blaming the user's codec.
import { isBulwarkError } from '@bulwark/core';
import { defaultFingerprint, idempotency, StoreUnavailableError } from '@bulwark/idempotency';
import { postgresIdempotencyStore } from '@bulwark/postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    let ran = false;
    let decoded = false;
    const guard = idempotency<string>({
      store: postgresIdempotencyStore(pool, { table }),
      codec: {
        encode: (value) => JSON.stringify(value),
        decode: (text) => {
          decoded = true;
          return JSON.parse(text);
        },
      },
    });
    const error = await guard
      .run('order-7', 'request', () => {
        ran = true;
        return 'charged';
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(isBulwarkError(error, 'ERR_CALLBACK_FAILED')).toBe(false);
    expect((error as StoreUnavailableError).operation).toBe('begin');
    expect((error as Error).message).toMatch(
      /completed record for key "order-7" in table .* has a NULL payload/,
    );
    expect(ran).toBe(false);
    expect(decoded).toBe(false);
    // The row is left as it was, for an operator to inspect.
    const { rows } = await pool.query(`SELECT state, payload FROM "${table}" WHERE key = $1`, ['order-7']);
    expect(rows).toEqual([{ state: 'completed', payload: null }]);
  });
});
