// A query still running at the deadline is cancelled on the server.
import { pipeline } from '@bulwark/core';
import { deadline, timeout } from '@bulwark/deadline';
import { withQueryPolicy } from '@bulwark/postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASE_URL, postgresAvailable, sleep } from './services.ts';

const available = await postgresAvailable();

describe.skipIf(!available)('withQueryPolicy against real PostgreSQL', () => {
  let pool: pg.Pool;
  let observer: pg.Pool;

  beforeAll(() => {
    pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    observer = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  });

  afterAll(async () => {
    await pool.end();
    await observer.end();
  });

  /**
   * How many backends still run a query containing `marker`. A cancel reaches
   * the server asynchronously, so this waits up to half a second for none.
   */
  async function stillRunning(marker: string): Promise<number> {
    let running = 0;
    for (let i = 0; i < 20; i++) {
      const { rows } = await observer.query(
        "select count(*)::int as n from pg_stat_activity where state = 'active' and query like $1 and pid <> pg_backend_pid()",
        [`%${marker}%`],
      );
      running = (rows[0] as { n: number }).n;
      if (running === 0) return 0;
      await sleep(25);
    }
    return running;
  }

  it('ends pg_sleep(5) under a 200 ms deadline within 300 ms, and the backend stops running it', async () => {
    const marker = `bulwark_deadline_${process.pid}_${Date.now()}`;
    const db = withQueryPolicy(pool, pipeline(deadline(200)));
    const started = performance.now();
    const error = await db.query(`select pg_sleep(5) /* ${marker} */`).catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(error).toMatchObject({ code: 'ERR_DEADLINE_EXCEEDED' });
    expect(elapsed).toBeLessThan(300);
    expect(await stillRunning(marker)).toBe(0);
  });

  it('runs a query that finishes in time and returns its rows', async () => {
    const db = withQueryPolicy(pool, deadline(2_000));
    const result = (await db.query('select 41 + 1 as answer')) as { rows: Array<{ answer: number }> };
    expect(result.rows[0]?.answer).toBe(42);
  });

  it('returns the client to the pool after a cancelled query, ready for the next one', async () => {
    const db = withQueryPolicy(pool, deadline(100));
    for (let i = 0; i < 3; i++) {
      await expect(db.query('select pg_sleep(2)')).rejects.toMatchObject({ code: 'ERR_DEADLINE_EXCEEDED' });
    }
    await sleep(50);
    const ok = (await withQueryPolicy(pool, deadline(2_000)).query('select 1 as one')) as { rows: unknown[] };
    expect(ok.rows).toEqual([{ one: 1 }]);
    expect(pool.totalCount).toBeLessThanOrEqual(2);
  });

  it('cancels the query when a per-attempt timeout inside a longer deadline fires', async () => {
    const marker = `bulwark_attempt_${process.pid}_${Date.now()}`;
    const db = withQueryPolicy(pool, pipeline(deadline(10_000), timeout(150)));
    const error = await db.query(`select pg_sleep(3) /* ${marker} */`).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_DEADLINE_EXCEEDED', source: 'timeout' });
    expect(await stillRunning(marker)).toBe(0);
  });
});
