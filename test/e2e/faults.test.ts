// Faults at the seams, end to end: a Fastify or Express service (a child
// process, test/e2e/fixtures/fault-server.ts) with an idempotent POST route
// whose idempotency store and business database sit behind TCP proxies. While
// clients send requests and retry them with the same key, the proxies pause,
// black-hole, reset and refuse the store's and the database's connections. The
// test then checks what bulwark promises:
// - the service process survives;
// - no side effect runs twice (counted in a PostgreSQL table reached directly);
// - every request is answered within its deadline;
// - no bulkhead slot, pooled connection or lease is left held.
// Each case runs about 10 s; the whole file stays well under 2 minutes.
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DATABASE_URL,
  postgresAvailable,
  REDIS_URL,
  RUN_ID,
  redisAvailable,
} from '../integration/services.ts';
import { startProxy, type TcpProxy } from '../integration/tcp-proxy.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/fault-server.ts', import.meta.url));
/** Each attempt's budget, sent as x-request-timeout-ms. */
const ATTEMPT_DEADLINE_MS = 800;
/** How late past its deadline an answer may come (scheduling, loopback, a loaded CI machine). */
const LATE_SLACK_MS = 400;
/** A logical request retries with its key for this long. */
const LOGICAL_BUDGET_MS = 4_000;
const WORKERS = 6;

const services = (await redisAvailable()) && (await postgresAvailable());
const EFFECTS = `${RUN_ID}_effects`;

interface Attempt {
  readonly key: string;
  /** The HTTP status, or `network` (the connection failed) or `late` (no answer in time). */
  readonly outcome: number | 'network' | 'late';
  readonly ms: number;
}

interface Service {
  readonly url: string;
  readonly child: ChildProcess;
  readonly stderr: () => string;
  stop(): Promise<void>;
}

function urlThrough(base: string, proxy: TcpProxy): string {
  const url = new URL(base);
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  return url.toString();
}

async function startService(args: readonly string[]): Promise<Service> {
  const child = spawn(process.execPath, ['--conditions=bulwark-source', FIXTURE, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the service did not start in 15 s: ${err}`)), 15_000);
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /ready (\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the service exited with ${code} before it listened: ${err}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    stderr: () => err,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** One POST with `key`; never rejects. */
async function post(url: string, key: string): Promise<Attempt> {
  const started = performance.now();
  const late = ATTEMPT_DEADLINE_MS + LATE_SLACK_MS;
  try {
    const response = await fetch(`${url}/orders`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'idempotency-key': `"${key}"`,
        'x-request-timeout-ms': String(ATTEMPT_DEADLINE_MS),
      },
      body: JSON.stringify({ key }),
      signal: AbortSignal.timeout(late),
    });
    await response.arrayBuffer();
    return { key, outcome: response.status, ms: performance.now() - started };
  } catch (error) {
    const timedOut = error instanceof Error && error.name === 'TimeoutError';
    return { key, outcome: timedOut ? 'late' : 'network', ms: performance.now() - started };
  }
}

/** Sends logical requests from `WORKERS` loops until `stop()`; each retries its key until a 2xx or its budget ends. */
function drive(url: string, prefix: string) {
  const attempts: Attempt[] = [];
  const keys: string[] = [];
  const succeeded = new Set<string>();
  let running = true;
  let next = 0;
  const worker = async () => {
    while (running) {
      const key = `${prefix}-${next++}`;
      keys.push(key);
      const start = performance.now();
      while (performance.now() - start < LOGICAL_BUDGET_MS) {
        const attempt = await post(url, key);
        attempts.push(attempt);
        if (typeof attempt.outcome === 'number' && attempt.outcome < 300) {
          succeeded.add(key);
          break;
        }
        await sleep(100);
      }
    }
  };
  const done = Promise.all(Array.from({ length: WORKERS }, worker));
  return {
    attempts,
    keys,
    succeeded,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

interface Stats {
  bulkheadActive: number;
  bulkheadQueued: number;
  poolTotal: number;
  poolIdle: number;
  poolWaiting: number;
}

/** The service's stats once nothing is held, or the last ones seen after 4 s. */
async function settledStats(url: string): Promise<Stats> {
  let last: Stats | undefined;
  for (let i = 0; i < 40; i++) {
    last = (await (await fetch(`${url}/stats`)).json()) as Stats;
    // /stats itself holds one bulkhead slot while it runs.
    const quiet =
      last.bulkheadActive <= 1 &&
      last.bulkheadQueued === 0 &&
      last.poolTotal === last.poolIdle &&
      last.poolWaiting === 0;
    if (quiet) return last;
    await sleep(100);
  }
  return last as Stats;
}

describe.skipIf(!services).each([
  ['fastify', 'redis'],
  ['express', 'postgres'],
  ['fastify', 'postgres'],
  ['express', 'redis'],
] as const)('a %s service with a %s store under store and database faults', (adapter, storeKind) => {
  let direct: pg.Pool;
  const namespace = storeKind === 'redis' ? `${RUN_ID}:${adapter}:idem:` : `${RUN_ID}_${adapter}_idem`;

  beforeAll(async () => {
    direct = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    await direct.query(`create table if not exists "${EFFECTS}" (key text not null)`);
  });
  afterAll(async () => {
    if (storeKind === 'postgres') await direct.query(`drop table if exists "${namespace}"`);
    await direct.query(`drop table if exists "${EFFECTS}"`);
    await direct.end();
  });

  it('survives, executes each key at most once, answers within the deadline and leaks nothing', async () => {
    const storeBase = storeKind === 'redis' ? REDIS_URL : DATABASE_URL;
    const storeTarget = new URL(storeBase);
    const dbTarget = new URL(DATABASE_URL);
    const storeProxy = await startProxy(storeTarget.hostname, Number(storeTarget.port));
    const dbProxy = await startProxy(dbTarget.hostname, Number(dbTarget.port));
    const service = await startService([
      adapter,
      storeKind,
      urlThrough(storeBase, storeProxy),
      urlThrough(DATABASE_URL, dbProxy),
      DATABASE_URL,
      EFFECTS,
      namespace,
    ]);
    const prefix = `${adapter}-${storeKind}`;
    try {
      const load = drive(service.url, prefix);
      await sleep(600);
      // The store pauses (a frozen connection) for 1.5 s, then its connections reset.
      storeProxy.freeze();
      await sleep(1_500);
      storeProxy.thaw();
      await storeProxy.reset();
      await sleep(700);
      // The store is killed: connections reset, new ones refused for 1 s.
      storeProxy.refuse(true);
      await storeProxy.reset();
      await sleep(1_000);
      storeProxy.refuse(false);
      await sleep(700);
      // The business database's connections reset mid-query.
      await dbProxy.reset();
      await sleep(500);
      // The business database black-holes for 1.5 s (cancel requests included).
      dbProxy.freeze();
      await sleep(1_500);
      dbProxy.thaw();
      await dbProxy.reset();
      // Healthy again for a while, then the load stops.
      await sleep(1_500);
      await load.stop();

      // 1. The process survived.
      expect(service.child.exitCode, service.stderr()).toBeNull();
      expect(service.child.signalCode, service.stderr()).toBeNull();

      // 2. Every attempt was answered within its deadline.
      const late = load.attempts.filter(
        (a) => a.outcome === 'late' || a.outcome === 'network' || a.ms > ATTEMPT_DEADLINE_MS + LATE_SLACK_MS,
      );
      expect(late, `${late.length} of ${load.attempts.length} attempts unanswered in time`).toEqual([]);

      // 3. Nothing is held: bulkhead slots and pooled connections came back.
      const stats = await settledStats(service.url);
      expect(stats.bulkheadActive).toBeLessThanOrEqual(1);
      expect(stats.bulkheadQueued).toBe(0);
      expect(stats.poolTotal - stats.poolIdle).toBe(0);
      expect(stats.poolWaiting).toBe(0);

      // 4. No lease is left held: with the faults over, every key ends in a 2xx
      // (executed now, or the stored answer replayed) within 3 s. Eight at a
      // time, within the service's bulkhead.
      const stuck: string[] = [];
      const queue = [...load.keys];
      const check = async (): Promise<void> => {
        for (let key = queue.shift(); key !== undefined; key = queue.shift()) {
          const outcomes: Attempt['outcome'][] = [];
          for (let i = 0; i < 15; i++) {
            const attempt = await post(service.url, key);
            outcomes.push(attempt.outcome);
            if (typeof attempt.outcome === 'number' && attempt.outcome < 300) break;
            await sleep(200);
          }
          const last = outcomes.at(-1);
          if (typeof last === 'number' && last < 300) load.succeeded.add(key);
          else {
            const during = load.attempts.filter((a) => a.key === key).map((a) => a.outcome);
            stuck.push(`${key}: during the faults ${during.join(' ')}; after them ${outcomes.join(' ')}`);
          }
        }
      };
      await Promise.all(Array.from({ length: 8 }, check));
      expect(stuck, 'keys that could not complete after the faults').toEqual([]);

      // 5. Each key's effect ran exactly once.
      const { rows } = await direct.query<{ key: string; n: string }>(
        `select key, count(*) as n from "${EFFECTS}" where key like $1 group by key`,
        [`${prefix}-%`],
      );
      const counts = new Map(rows.map((r) => [r.key, Number(r.n)]));
      const duplicated = [...counts].filter(([, n]) => n > 1);
      expect(duplicated, 'keys whose effect ran more than once').toEqual([]);
      for (const key of load.succeeded) expect(counts.get(key), key).toBe(1);

      // The faults were real: some attempts failed, and most logical requests still succeeded.
      const failed = load.attempts.filter((a) => typeof a.outcome !== 'number' || a.outcome >= 300);
      expect(failed.length).toBeGreaterThan(0);
      expect(load.keys.length).toBeGreaterThan(20);
      expect(service.child.exitCode, service.stderr()).toBeNull();
    } finally {
      await service.stop();
      await Promise.all([storeProxy.cut(), dbProxy.cut()]);
    }
  }, 60_000);
});
