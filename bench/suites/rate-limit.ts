// Fleet rate limits on one Redis on loopback: bulwark's rateLimit with
// redisRateLimitStore beside rate-limiter-flexible's RateLimiterRedis (the most
// used distributed limiter for Node), side by side on the same Redis and client.
// Figures: decisions per second for an admitted call (each a round trip), for a
// refused hot key (bulwark answers it from its refused-key cache; the peer is
// given its own in-memory block, `inMemoryBlockOnConsumed`), and round trips per
// decision, counted by wrapping the client.
import { isBulwarkError } from '@bulwark/core';
import { rateLimit } from '@bulwark/rate-limit';
import { redisRateLimitStore } from '@bulwark/redis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { createClient } from 'redis';
import { printTable, runSuite, target } from '../harness.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const RUN = `bench_${process.pid}`;

type RedisClient = ReturnType<typeof createClient>;

/** Methods of the client that are not Redis commands (nothing is sent). */
const LOCAL = new Set(['on', 'off', 'once', 'emit', 'listenerCount', 'removeListener', 'addListener']);

/** The client behind a proxy that counts the commands (and MULTI blocks) it sends. */
function counted(client: RedisClient): { client: RedisClient; trips: () => number } {
  let trips = 0;
  const proxy = new Proxy(client, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string' || LOCAL.has(prop)) return value;
      return (...args: unknown[]) => {
        trips++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { client: proxy, trips: () => trips };
}

function unmeasured(description: string, limit: number, why: string): false {
  console.log(`MISS ${description}: not measured, ${why} (limit ${limit.toFixed(3)})`);
  return false;
}

export async function run(): Promise<boolean> {
  const redis = createClient({
    url: REDIS_URL,
    socket: { connectTimeout: 1_000, reconnectStrategy: false },
    disableOfflineQueue: true,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
  } catch (error) {
    const why = `Redis at ${REDIS_URL} is unreachable (${(error as Error).message})`;
    unmeasured('bulwark round trips per decision', 1, why);
    return false;
  }
  const prefix = `${RUN}:bulwark:`;
  const peerPrefix = `${RUN}:rlf`;
  const noop = () => undefined;
  let met = true;
  try {
    // Admitted: a limit far above what one client can send, so every call is admitted.
    const open = { ratePerSecond: 1e9, burst: 1_000_000 };
    const ours = counted(redis);
    const bulwarkAdmit = rateLimit({
      ...open,
      key: 'hot',
      store: redisRateLimitStore(ours.client, { onStoreError: 'fail-closed', prefix, timeoutMs: 1_000 }),
    });
    const peer = counted(redis);
    const peerAdmit = new RateLimiterRedis({
      storeClient: peer.client,
      useRedisPackage: true,
      keyPrefix: `${peerPrefix}:open`,
      points: 1e9,
      duration: 1,
    });
    // Refused: one call per 1,000 s; the first call uses it up.
    const bulwarkRefuse = rateLimit({
      ratePerSecond: 0.001,
      burst: 1,
      key: 'refused',
      store: redisRateLimitStore(redis, { onStoreError: 'fail-closed', prefix, timeoutMs: 1_000 }),
    });
    const peerRefuse = new RateLimiterRedis({
      storeClient: redis,
      useRedisPackage: true,
      keyPrefix: `${peerPrefix}:closed`,
      points: 1,
      duration: 1_000,
      inMemoryBlockOnConsumed: 1,
      inMemoryBlockDuration: 1_000,
    });
    const refusedByUs = (error: unknown) => {
      if (!isBulwarkError(error, 'ERR_RATE_LIMITED')) throw error;
    };

    // Round trips per decision, over 1,000 admitted decisions each.
    await bulwarkAdmit.execute(noop); // loads the script
    await peerAdmit.consume('hot');
    const n = 1_000;
    let before = ours.trips();
    for (let i = 0; i < n; i++) await bulwarkAdmit.execute(noop);
    const oursPerDecision = (ours.trips() - before) / n;
    before = peer.trips();
    for (let i = 0; i < n; i++) await peerAdmit.consume('hot');
    const peerPerDecision = (peer.trips() - before) / n;
    printTable('round trips per admitted decision (1,000 decisions, counted at the client)', [
      ['limiter', 'round trips'],
      ['bulwark rateLimit + redisRateLimitStore', oursPerDecision.toFixed(3)],
      ['rate-limiter-flexible RateLimiterRedis', peerPerDecision.toFixed(3)],
    ]);

    const result = await runSuite(
      'rate-limit-redis',
      [
        { name: 'one Redis round trip (PING)', call: () => redis.ping() },
        { name: 'bulwark admitted (EVALSHA)', call: () => bulwarkAdmit.execute(noop) },
        { name: 'rate-limiter-flexible admitted (EVAL)', call: () => peerAdmit.consume('hot') },
        {
          name: 'bulwark refused hot key (cached)',
          call: () => bulwarkRefuse.execute(noop).catch(refusedByUs),
          setup: async () => {
            await bulwarkRefuse.execute(noop).catch(refusedByUs);
          },
        },
        {
          name: 'bulwark refused hot key, take() primitive',
          call: () => bulwarkRefuse.take('refused'),
        },
        {
          name: 'rate-limiter-flexible refused (in-memory block)',
          call: () => peerRefuse.consume('refused').catch(noop),
          setup: async () => {
            await peerRefuse.consume('refused').catch(noop);
          },
        },
      ],
      { batch: 1_000, rounds: 21, warmup: 1_000 },
    );
    const ns = (name: string) => result.measurements.find((m) => m.name === name)!.nsPerCall;
    const perSecond = (name: string) => 1e9 / ns(name);
    printTable('decisions per second (best round, sequential awaited calls on one connection)', [
      ['subject', 'decisions/s'],
      ...result.measurements.map((m) => [m.name, (1e9 / m.nsPerCall).toFixed(0)]),
    ]);
    met = target('bulwark round trips per admitted decision', oursPerDecision, 1) && met;
    met =
      target(
        "rate-limiter-flexible's admitted decisions/s ÷ bulwark's (≤ 1: bulwark at least as fast)",
        perSecond('rate-limiter-flexible admitted (EVAL)') / perSecond('bulwark admitted (EVALSHA)'),
        1,
      ) && met;
    met =
      target(
        "bulwark's admitted (round-trip) decisions/s ÷ its cached refusals/s, × 10 (≤ 1: refusals ≥ 10× faster)",
        (10 * perSecond('bulwark admitted (EVALSHA)')) / perSecond('bulwark refused hot key (cached)'),
        1,
      ) && met;
  } finally {
    for (const match of [`${prefix}*`, `${peerPrefix}*`]) {
      for await (const keys of redis.scanIterator({ MATCH: match, COUNT: 1000 })) {
        if (keys.length > 0) await redis.del(keys);
      }
    }
    redis.destroy();
  }
  return met;
}
