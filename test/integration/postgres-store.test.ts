import { idempotency } from '@bulwark/idempotency';
import { postgresIdempotencyStore } from '@bulwark/postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeStoreConformance } from '../idempotency/conformance.ts';
import { describeOwnerProcesses } from './owner-process.ts';
import { DATABASE_URL, postgresAvailable, REAL_TIME_CONFORMANCE, RUN_ID, sleep } from './services.ts';
import { storeOutageTests } from './store-outages.ts';

const available = await postgresAvailable();
const table = `bulwark_idem_${RUN_ID}`.toLowerCase();
let seq = 0;
const key = (name: string) => `${name}-${++seq}`;

function poolFor(connectionString: string, max = 10, queryTimeout = true): pg.Pool {
  // Short timeouts: an unreachable server fails fast.
  const pool = new pg.Pool({
    connectionString,
    max,
    connectionTimeoutMillis: 1_000,
    query_timeout: queryTimeout ? 2_000 : undefined,
  });
  pool.on('error', () => {});
  return pool;
}

describe.skipIf(!available)('PostgreSQL idempotency store', () => {
  let pool: pg.Pool;
  beforeAll(async () => {
    pool = poolFor(DATABASE_URL);
    await postgresIdempotencyStore(pool, { table }).migrate();
  });
  afterAll(async () => {
    if (pool === undefined) return;
    await pool.query(`DROP TABLE IF EXISTS "${table}"`);
    await pool.end();
  });

  describeStoreConformance('postgres', () => ({
    ...REAL_TIME_CONFORMANCE,
    store: () => postgresIdempotencyStore(pool, { table }),
    key,
  }));

  describeOwnerProcesses('postgres', () => ({
    args: ['postgres', DATABASE_URL, table],
    guard: (leaseMs) => idempotency<string>({ store: postgresIdempotencyStore(pool, { table }), leaseMs }),
    key,
  }));

  it('migrates idempotently and rejects a table name that is not an identifier', async () => {
    const store = postgresIdempotencyStore(pool, { table });
    await store.migrate();
    await store.migrate();
    expect(() => postgresIdempotencyStore(pool, { table: 'x; drop table y' })).toThrow(
      /table must be a table name/,
    );
  });

  it('migrates from many connections at once without a catalog conflict', async () => {
    // Concurrent CREATE TABLE IF NOT EXISTS races on PostgreSQL's catalog; migrate() takes turns.
    const fresh = [1, 2, 3].map((i) => `${table}_m${i}`);
    try {
      for (const name of fresh) {
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, () => postgresIdempotencyStore(pool, { table: name }).migrate()),
        );
        expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      }
      const schemaQualified = postgresIdempotencyStore(pool, { table: `public.${fresh[0]}` });
      await schemaQualified.migrate();
      const guard = idempotency<string>({ store: schemaQualified });
      expect((await guard.run(key('qualified'), 'req', () => 'v')).kind).toBe('executed');
    } finally {
      for (const name of fresh) await pool.query(`DROP TABLE IF EXISTS "${name}"`);
    }
  });

  it('migrates a table made by an earlier version: the renewal counter is added, old rows keep working', async () => {
    const old = `${table}_v0`;
    try {
      await pool.query(`CREATE TABLE "${old}" (
        key text PRIMARY KEY,
        fingerprint text NOT NULL,
        state text NOT NULL CHECK (state IN ('in_progress', 'completed')),
        owner text,
        payload text,
        lease_until timestamptz,
        expires_at timestamptz NOT NULL
      )`);
      const { defaultFingerprint } = await import('@bulwark/idempotency');
      await pool.query(
        `INSERT INTO "${old}" VALUES ('done', $1, 'completed', NULL, '["v0"]', NULL, now() + interval '1 hour'),
          ('stuck', $1, 'in_progress', 'old-owner', NULL, now() + interval '1 hour', now() + interval '1 hour')`,
        [defaultFingerprint('req')],
      );
      const store = postgresIdempotencyStore(pool, { table: old });
      await store.migrate();
      const columns = await pool.query(
        `SELECT column_default, is_nullable FROM information_schema.columns WHERE table_name = $1 AND column_name = 'renewals'`,
        [old],
      );
      expect(columns.rows).toEqual([{ column_default: '0', is_nullable: 'NO' }]);
      const guard = idempotency<string>({ store, leaseMs: 300 });
      expect(await guard.run('done', 'req', () => 'again')).toEqual({ kind: 'replayed', value: 'v0' });
      // An earlier version's in-progress row is taken over once seen unrenewed for a lease.
      expect((await guard.run('stuck', 'req', () => 'early')).kind).toBe('in-progress');
      await sleep(450);
      expect(await guard.run('stuck', 'req', () => 'new')).toEqual({
        kind: 'executed',
        value: 'new',
        completion: 'stored',
      });
    } finally {
      await pool.query(`DROP TABLE IF EXISTS "${old}"`);
    }
  });

  it('keeps a completed record with its TTL measured by the server, and purges expired ones', async () => {
    const store = postgresIdempotencyStore(pool, { table });
    const guard = idempotency<string>({ store, ttlMs: 200 });
    const k = key('purge');
    await guard.run(k, 'req', () => 'v');
    const row = await pool.query(
      `SELECT state, payload, owner, extract(epoch FROM expires_at - now()) * 1000 AS left_ms FROM "${table}" WHERE key = $1`,
      [k],
    );
    expect(row.rows[0]).toMatchObject({ state: 'completed', payload: '["v"]', owner: null });
    expect(Number(row.rows[0].left_ms)).toBeLessThanOrEqual(200);
    await sleep(300);
    expect(await store.purgeExpired()).toBeGreaterThanOrEqual(1);
    expect((await pool.query(`SELECT 1 FROM "${table}" WHERE key = $1`, [k])).rowCount).toBe(0);
  });

  it('begins and completes in one query each', async () => {
    let queries = 0;
    const counting = {
      query: (text: string, values?: unknown[]) => {
        queries++;
        return pool.query(text, values);
      },
    };
    const guard = idempotency<string>({ store: postgresIdempotencyStore(counting, { table }) });
    await guard.run(key('trips'), 'req', () => 'v');
    expect(queries).toBe(2);
  });

  storeOutageTests('PostgreSQL', () => ({
    url: DATABASE_URL,
    defaultPort: 5432,
    async connect(url) {
      // One connection and no query_timeout: a test's wait ends only by the guard's limit.
      const proxied = poolFor(url, 1, false);
      try {
        await proxied.query('select 1');
      } catch (error) {
        await proxied.end().catch(() => {});
        throw error;
      }
      return { store: postgresIdempotencyStore(proxied, { table }), close: () => proxied.end() };
    },
    unconnected(url) {
      const offline = poolFor(url);
      return { store: postgresIdempotencyStore(offline, { table }), close: () => offline.end() };
    },
    recordState: async (k) => (await pool.query(`SELECT state FROM "${table}" WHERE key = $1`, [k])).rows[0],
    inProgress: { state: 'in_progress' },
    key,
  }));
});
