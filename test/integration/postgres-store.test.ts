import { isBulwarkError } from '@bulwark/core';
import { idempotency, StoreUnavailableError } from '@bulwark/idempotency';
import { postgresIdempotencyStore } from '@bulwark/postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeStoreConformance } from '../idempotency/conformance.ts';
import { describeOwnerProcesses } from './owner-process.ts';
import { DATABASE_URL, deadPort, postgresAvailable, RUN_ID, sleep } from './services.ts';
import { startProxy } from './tcp-proxy.ts';

const available = await postgresAvailable();
const table = `bulwark_idem_${RUN_ID}`.toLowerCase();
let seq = 0;
const key = (name: string) => `${name}-${++seq}`;

function poolFor(connectionString: string, max = 10): pg.Pool {
  // Short timeouts: an unreachable server fails fast.
  const pool = new pg.Pool({ connectionString, max, connectionTimeoutMillis: 1_000, query_timeout: 2_000 });
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
    store: () => postgresIdempotencyStore(pool, { table }),
    wait: sleep,
    leaseMs: 300,
    ttlMs: 600,
    marginMs: 150,
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

  it('fails closed when PostgreSQL is unreachable: nothing runs', async () => {
    const port = await deadPort();
    const offline = poolFor(`postgres://postgres@127.0.0.1:${port}/test`);
    const guard = idempotency({ store: postgresIdempotencyStore(offline, { table }) });
    let ran = false;
    const error = await guard
      .run(key('down'), 'req', () => {
        ran = true;
      })
      .catch((e: unknown) => e);
    expect(isBulwarkError(error, 'ERR_STORE_UNAVAILABLE')).toBe(true);
    expect(ran).toBe(false);
    await offline.end();
  });

  it('fails closed within storeTimeoutMs when PostgreSQL stops answering without closing the connection', async () => {
    const url = new URL(DATABASE_URL);
    const proxy = await startProxy(url.hostname, Number(url.port || 5432));
    const target = new URL(DATABASE_URL);
    target.hostname = '127.0.0.1';
    target.port = String(proxy.port);
    // No query_timeout here: only the guard's own limit ends the wait.
    const proxied = new pg.Pool({ connectionString: target.toString(), max: 1 });
    proxied.on('error', () => {});
    try {
      const guard = idempotency<string>({
        store: postgresIdempotencyStore(proxied, { table }),
        storeTimeoutMs: 300,
      });
      expect((await guard.run(key('frozen-before'), 'req', () => 'before')).kind).toBe('executed');
      proxy.freeze();
      let ran = false;
      const error = await guard
        .run(key('frozen'), 'req', () => {
          ran = true;
          return 'never';
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(ran).toBe(false);
    } finally {
      await proxy.cut();
      await proxied.end().catch(() => {});
    }
  });

  it('fails closed when the connection to PostgreSQL is cut mid-test', async () => {
    const url = new URL(DATABASE_URL);
    const proxy = await startProxy(url.hostname, Number(url.port || 5432));
    const target = new URL(DATABASE_URL);
    target.hostname = '127.0.0.1';
    target.port = String(proxy.port);
    const proxied = poolFor(target.toString(), 1);
    const guard = idempotency<string>({
      store: postgresIdempotencyStore(proxied, { table }),
      leaseMs: 5_000,
    });
    expect((await guard.run(key('cut'), 'req', () => 'before')).kind).toBe('executed');

    const k = key('cut-during');
    const during = await guard.run(k, 'req', async () => {
      await proxy.cut();
      return 'during';
    });
    expect(during).toEqual({ kind: 'executed', value: 'during', completion: 'store-error' });
    const row = await pool.query(`SELECT state FROM "${table}" WHERE key = $1`, [k]);
    expect(row.rows[0]).toEqual({ state: 'in_progress' });

    let ran = false;
    const error = await guard
      .run(key('cut-after'), 'req', () => {
        ran = true;
        return 'after';
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(ran).toBe(false);
    await proxied.end().catch(() => {});
  });
});
