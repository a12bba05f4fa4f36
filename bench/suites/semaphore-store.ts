// What a distributed concurrency limit (distributedBulkhead with
// redisSemaphoreStore) costs in Redis round trips and memory, on a Redis this
// suite starts for itself on a free loopback port (bench/redis-server.ts;
// REDIS_URL points it elsewhere) and stops by its PID at the end. Round trips
// are the script calls the server counts (INFO commandstats).
import { distributedBulkhead } from '@bulwark/bulkhead';
import { isBulwarkError } from '@bulwark/core';
import { redisSemaphoreStore } from '@bulwark/redis';
import { createClient } from 'redis';
import { printTable, save, target } from '../harness.ts';
import { startBenchRedis } from '../redis-server.ts';

const RUN = `bench_${process.pid}`;

type RedisClient = ReturnType<typeof createClient>;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Script calls (EVAL and EVALSHA) since the last CONFIG RESETSTAT. */
async function scriptCalls(redis: RedisClient): Promise<number> {
  let scripts = 0;
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const m = /^cmdstat_(eval|evalsha):calls=(\d+)/.exec(line.trim());
    if (m !== null) scripts += Number(m[2]);
  }
  return scripts;
}

export async function run(): Promise<boolean> {
  let server: Awaited<ReturnType<typeof startBenchRedis>>;
  try {
    server = await startBenchRedis();
  } catch (error) {
    console.log(`MISS distributed bulkhead round trips: not measured, ${(error as Error).message}`);
    return false;
  }
  const redis = createClient({ url: server.url, socket: { reconnectStrategy: false } });
  redis.on('error', () => {});
  try {
    await redis.connect();
    console.log(
      `\nRedis ${server.url}${server.pid === undefined ? ' (REDIS_URL)' : `, started for this suite (PID ${server.pid})`}`,
    );
    return await measure(redis);
  } finally {
    if (redis.isOpen) {
      for await (const keys of redis.scanIterator({ MATCH: `${RUN}:*`, COUNT: 1000 })) {
        if (keys.length > 0) await redis.del(keys);
      }
      redis.destroy();
    }
    await server.stop();
  }
}

async function measure(redis: RedisClient): Promise<boolean> {
  const prefix = `${RUN}:semaphore:`;
  const store = redisSemaphoreStore(redis, { prefix });
  const maxConcurrent = 8;
  const leaseMs = 600;
  const limit = distributedBulkhead({ maxConcurrent, leaseMs, store, key: 'api' });
  const rows: string[][] = [['what', 'calls', 'round trips', 'per call']];
  const measured = async (what: string, calls: number, act: () => Promise<unknown>) => {
    await redis.configResetStat();
    await act();
    await pause(50); // a release sent without waiting lands
    const trips = await scriptCalls(redis);
    rows.push([what, String(calls), String(trips), (trips / calls).toFixed(2)]);
    return trips / calls;
  };
  // Loads the scripts, so that no NOSCRIPT fallback is counted.
  await limit.execute(async () => 1);

  const short = await measured('a short call (acquire, release)', 1_000, async () => {
    for (let i = 0; i < 1_000; i++) await limit.execute(async () => 1);
  });
  const held = await measured(
    `a call held for 2 s (leaseMs ${leaseMs}: a renewal every ${leaseMs / 3} ms)`,
    1,
    () => limit.execute(() => pause(2_000)),
  );
  // Full: every slot held; each refused call is one acquire answered "full".
  const permits = await Promise.all(Array.from({ length: maxConcurrent }, () => limit.tryAcquire()));
  const full = await measured('refused while full', 1_000, async () => {
    for (let i = 0; i < 1_000; i++) {
      await limit
        .execute(async () => 1)
        .catch((error: unknown) => {
          if (!isBulwarkError(error, 'ERR_BULKHEAD_FULL')) throw error;
        });
    }
  });
  const bytes = await redis.memoryUsage(`${prefix}{api}`);
  for (const permit of permits) await permit?.release();

  printTable(
    `Redis round trips of distributedBulkhead({ maxConcurrent: ${maxConcurrent}, leaseMs: ${leaseMs} })`,
    rows,
  );
  printTable('Redis memory of one limit', [
    ['limit key holds', 'bytes (MEMORY USAGE)'],
    [`${maxConcurrent} holders (the limit full)`, String(bytes ?? 0)],
  ]);
  save({ suite: 'semaphore-store-work', maxConcurrent, leaseMs, short, held, full, bytes });
  let met = true;
  met = target('round trips per short call (acquire + release)', short, 2) && met;
  // 2 s / (leaseMs / 3) renewals, plus the acquire and the release.
  met = target('round trips for a call held 2 s', held, 2 + Math.ceil(2_000 / (leaseMs / 3))) && met;
  met = target('round trips per call refused while full', full, 1) && met;
  return met;
}
