// withQueryPolicy under real faults, through a TCP proxy in front of the shared
// PostgreSQL: a connection reset or closed mid-query, a network that goes
// silent, and a caller that gives up.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { VirtualClock } from '@bulwark/clock';
import { InvalidOptionsError, isBulwarkError, pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { type QueryCallOptions, withQueryPolicy } from '@bulwark/postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atPort, DATABASE_URL, postgresAvailable, RUN_ID, sleep } from './services.ts';
import { startProxy, type TcpProxy } from './tcp-proxy.ts';

const available = await postgresAvailable();

/** Runs fixtures/pg-connection-lost.ts; resolves with its exit code, the JSON lines it printed, and its stderr. */
function runConnectionLost(how: 'rst' | 'fin') {
  const fixture = new URL('./fixtures/pg-connection-lost.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, ['--conditions=bulwark-source', fixture, DATABASE_URL, how], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(JSON.parse(line)));
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  // Bounded: the fixture's query would end on its own after 4 s.
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  return new Promise<{ code: number | null; lines: typeof lines; stderr: string }>((resolve) => {
    child.once('close', (code) => {
      clearTimeout(killer);
      resolve({ code, lines, stderr });
    });
  });
}

describe.skipIf(!available)('withQueryPolicy when the connection breaks mid-query', () => {
  for (const [how, what, causeMessage] of [
    ['rst', 'is reset', /ECONNRESET/],
    [
      'fin',
      'is closed by the server side (as when the server is killed)',
      /Connection terminated unexpectedly/,
    ],
  ] as const) {
    it(`rejects with ERR_CONNECTION_LOST when the connection ${what}, the process survives, and the broken client leaves the pool`, async () => {
      const { code, lines, stderr } = await runConnectionLost(how);
      expect(stderr).not.toMatch(/Unhandled 'error' event/);
      expect(code).toBe(0);
      const step = (name: string) => lines.find((l) => l.step === name);
      expect(step('running')).toMatchObject({ checkedOut: 1 });
      expect(step('outcome')).toMatchObject({
        settled: 'rejected',
        name: 'ConnectionLostError',
        code: 'ERR_CONNECTION_LOST',
        cause: { message: expect.stringMatching(causeMessage) },
      });
      expect(step('pool')).toEqual({ step: 'pool', total: 0, idle: 0, waiting: 0 });
      expect(step('next')).toEqual({ step: 'next', rows: [{ one: 1 }], total: 1 });
      expect(step('done')).toBeDefined();
    });
  }
});

describe.skipIf(!available)('withQueryPolicy when the network goes silent or the caller gives up', () => {
  let observer: pg.Pool;
  let proxy: TcpProxy;

  beforeAll(async () => {
    observer = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    const target = new URL(DATABASE_URL);
    proxy = await startProxy(target.hostname, Number(target.port || 5432));
  });

  afterAll(async () => {
    await observer.end();
    await proxy.cut();
  });

  /** How many backends run a query containing `marker`. */
  async function running(marker: string): Promise<number> {
    const { rows } = await observer.query(
      "select count(*)::int as n from pg_stat_activity where state = 'active' and query like $1 and pid <> pg_backend_pid()",
      [`%${marker}%`],
    );
    return (rows[0] as { n: number }).n;
  }

  /** Waits (up to 5 s) until `count` backends run a query containing `marker`; false if they never do. */
  async function until(marker: string, count: number): Promise<boolean> {
    for (let i = 0; i < 200; i++) {
      if ((await running(marker)) === count) return true;
      await sleep(25);
    }
    return false;
  }

  it('closes a client whose network went silent once cancelTimeoutMs has passed after the deadline, on the injected clock, so the pool is not exhausted', async () => {
    const clock = new VirtualClock();
    const pool = new pg.Pool({ connectionString: atPort(DATABASE_URL, proxy.port), max: 1 });
    try {
      const db = withQueryPolicy(pool, deadline(1_000, { clock }), { cancelTimeoutMs: 500 });
      const marker = `bulwark_silent_${RUN_ID}`;
      const call = db.query(`select pg_sleep(4) /* ${marker} */`).catch((e: unknown) => e);
      expect(await until(marker, 1)).toBe(true);
      proxy.freeze(); // the query's answer and the cancel's side connection are both black-holed
      await clock.advance(1_000);
      expect(isBulwarkError(await call, 'ERR_DEADLINE_EXCEEDED')).toBe(true);
      // The cancel cannot get through: the client stays out while cancelTimeoutMs runs.
      await clock.advance(499);
      await sleep(50);
      expect({ total: pool.totalCount, idle: pool.idleCount }).toEqual({ total: 1, idle: 0 });
      await clock.advance(1);
      for (let i = 0; i < 40 && pool.totalCount > 0; i++) await sleep(25);
      expect({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }).toEqual({
        total: 0,
        idle: 0,
        waiting: 0,
      });
      expect(clock.pendingTimers).toBe(0);
      // The network is back: the next query gets a fresh connection (the pool holds one at most).
      proxy.thaw();
      const next = (await withQueryPolicy(pool, deadline(3_000)).query('select 1 as one')) as {
        rows: unknown[];
      };
      expect(next.rows).toEqual([{ one: 1 }]);
      expect({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }).toEqual({
        total: 1,
        idle: 1,
        waiting: 0,
      });
    } finally {
      proxy.thaw();
      await pool.end();
    }
  });

  it("cancels pg_sleep(4) on the server when the caller's signal aborts, and rejects with the signal's reason", async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    try {
      // A long deadline: only the caller's signal can end this query early.
      const db = withQueryPolicy(pool, pipeline(deadline(30_000)));
      const marker = `bulwark_abort_${RUN_ID}`;
      const controller = new AbortController();
      const reason = new Error('the client went away');
      const started = performance.now();
      const call = db
        .query(`select pg_sleep(4) /* ${marker} */`, [], { signal: controller.signal })
        .catch((e: unknown) => e);
      expect(await until(marker, 1)).toBe(true);
      const abortedAt = performance.now();
      controller.abort(reason);
      expect(await call).toBe(reason);
      // Generous for a loaded CI machine, and well under pg_sleep(4).
      expect(await until(marker, 0)).toBe(true);
      expect(performance.now() - abortedAt).toBeLessThan(1_500);
      expect(performance.now() - started).toBeLessThan(3_500);
      // The cancelled backend goes back to the pool and serves the next query.
      await sleep(50);
      expect({ total: pool.totalCount, idle: pool.idleCount }).toEqual({ total: 1, idle: 1 });
      const next = (await db
        .query('select 2 as two', { signal: controller.signal })
        .catch((e: unknown) => e)) as unknown;
      expect(next).toBe(reason); // an already-aborted signal refuses the call
      const fresh = await db.query<{ two: number }>('select 2 as two', undefined, {});
      expect(fresh.rows).toEqual([{ two: 2 }]);
    } finally {
      await pool.end();
    }
  });

  it("closes a client whose query failed without the server's answer (pg's query_timeout) instead of pooling it busy", async () => {
    // query_timeout rejects the call but leaves the query running on that
    // connection: pooled again, it would make the next query wait behind it.
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1, query_timeout: 200 });
    try {
      const db = withQueryPolicy(pool, deadline(30_000));
      const marker = `bulwark_read_timeout_${RUN_ID}`;
      await expect(db.query(`select pg_sleep(3) /* ${marker} */`)).rejects.toThrow(/Query read timeout/);
      const started = performance.now();
      const next = (await db.query('select 1 as one')) as { rows: unknown[] };
      expect(next.rows).toEqual([{ one: 1 }]);
      expect(performance.now() - started).toBeLessThan(1_500); // behind pg_sleep(3) it would take ~2,800 ms
      expect({ total: pool.totalCount, idle: pool.idleCount }).toEqual({ total: 1, idle: 1 });
    } finally {
      await pool.end();
    }
  });

  it('refuses query options it does not know, or a signal that is not an AbortSignal, naming the value', async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    try {
      const db = withQueryPolicy(pool, deadline(2_000));
      const error = await db
        .query('select 1', [], { signal: 'soon', timeoutMs: 5 } as unknown as QueryCallOptions)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidOptionsError);
      expect((error as Error).message).toMatch(/signal must be an AbortSignal, got "soon"/);
      expect((error as Error).message).toMatch(/timeoutMs must be not an option of query\(\)/);
      expect(pool.totalCount).toBe(0); // refused before a client was checked out
    } finally {
      await pool.end();
    }
  });
});
