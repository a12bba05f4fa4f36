// Every fleet structure on one 3-node Redis Cluster (started and stopped by
// this file) while one node is SIGKILLed mid-use: the rate limits fail as
// chosen, the distributed bulkhead refuses at once with the store's error and
// its permit on the dead node is reported lost, the breakers go on deciding
// locally (fail static). Keys on the two live nodes are unaffected, every call
// answers within its bound, and the process survives.
import { distributedBulkhead, PermitLostError } from '@bulwark/bulkhead';
import { type CircuitBreakerPolicy, circuitBreaker, consecutive } from '@bulwark/circuit-breaker';
import { isBulwarkError, pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { rateLimit } from '@bulwark/rate-limit';
import { FleetStoreError, redisBreakerStore, redisRateLimitStore, redisSemaphoreStore } from '@bulwark/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ClusterClient,
  clusterToolsAvailable,
  connectCluster,
  nodeOfKey,
  type RedisClusterProcesses,
  startRedisCluster,
} from './redis-cluster.ts';
import { RUN_ID, sleep } from './services.ts';

const available = clusterToolsAvailable();
if (!available) {
  if (process.env.CI === 'true')
    throw new Error('redis-server and redis-cli are required (scripts/services.sh)');
  console.log('skipping the Redis Cluster failover test: redis-server or redis-cli is not installed');
}
const prefix = `bulwark:test:${RUN_ID}:failover:`;
/** Every store's command timeout, in milliseconds. */
const TIMEOUT_MS = 300;
/** The caller's deadline around each call, in milliseconds. */
const DEADLINE_MS = 1_000;
const LEASE_MS = 600;

type Cluster = ClusterClient;

/** How a call ended: its value, or its error's code (or message). */
function outcomeOf(value: unknown, failed: boolean): string {
  if (!failed) return String(value);
  if (isBulwarkError(value)) return value.code;
  return value instanceof Error ? value.message : String(value);
}

/** Runs `call`, returning how it ended and how long it took (real time). */
async function timed(call: () => Promise<unknown>): Promise<{ outcome: string; ms: number }> {
  const started = performance.now();
  const outcome = await call().then(
    (v) => outcomeOf(v, false),
    (e: unknown) => outcomeOf(e, true),
  );
  return { outcome, ms: performance.now() - started };
}

describe.skipIf(!available)('fleet policies on a 3-node Redis Cluster losing a node', () => {
  let nodes: RedisClusterProcesses;
  let cluster: Cluster;
  beforeAll(async () => {
    nodes = await startRedisCluster();
    cluster = await connectCluster(nodes);
  }, 60_000);
  afterAll(async () => {
    try {
      cluster?.destroy();
    } catch {
      // the connection to the killed node is closed already
    }
    await nodes?.stop();
  });

  it('rate limits fail as chosen, the bulkhead refuses with ERR_STORE_UNAVAILABLE, breakers fail static, all within bounds', async () => {
    const unhandled: unknown[] = [];
    const collect = (error: unknown) => unhandled.push(error);
    process.on('unhandledRejection', collect);
    process.on('uncaughtException', collect);
    try {
      const keys = Array.from({ length: 9 }, (_, i) => `svc-${i}`);
      const owner = new Map<string, number>();
      // The hash tag is the key alone: every structure's key of one name is in one slot.
      for (const key of keys) owner.set(key, await nodeOfKey(nodes.ports, `${prefix}{${key}}`));
      const victim = owner.get(keys[0]!)!;
      const onVictim = (key: string) => owner.get(key) === victim;
      expect(keys.filter(onVictim).length).toBeGreaterThan(0);
      expect(keys.filter((k) => !onVictim(k)).length).toBeGreaterThan(0);

      const byKey = (ctx: { operation?: string | undefined }) => ctx.operation ?? '';
      const closedLimit = pipeline(
        deadline(DEADLINE_MS),
        rateLimit({
          ratePerSecond: 1_000,
          burst: 1_000,
          key: byKey,
          store: redisRateLimitStore(cluster, {
            onStoreError: 'fail-closed',
            prefix: `${prefix}rate:`,
            timeoutMs: TIMEOUT_MS,
          }),
        }),
      );
      const openLimit = pipeline(
        deadline(DEADLINE_MS),
        rateLimit({
          ratePerSecond: 1_000,
          burst: 1_000,
          key: byKey,
          store: redisRateLimitStore(cluster, {
            onStoreError: 'fail-open',
            prefix: `${prefix}rate-open:`,
            timeoutMs: TIMEOUT_MS,
          }),
        }),
      );
      const semaphores = redisSemaphoreStore(cluster, { prefix: `${prefix}sem:`, timeoutMs: TIMEOUT_MS });
      const bulkheads = new Map(
        keys.map((key) => [
          key,
          pipeline(
            deadline(DEADLINE_MS),
            distributedBulkhead({ maxConcurrent: 4, leaseMs: LEASE_MS, key, store: semaphores }),
          ),
        ]),
      );
      const breakerStore = redisBreakerStore(cluster, {
        prefix: `${prefix}breaker:`,
        timeoutMs: TIMEOUT_MS,
        syncIntervalMs: 20,
      });
      const breakerErrors = new Map<string, unknown[]>(keys.map((k) => [k, []]));
      const breakers = new Map<string, CircuitBreakerPolicy>(
        keys.map((key) => {
          const breaker = circuitBreaker({
            name: key,
            trip: consecutive(2),
            openMs: 30_000,
            store: breakerStore,
          });
          breaker.onError(({ error }) => breakerErrors.get(key)!.push(error));
          return [key, breaker];
        }),
      );
      const round = (key: string) =>
        Promise.all([
          timed(() => closedLimit.execute(() => 'ran', { operation: key })),
          timed(() => openLimit.execute(() => 'ran', { operation: key })),
          timed(() => bulkheads.get(key)!.execute(() => 'ran')),
          timed(() => breakers.get(key)!.execute(() => 'ran')),
        ]);

      // Before: everything decides on every node (this also loads each script on each node).
      for (const key of keys) {
        for (const { outcome } of await round(key)) expect(outcome).toBe('ran');
      }
      await sleep(50);
      for (const errors of breakerErrors.values()) expect(errors).toEqual([]);
      // A permit held on the node about to die, by work that watches its signal.
      const holder = distributedBulkhead({
        maxConcurrent: 4,
        leaseMs: LEASE_MS,
        key: keys[0]!,
        store: semaphores,
      });
      const held = await holder.tryAcquire();
      expect(held).toBeDefined();

      nodes.kill(victim);
      const killedAt = performance.now();
      let rounds = 0;
      let slowest = 0;
      while (performance.now() - killedAt < 2 * LEASE_MS || rounds < 3) {
        rounds++;
        await sleep(10);
        const results = await Promise.all(keys.map(round));
        keys.forEach((key, i) => {
          const [closed, open, bulk, breaker] = results[i]!;
          for (const r of results[i]!) {
            expect(r.ms, `${key}: ${r.outcome}`).toBeLessThan(TIMEOUT_MS + 400);
            slowest = Math.max(slowest, r.ms);
          }
          // fail-closed refuses with the store's error, fail-open admits; the bulkhead fails closed;
          // the breaker never waits on its store.
          expect(closed!.outcome).toBe(onVictim(key) ? 'ERR_STORE_UNAVAILABLE' : 'ran');
          expect(open!.outcome).toBe('ran');
          expect(bulk!.outcome).toBe(onVictim(key) ? 'ERR_STORE_UNAVAILABLE' : 'ran');
          expect(breaker!.outcome).toBe('ran');
          // Far below the store's timeout: the breaker never waits on its store (a
          // loaded machine can still stall an event loop for tens of milliseconds).
          expect(breaker!.ms).toBeLessThan(TIMEOUT_MS / 2);
        });
      }

      console.log(`${rounds} rounds after the kill; the slowest call answered in ${slowest.toFixed(0)} ms`);
      // The holder could not renew on the dead node: after a lease without a
      // confirmed renewal its work is told the permit may be someone else's.
      expect(held!.signal.aborted).toBe(true);
      expect(held!.signal.reason).toBeInstanceOf(PermitLostError);
      expect((held!.signal.reason as PermitLostError).reason).toBe('unconfirmed');
      await held!.release(); // its release fails on the dead node, quietly

      // Breakers: each one on the dead node reported its failed reads and kept deciding.
      for (const key of keys) {
        const errors = breakerErrors.get(key)!;
        if (!onVictim(key)) expect(errors).toEqual([]);
        else {
          expect(errors.length).toBeGreaterThan(0);
          expect(errors.every((e) => e instanceof FleetStoreError && e.reason !== 'corrupt')).toBe(true);
        }
        expect(breakers.get(key)!.state).toBe('closed');
      }
      // A failing dependency still opens a breaker whose store is gone, at once.
      const stranded = breakers.get(keys[0]!)!;
      for (let i = 0; i < 2; i++)
        await stranded.execute(() => Promise.reject(new Error('down'))).catch(() => {});
      expect(stranded.state).toBe('open');
      await expect(stranded.execute(() => 'ran')).rejects.toSatisfy((e) =>
        isBulwarkError(e, 'ERR_CIRCUIT_OPEN'),
      );

      // No permit leaked on the live nodes.
      for (const key of keys.filter((k) => !onVictim(k)))
        expect(await cluster.hLen(semaphores.redisKey(key))).toBe(0);
      await sleep(TIMEOUT_MS + 50); // any late failure of a publish lands before the check below
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', collect);
      process.off('uncaughtException', collect);
    }
  }, 30_000);
});
