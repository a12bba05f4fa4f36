// Per-request overhead of the idempotency guard: memory, Redis and PostgreSQL
// stores on loopback, beside AWS Powertools' idempotency with its cache
// persistence layer on the same Redis. Each request uses a fresh key, so every
// call takes the full path: begin, run, complete. Store round trips are counted
// by wrapping the clients.
import { idempotency, memoryStore } from '@bulwark/idempotency';
import { postgresIdempotencyStore } from '@bulwark/postgres';
import { redisIdempotencyStore } from '@bulwark/redis';
import pg from 'pg';
import { createClient } from 'redis';
import { printTable, runSuite, type Subject, target } from '../harness.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RUN = `bench_${process.pid}`;

type RedisClient = ReturnType<typeof createClient>;

async function connectRedis(): Promise<RedisClient | undefined> {
  const client = createClient({
    url: REDIS_URL,
    socket: { connectTimeout: 1_000, reconnectStrategy: false },
    disableOfflineQueue: true,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return client;
  } catch (error) {
    console.log(`Redis at ${REDIS_URL} is unreachable (${(error as Error).message})`);
    return undefined;
  }
}

async function connectPostgres(): Promise<pg.Pool | undefined> {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2, connectionTimeoutMillis: 1_000 });
  pool.on('error', () => {});
  try {
    await pool.query('select 1');
    return pool;
  } catch (error) {
    console.log(`PostgreSQL at ${DATABASE_URL} is unreachable (${(error as Error).message})`);
    await pool.end().catch(() => {});
    return undefined;
  }
}

/**
 * A target that could not be measured: it is reported as missed, never as met,
 * so a run without its servers cannot pass.
 */
function unmeasured(description: string, limit: number, why: string): false {
  console.log(`MISS ${description}: not measured, ${why} (limit ${limit.toFixed(3)})`);
  return false;
}

/** Round trips a guard spends before fn runs (begin) and after (complete), averaged over `n` requests. */
async function countTrips(
  n: number,
  trips: () => number,
  request: (fn: () => string) => Promise<unknown>,
): Promise<{ begin: number; complete: number }> {
  let begin = 0;
  let complete = 0;
  for (let i = 0; i < n; i++) {
    const start = trips();
    let atFn = start;
    await request(() => {
      atFn = trips();
      return 'ok';
    });
    begin += atFn - start;
    complete += trips() - atFn;
  }
  return { begin: begin / n, complete: complete / n };
}

export async function run(): Promise<boolean> {
  let met = true;
  let seq = 0;
  const work = () => 'ok';

  // --- in process -------------------------------------------------------------
  const memory = idempotency<string>({ store: memoryStore() });
  const replay = idempotency<string>({ store: memoryStore() });
  await replay.run('fixed', 'request', work);
  const inProcess = await runSuite(
    'idempotency-memory',
    [
      { name: 'bare call', call: async () => work() },
      { name: 'bulwark guard, memory store (execute)', call: () => memory.run(`k${++seq}`, 'request', work) },
      { name: 'bulwark guard, memory store (replay)', call: () => replay.run('fixed', 'request', work) },
    ],
    { batch: 5_000, rounds: 10, warmup: 5_000 },
  );
  const memoryOverheadUs = inProcess.measurements[1]!.overheadNs / 1000;
  met = target('memory guard overhead per executed request, µs', memoryOverheadUs, 25) && met;

  // --- loopback stores -------------------------------------------------------
  const redis = await connectRedis();
  const pool = await connectPostgres();
  const subjects: Subject[] = [{ name: 'bare call', call: async () => work() }];
  const tripRows: string[][] = [['store', 'begin trips/request', 'complete trips/request']];
  const cleanups: Array<() => Promise<void>> = [];

  if (redis !== undefined) {
    const prefix = `bulwark:${RUN}:`;
    let redisTrips = 0;
    const counted = {
      eval: (s: string, o: { keys: string[]; arguments: string[] }) => {
        redisTrips++;
        return redis.eval(s, o);
      },
      evalSha: (s: string, o: { keys: string[]; arguments: string[] }) => {
        redisTrips++;
        return redis.evalSha(s, o);
      },
    };
    const guard = idempotency<string>({ store: redisIdempotencyStore(counted, { prefix }), ttlMs: 60_000 });
    await guard.run(`${RUN}-warm`, 'request', work); // loads the scripts
    const trips = await countTrips(
      200,
      () => redisTrips,
      (fn) => guard.run(`t${++seq}`, 'request', fn),
    );
    tripRows.push(['bulwark, Redis', trips.begin.toFixed(2), trips.complete.toFixed(2)]);
    met = target('Redis round trips to begin', trips.begin, 1) && met;
    met = target('Redis round trips to complete', trips.complete, 1) && met;
    subjects.push(
      // One bare round trip, for scale: the guard spends two (begin and complete).
      { name: 'one Redis round trip (PING)', call: () => redis.ping() },
      { name: 'bulwark guard, Redis store', call: () => guard.run(`r${++seq}`, 'request', work) },
    );

    try {
      const { makeIdempotent, IdempotencyConfig } = await import('@aws-lambda-powertools/idempotency');
      const { CachePersistenceLayer } = await import('@aws-lambda-powertools/idempotency/cache');
      let ptTrips = 0;
      const cacheClient = {
        get: (k: string) => {
          ptTrips++;
          return redis.get(k);
        },
        set: (k: any, v: unknown, o?: unknown) => {
          ptTrips++;
          return redis.set(k, v as string, o as never);
        },
        del: (keys: string[]) => {
          ptTrips++;
          return redis.del(keys);
        },
      };
      const persistenceStore = new CachePersistenceLayer({ client: cacheClient });
      const config = new IdempotencyConfig({ expiresAfterSeconds: 60 });
      // Outside Lambda there is no invocation context; give it one with time to spare.
      config.registerLambdaContext({ getRemainingTimeInMillis: () => 60_000 } as never);
      let ptFn: () => string = work;
      const handler = makeIdempotent(async (_payload: { id: number }) => ptFn(), {
        persistenceStore,
        config,
        keyPrefix: `pt:${RUN}`,
      });
      const ptTripsCount = await countTrips(
        200,
        () => ptTrips,
        async (fn) => {
          ptFn = fn;
          await handler({ id: ++seq });
          ptFn = work;
        },
      );
      tripRows.push([
        'Powertools cache layer, Redis',
        ptTripsCount.begin.toFixed(2),
        ptTripsCount.complete.toFixed(2),
      ]);
      subjects.push({ name: 'Powertools makeIdempotent, Redis', call: () => handler({ id: ++seq }) });
    } catch (error) {
      console.log(`skipping Powertools: ${(error as Error).message}`);
    }
    cleanups.push(async () => {
      for (const match of [`${prefix}*`, `pt:${RUN}*`]) {
        for await (const keys of redis.scanIterator({ MATCH: match, COUNT: 1000 })) {
          if (keys.length > 0) await redis.del(keys);
        }
      }
      redis.destroy();
    });
  } else {
    const why = `Redis at ${REDIS_URL} is unreachable`;
    met = unmeasured('Redis round trips to begin', 1, why) && met;
    met = unmeasured('Redis round trips to complete', 1, why) && met;
  }

  if (pool !== undefined) {
    const table = `bulwark_${RUN}`;
    let pgTrips = 0;
    const counted = {
      query: (text: string, values?: unknown[]) => {
        pgTrips++;
        return pool.query(text, values);
      },
    };
    const store = postgresIdempotencyStore(counted, { table });
    await store.migrate();
    const guard = idempotency<string>({ store, ttlMs: 60_000 });
    const trips = await countTrips(
      100,
      () => pgTrips,
      (fn) => guard.run(`t${++seq}`, 'request', fn),
    );
    tripRows.push(['bulwark, PostgreSQL', trips.begin.toFixed(2), trips.complete.toFixed(2)]);
    met = target('PostgreSQL round trips to begin', trips.begin, 1) && met;
    met = target('PostgreSQL round trips to complete', trips.complete, 1) && met;
    subjects.push(
      { name: 'one PostgreSQL round trip (SELECT 1)', call: () => pool.query('SELECT 1') },
      { name: 'bulwark guard, PostgreSQL store', call: () => guard.run(`p${++seq}`, 'request', work) },
    );
    cleanups.push(async () => {
      await pool.query(`DROP TABLE IF EXISTS "${table}"`);
      await pool.end();
    });
  } else {
    const why = `PostgreSQL at ${DATABASE_URL} is unreachable`;
    met = unmeasured('PostgreSQL round trips to begin', 1, why) && met;
    met = unmeasured('PostgreSQL round trips to complete', 1, why) && met;
  }

  if (subjects.length > 1) {
    await runSuite('idempotency-loopback', subjects, { batch: 200, rounds: 20, warmup: 200 });
    printTable('idempotency store round trips per request (fresh key: begin, run, complete)', tripRows);
  }
  for (const cleanup of cleanups) await cleanup();
  return met;
}
