// What the shared breaker store (redisBreakerStore) costs a closed breaker on
// the happy path, on a Redis this suite starts for itself on a free loopback
// port (bench/redis-server.ts; REDIS_URL points it elsewhere) and stops by its
// PID at the end.
//
// Figures:
//   - Redis work during a run of successful calls: round trips counted at the
//     store's interface (publishes and reads), by the store (stats()), and at
//     the server (INFO commandstats): the target is no round trip per call,
//     only the one background read per syncIntervalMs that a closed breaker
//     taking calls makes;
//   - Redis work while the breaker is idle (none);
//   - round trips per state change (open, half-open, close);
//   - nanoseconds per call with and without the store;
//   - Redis memory of a breaker key with 1 and 4 instances' opens.
import {
  type BreakerSnapshot,
  type BreakerStateStore,
  circuitBreaker,
  consecutive,
} from '@bulwark/circuit-breaker';
import { redisBreakerStore } from '@bulwark/redis';
import { printTable, runSuite, save, target } from '../harness.ts';
import { type BenchRedisClient, connectBenchRedis, startBenchRedis } from '../redis-server.ts';

const RUN = `bench_${process.pid}`;

type RedisClient = BenchRedisClient;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A store that forwards to `inner`, counting publishes and reads at the interface. */
function countedStore(inner: BreakerStateStore, syncIntervalMs: number | undefined) {
  const counts = { publishes: 0, reads: 0 };
  const store: BreakerStateStore = {
    syncIntervalMs,
    publish(key: string, snapshot: BreakerSnapshot) {
      counts.publishes++;
      return inner.publish(key, snapshot);
    },
    read(key: string) {
      counts.reads++;
      return inner.read(key);
    },
  };
  return { store, counts };
}

/** Loads the store's scripts on the server (an open, a read, a close), so that no NOSCRIPT fallback is counted below. */
async function warmScripts(redis: RedisClient, prefix: string): Promise<void> {
  const store = redisBreakerStore(redis, { prefix, instanceId: 'warm-up' });
  await store.publish('warm-up', { version: 1, state: 'open', openRemainingMs: 1_000, trips: 1 });
  await store.read('warm-up');
  await store.publish('warm-up', { version: 1, state: 'closed', openRemainingMs: 0, trips: 0 });
}

/** Script calls and all commands (those the scripts ran included) since the last CONFIG RESETSTAT. */
async function serverCommands(redis: RedisClient): Promise<{ scripts: number; commands: number }> {
  let scripts = 0;
  let commands = 0;
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m === null || m[1] === 'info' || m[1]!.startsWith('config')) continue;
    commands += Number(m[2]);
    if (m[1] === 'eval' || m[1] === 'evalsha') scripts += Number(m[2]);
  }
  return { scripts, commands };
}

function unmeasured(description: string, why: string): false {
  console.log(`MISS ${description}: not measured, ${why}`);
  return false;
}

export async function run(): Promise<boolean> {
  let server: Awaited<ReturnType<typeof startBenchRedis>>;
  try {
    server = await startBenchRedis();
  } catch (error) {
    return unmeasured('Redis round trips per call with the shared breaker store', (error as Error).message);
  }
  try {
    return await measure(server.url, server.pid);
  } finally {
    await server.stop();
  }
}

async function measure(url: string, pid: number | undefined): Promise<boolean> {
  const connected = await connectBenchRedis(url, pid);
  if ('unreachable' in connected) {
    return unmeasured('Redis round trips per call with the shared breaker store', connected.unreachable);
  }
  const redis = connected.redis;
  const prefix = `${RUN}:breaker:`;
  const work = async (): Promise<number> => 1;
  let met = true;
  try {
    // 1. The happy path: a closed breaker taking successful calls as fast as it can.
    const redisStore = redisBreakerStore(redis, { quorum: 2, prefix, instanceId: 'bench-a' });
    const syncMs = redisStore.syncIntervalMs;
    const happy = countedStore(redisStore, syncMs);
    const shared = circuitBreaker({ name: 'happy', store: happy.store });
    await warmScripts(redis, prefix);
    // Calls for 2.5 s, back to back in batches of 1,000 with a turn of the event
    // loop between batches (as a server between requests), so that the
    // background reads' replies are taken in.
    await redis.configResetStat();
    const start = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - start) / 1e9;
    let calls = 0;
    while (elapsed() < 2.5) {
      for (let i = 0; i < 1_000; i++) await shared.execute(work);
      calls += 1_000;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const seconds = elapsed();
    await pause(50); // a background read still in flight lands
    const busy = await serverCommands(redis);
    const busyTrips = redisStore.stats().roundTrips;
    const allowedReads = 1 + Math.floor((seconds * 1000) / syncMs);

    // 2. Idle: the same breaker, no calls for a little over one syncIntervalMs.
    await redis.configResetStat();
    const idleFrom = { ...happy.counts, trips: redisStore.stats().roundTrips };
    await pause(syncMs + 200);
    const idle = await serverCommands(redis);
    const idleTrips = redisStore.stats().roundTrips - idleFrom.trips;

    printTable(
      `Redis work of a closed breaker with redisBreakerStore (syncIntervalMs ${syncMs}), counted at the store interface, the store and the server`,
      [
        [
          'phase',
          'calls',
          'seconds',
          'publish() calls',
          'read() calls',
          'round trips',
          'server scripts',
          'server commands',
          'commands per call',
        ],
        [
          'successful calls, back to back',
          String(calls),
          seconds.toFixed(2),
          String(happy.counts.publishes),
          String(happy.counts.reads),
          String(busyTrips),
          String(busy.scripts),
          String(busy.commands),
          (busy.commands / calls).toExponential(1),
        ],
        [
          `idle for ${((syncMs + 200) / 1000).toFixed(1)} s`,
          '0',
          ((syncMs + 200) / 1000).toFixed(2),
          String(happy.counts.publishes - idleFrom.publishes),
          String(happy.counts.reads - idleFrom.reads),
          String(idleTrips),
          String(idle.scripts),
          String(idle.commands),
          '-',
        ],
      ],
    );

    // 3. State changes: one failure opens (consecutive(1)), openMs later a probe closes.
    const changesStore = redisBreakerStore(redis, { quorum: 2, prefix, instanceId: 'bench-b' });
    const changes = countedStore(changesStore, undefined);
    const flipping = circuitBreaker({
      name: 'flip',
      store: changes.store,
      trip: consecutive(1),
      openMs: 100,
    });
    const rows: string[][] = [
      ['state change', 'publish() calls', 'read() calls', 'round trips', 'server scripts'],
    ];
    const step = async (name: string, act: () => Promise<unknown>) => {
      await redis.configResetStat();
      const before = { ...changes.counts, trips: changesStore.stats().roundTrips };
      await act();
      await pause(50); // the publish, sent without waiting, lands
      const s = await serverCommands(redis);
      const trips = changesStore.stats().roundTrips - before.trips;
      rows.push([
        name,
        String(changes.counts.publishes - before.publishes),
        String(changes.counts.reads - before.reads),
        String(trips),
        String(s.scripts),
      ]);
      return Math.max(trips, s.scripts);
    };
    const openTrips = await step('closed → open (a failure)', () =>
      flipping
        .execute(async () => {
          throw new Error('down');
        })
        .catch(() => undefined),
    );
    const halfTrips = await step('open → half-open (openMs passed)', async () => {
      await pause(120);
      return flipping.state;
    });
    const closeTrips = await step('half-open → closed (the probe succeeded)', () => flipping.execute(work));
    await flipping
      .execute(async () => {
        throw new Error('down');
      })
      .catch(() => undefined); // open again
    await pause(50);
    const refusedTrips = await step('none: open, refusing 1,000 calls', async () => {
      for (let i = 0; i < 1_000; i++) await flipping.execute(work).catch(() => undefined);
    });
    printTable(
      'round trips per state change (publishes sent without waiting; no background reads: the store has no syncIntervalMs)',
      rows,
    );

    // 4. Nanoseconds per call with and without the store.
    const plain = circuitBreaker({ name: 'plain' });
    const withStore = circuitBreaker({
      name: 'timed',
      // The timed loop below never yields to the event loop, so the one read it
      // starts is answered only after it; a long timeout keeps that from being
      // reported as a store failure.
      store: redisBreakerStore(redis, { quorum: 2, prefix, instanceId: 'bench-c', timeoutMs: 600_000 }),
    });
    const result = await runSuite('breaker-store-closed', [
      { name: 'bare call', call: () => work() },
      { name: 'circuitBreaker, no store', call: () => plain.execute(work) },
      { name: 'circuitBreaker + redisBreakerStore', call: () => withStore.execute(work) },
    ]);
    const ns = (name: string) => result.measurements.find((m) => m.name === name)!.overheadNs;
    console.log(
      `the store adds ${(ns('circuitBreaker + redisBreakerStore') - ns('circuitBreaker, no store')).toFixed(0)} ns per call on the happy path`,
    );

    // 5. Redis memory of one breaker key.
    const memory: string[][] = [['breaker key holds', 'bytes (MEMORY USAGE)']];
    const memKey = 'memory';
    for (const instances of [1, 4]) {
      for (let i = 0; i < instances; i++) {
        await redisBreakerStore(redis, { prefix, instanceId: `instance-${i}-${'x'.repeat(28)}` }).publish(
          memKey,
          {
            version: 1,
            state: 'open',
            openRemainingMs: 10_000,
            trips: 1,
          },
        );
      }
      memory.push([
        `the opens of ${instances} instance${instances === 1 ? '' : 's'} (36-character ids)`,
        String(await redis.memoryUsage(`${prefix}{${memKey}}`)),
      ]);
    }
    printTable('Redis memory of one breaker key', memory);

    met =
      target(
        `round trips in ${calls.toLocaleString('en')} successful calls ÷ the reads syncIntervalMs allows in ${seconds.toFixed(2)} s, ${allowedReads} (≤ 1: none per call)`,
        busyTrips / allowedReads,
        1,
      ) && met;
    met = target('server commands while idle', idle.commands, 0) && met;
    met = target('round trips while open and refusing 1,000 calls', refusedTrips, 0) && met;
    met = target('round trips for closed → open', openTrips, 1) && met;
    met = target('round trips for open → half-open', halfTrips, 0) && met;
    met = target('round trips for half-open → closed', closeTrips, 1) && met;
    save({
      suite: 'breaker-store-work',
      syncIntervalMs: syncMs,
      calls,
      seconds,
      busy: { ...busy, roundTrips: busyTrips, publishes: happy.counts.publishes, reads: happy.counts.reads },
      idle: { ...idle, roundTrips: idleTrips },
      stateChanges: {
        open: openTrips,
        halfOpen: halfTrips,
        close: closeTrips,
        refusedWhileOpen: refusedTrips,
      },
    });
  } finally {
    for await (const keys of redis.scanIterator({ MATCH: `${RUN}:*`, COUNT: 1000 })) {
      if (keys.length > 0) await redis.del(keys);
    }
    redis.destroy();
  }
  return met;
}
