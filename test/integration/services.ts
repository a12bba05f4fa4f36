// Reaching the real services the integration tests use. When one cannot be
// reached, its tests are skipped with a printed reason; under CI (CI=true) the
// probe throws instead, so the run fails.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import pg from 'pg';
import { createClient } from 'redis';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A prefix unique to this test run, so parallel runs never share keys or tables. */
export const RUN_ID = `t${process.pid}_${randomUUID().slice(0, 8)}`;

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function gate(
  name: string,
  envName: string,
  url: string,
  probe: () => Promise<void>,
): Promise<boolean> {
  try {
    await withTimeout(probe(), 3_000, name);
    return true;
  } catch (error) {
    const reason = `${name} at ${url} is unreachable: ${error instanceof Error ? error.message : String(error)}`;
    if (process.env.CI === 'true') {
      throw new Error(`${reason}. CI requires it: start it (scripts/services.sh) or set ${envName}.`);
    }
    console.log(`skipping the ${name} integration tests: ${reason} (set ${envName} to point elsewhere)`);
    return false;
  }
}

/** Whether Redis answers PING at REDIS_URL. */
export function redisAvailable(): Promise<boolean> {
  return gate('Redis', 'REDIS_URL', REDIS_URL, async () => {
    const client = createClient({
      url: REDIS_URL,
      socket: { connectTimeout: 2_000, reconnectStrategy: false },
    });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
    } finally {
      if (client.isOpen) client.destroy();
    }
  });
}

/** Whether PostgreSQL answers `select 1` at DATABASE_URL. */
export function postgresAvailable(): Promise<boolean> {
  return gate('PostgreSQL', 'DATABASE_URL', DATABASE_URL, async () => {
    const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('select 1');
    } finally {
      await client.end().catch(() => {});
    }
  });
}

/** A loopback port nothing listens on (it was free a moment ago). */
export async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Real time passing, for tests against real servers (never in unit tests). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `url` with its host set to loopback and its port to `port`: a proxy's, or one nothing listens on. */
export function atPort(url: string, port: number): string {
  const moved = new URL(url);
  moved.hostname = '127.0.0.1';
  moved.port = String(port);
  return moved.toString();
}

/** The store conformance suite's timings against a real server: real waits, short leases. */
export const REAL_TIME_CONFORMANCE = { wait: sleep, leaseMs: 300, ttlMs: 600, marginMs: 150 } as const;
