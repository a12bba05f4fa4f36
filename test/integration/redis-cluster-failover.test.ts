// Every fleet structure on a 3-node Redis Cluster (started and stopped by this
// file) while one node is SIGKILLed mid-use: the rate limits fail as chosen,
// the distributed bulkhead refuses at once with the store's error and its
// permit on the dead node is reported lost, the breakers go on deciding
// locally (fail static). Every call answers within its bound and the process
// survives. What the keys on the two live nodes get depends on the cluster's
// `cluster-require-full-coverage`, so the test runs once with each:
// - `no`: the live nodes serve their own slots throughout, before and after
//   they agree that the killed node failed.
// - `yes` (Redis's default): the live nodes serve their slots until they agree
//   that the killed node failed (after `cluster-node-timeout` and a round of
//   gossip); from then on they answer CLUSTERDOWN for every key, and every
//   decision fails as chosen.
// The loop after the kill lasts until every live node has agreed, and a few
// rounds more, so both sides of that moment are checked. Each round also
// PINGs every live node over a connection of its own, at the same moment: on
// a loaded machine this process or a node can be starved of CPU for longer
// than the store's timeout, and then a live key's decision may time out (and
// fail as chosen); it is excused only when the PING to its node was just as
// slow, so a decision held up inside the client or the store while its node
// answers at once still fails the test.
import { distributedBulkhead, PermitLostError } from '@bulwark/bulkhead';
import { type CircuitBreakerPolicy, circuitBreaker, consecutive } from '@bulwark/circuit-breaker';
import { isBulwarkError, pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { rateLimit } from '@bulwark/rate-limit';
import { FleetStoreError, redisBreakerStore, redisRateLimitStore, redisSemaphoreStore } from '@bulwark/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ClusterClient,
  type ClusterObserver,
  clusterToolsAvailable,
  connectCluster,
  type NodeView,
  nodeOfKey,
  observeCluster,
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
/**
 * The longest the live nodes may take after the kill to agree that the killed
 * node failed, in milliseconds: `cluster-node-timeout` (1 s) and a round of
 * gossip take about 1.6 s; the rest is room for a loaded machine.
 */
const AGREEMENT_LIMIT_MS = 10_000;
/** Rounds run after every live node has agreed that the killed node failed. */
const ROUNDS_AFTER_AGREEMENT = 3;

/** How a call ended: its value, or its error's code (or message). */
function outcomeOf(value: unknown, failed: boolean): string {
  if (!failed) return String(value);
  if (isBulwarkError(value)) return value.code;
  return value instanceof Error ? value.message : String(value);
}

/** The innermost cause of `error` (the Redis client's own error, for a store's). */
function rootCause(error: unknown): unknown {
  let cause = error;
  while (cause instanceof Error && cause.cause !== undefined) cause = cause.cause;
  return cause;
}

/** Everything a failed call's error says (for a failing expectation's message). */
function detailOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const e = error as Error & Partial<Record<'store' | 'operation' | 'reason' | 'key', unknown>>;
  const cause = rootCause(error);
  const causeText = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
  return `${e.name} store=${String(e.store)} operation=${String(e.operation)} reason=${String(e.reason)} key=${String(e.key)} cause=${causeText}`;
}

interface Timed {
  readonly outcome: string;
  /** How long the call took (real time), in milliseconds. */
  readonly ms: number;
  /** The error the call failed with, if it failed. */
  readonly error: unknown;
  /** How it ended, when and how fast, and its error in full. */
  readonly detail: string;
}

/** Runs `call`, returning how it ended and how long it took (real time), timed from `since`. */
async function timed(call: () => Promise<unknown>, since: number): Promise<Timed> {
  const started = performance.now();
  const { outcome, error } = await call().then(
    (v) => ({ outcome: outcomeOf(v, false), error: undefined }),
    (e: unknown) => ({ outcome: outcomeOf(e, true), error: e }),
  );
  const ms = performance.now() - started;
  const when = `at ${(started - since).toFixed(0)} ms after the kill, in ${ms.toFixed(0)} ms`;
  return {
    outcome,
    ms,
    error,
    detail: `${outcome} ${when}${error === undefined ? '' : ` ${detailOf(error)}`}`,
  };
}

/** Whether `r` is a store error because no answer came within the store's timeout. */
function timedOut(r: Timed): boolean {
  return r.outcome === 'ERR_STORE_UNAVAILABLE' && (r.error as { reason?: unknown }).reason === 'timeout';
}

/** Whether `r` is a store error because the node answered CLUSTERDOWN. */
function clusterDown(r: Timed): boolean {
  const cause = rootCause(r.error);
  return (
    r.outcome === 'ERR_STORE_UNAVAILABLE' &&
    (r.error as { reason?: unknown }).reason === 'unavailable' &&
    cause instanceof Error &&
    cause.message.startsWith('CLUSTERDOWN')
  );
}

for (const fullCoverage of [false, true]) {
  const setting = `cluster-require-full-coverage ${fullCoverage ? 'yes (the default)' : 'no'}`;
  describe.skipIf(!available)(`fleet policies on a 3-node Redis Cluster losing a node, ${setting}`, () => {
    let nodes: RedisClusterProcesses;
    let cluster: ClusterClient;
    let observer: ClusterObserver;
    beforeAll(async () => {
      nodes = await startRedisCluster({ requireFullCoverage: fullCoverage });
      cluster = await connectCluster(nodes);
      observer = await observeCluster(nodes.ports);
    }, 60_000);
    afterAll(async () => {
      observer?.close();
      try {
        cluster?.destroy();
      } catch {
        // the connection to the killed node is closed already
      }
      await nodes?.stop();
    });

    const title = fullCoverage
      ? 'live nodes serve their keys until they agree the killed node failed, then every key fails as chosen with CLUSTERDOWN; all within bounds'
      : 'live nodes serve their keys before and after they agree the killed node failed; the killed node’s keys fail as chosen; all within bounds';
    it(title, async () => {
      const unhandled: unknown[] = [];
      const collect = (error: unknown) => unhandled.push(error);
      process.on('unhandledRejection', collect);
      process.on('uncaughtException', collect);
      const structurePrefix = `${prefix}${fullCoverage ? 'full' : 'partial'}:`;
      try {
        const keys = Array.from({ length: 9 }, (_, i) => `svc-${i}`);
        const owner = new Map<string, number>();
        // The hash tag is the key alone: every structure's key of one name is in one slot.
        for (const key of keys) owner.set(key, await nodeOfKey(nodes.ports, `${structurePrefix}{${key}}`));
        const victim = owner.get(keys[0]!)!;
        const live = nodes.ports.filter((port) => port !== victim);
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
              prefix: `${structurePrefix}rate:`,
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
              prefix: `${structurePrefix}rate-open:`,
              timeoutMs: TIMEOUT_MS,
            }),
          }),
        );
        const semaphores = redisSemaphoreStore(cluster, {
          prefix: `${structurePrefix}sem:`,
          timeoutMs: TIMEOUT_MS,
        });
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
          prefix: `${structurePrefix}breaker:`,
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
        let killedAt = performance.now();
        const round = (key: string) =>
          Promise.all([
            timed(() => closedLimit.execute(() => 'ran', { operation: key }), killedAt),
            timed(() => openLimit.execute(() => 'ran', { operation: key }), killedAt),
            timed(() => bulkheads.get(key)!.execute(() => 'ran'), killedAt),
            timed(() => breakers.get(key)!.execute(() => 'ran'), killedAt),
          ]);
        const views = async () =>
          new Map(await Promise.all(live.map(async (p) => [p, await observer.view(p)] as const)));

        // Before: everything decides on every node (this also loads each script on each node).
        for (const key of keys) {
          for (const r of await round(key)) expect(r.outcome, `${key}: ${r.detail}`).toBe('ran');
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
        killedAt = performance.now();
        let rounds = 0;
        let slowest = 0;
        let agreedAfterMs: number | undefined;
        let roundsAfterAgreement = 0;
        /** Live-key timeouts in rounds whose PING to the same node was as slow. */
        const excused: string[] = [];
        /** Live-key decisions after the agreement: served (without full coverage) or refused with CLUSTERDOWN (with it). */
        let checkedAfterAgreement = 0;
        /** Whether every live node has agreed that the victim failed (and, with full coverage, refuses every key). */
        const agreed = (seen: Map<number, NodeView>) =>
          live.every((p) => {
            const view = seen.get(p)!;
            return view.failed.includes(victim) && (!fullCoverage || view.state === 'fail');
          });
        while (roundsAfterAgreement < ROUNDS_AFTER_AGREEMENT || performance.now() - killedAt < 2 * LEASE_MS) {
          const elapsed = performance.now() - killedAt;
          expect(
            elapsed,
            `the live nodes did not agree within ${AGREEMENT_LIMIT_MS} ms that the killed node failed`,
          ).toBeLessThan(AGREEMENT_LIMIT_MS);
          rounds++;
          await sleep(10);
          const before = await views();
          // The PINGs start with the round's calls, in the same turn of the event loop.
          const pinging = Promise.all(live.map(async (p) => [p, await observer.ping(p)] as const));
          const results = await Promise.all(keys.map(round));
          const pings = new Map(await pinging);
          const slowestPing = Math.max(...pings.values());
          const after = await views();
          const agreedBefore = agreed(before);
          if (agreedBefore) {
            agreedAfterMs ??= elapsed;
            roundsAfterAgreement++;
          }
          keys.forEach((key, i) => {
            const [closed, open, bulk, breaker] = results[i]!;
            for (const r of results[i]!) {
              expect(r.ms, `${key}: ${r.detail}`).toBeLessThan(TIMEOUT_MS + 400);
              slowest = Math.max(slowest, r.ms);
            }
            // fail-open admits and the breaker never waits on its store, whatever Redis says.
            expect(open!.outcome, `${key}: ${open!.detail}`).toBe('ran');
            expect(breaker!.outcome, `${key}: ${breaker!.detail}`).toBe('ran');
            // Far below the store's timeout: the breaker never waits on its store. A
            // process starved of CPU takes longer, and its PINGs then took longer still.
            expect(
              breaker!.ms,
              `${key}: ${breaker!.detail}; slowest PING ${slowestPing.toFixed(0)} ms`,
            ).toBeLessThan(Math.max(TIMEOUT_MS / 2, slowestPing));
            // The rate limit fails closed and the bulkhead always does.
            for (const r of [closed!, bulk!]) {
              if (onVictim(key)) {
                expect(r.outcome, `${key}: ${r.detail}`).toBe('ERR_STORE_UNAVAILABLE');
                continue;
              }
              const node = owner.get(key)!;
              const ping = pings.get(node)!;
              if (timedOut(r) && ping >= TIMEOUT_MS / 2) {
                // The node (or this process) was starved: its PING took most of the timeout too.
                excused.push(`${key}: ${r.detail}; PING to its node ${ping.toFixed(0)} ms`);
                continue;
              }
              const witness = `${key}: ${r.detail}; PING to its node ${ping.toFixed(0)} ms`;
              if (!fullCoverage) {
                // The live nodes never refuse their own slots.
                expect(before.get(node)!.state).toBe('ok');
                expect(after.get(node)!.state).toBe('ok');
                expect(r.outcome, witness).toBe('ran');
                if (agreedBefore) checkedAfterAgreement++;
              } else if (before.get(node)!.state === 'fail') {
                // The node said it refuses every key before the round began.
                expect(clusterDown(r), witness).toBe(true);
                if (agreedBefore) checkedAfterAgreement++;
              } else if (after.get(node)!.state === 'fail') {
                // It began refusing during the round: either answer, and no other.
                expect(r.outcome === 'ran' || clusterDown(r), witness).toBe(true);
              } else {
                expect(r.outcome, witness).toBe('ran');
              }
            }
          });
        }

        console.log(
          `${setting}: the live nodes agreed the killed node failed ${agreedAfterMs?.toFixed(0)} ms after the kill; ` +
            `${rounds} rounds; the slowest call answered in ${slowest.toFixed(0)} ms; ` +
            `${excused.length} live-key timeouts while the node's PING was as slow${excused.length > 0 ? `:\n${excused.join('\n')}` : ''}`,
        );
        // Excused timeouts aside, the live nodes' keys were seen after the agreement.
        expect(checkedAfterAgreement).toBeGreaterThan(0);
        // The holder could not renew on the dead node: after a lease without a
        // confirmed renewal its work is told the permit may be someone else's.
        expect(held!.signal.aborted).toBe(true);
        expect(held!.signal.reason).toBeInstanceOf(PermitLostError);
        expect((held!.signal.reason as PermitLostError).reason).toBe('unconfirmed');
        await held!.release(); // its release fails on the dead node, quietly

        // Breakers: each one on the dead node reported its failed reads and kept
        // deciding; on the live nodes, only CLUSTERDOWN can fail a read.
        for (const key of keys) {
          const errors = breakerErrors.get(key)!;
          if (onVictim(key)) {
            expect(errors.length).toBeGreaterThan(0);
            expect(errors.every((e) => e instanceof FleetStoreError && e.reason !== 'corrupt')).toBe(true);
          } else if (!fullCoverage) expect(errors).toEqual([]);
          else
            for (const e of errors)
              expect(e instanceof FleetStoreError && rootCause(e) instanceof Error, String(e)).toBe(true);
          if (fullCoverage && !onVictim(key))
            for (const e of errors) expect((rootCause(e) as Error).message).toMatch(/^CLUSTERDOWN/);
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

        // No permit leaked on the live nodes (readable only while they serve their slots).
        if (!fullCoverage)
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
}
