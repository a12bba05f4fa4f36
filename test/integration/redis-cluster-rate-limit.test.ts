// The Redis rate-limit store on a 3-node Redis Cluster that this file starts
// and stops: keys are hash-tagged and each decision is one script on the node
// owning its slot; 4 processes share one limit; a SIGKILLed node fails its
// keys as chosen, within the timeout, while the other nodes keep deciding.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { isBulwarkError } from '@bulwark/core';
import { RateLimitStoreError, rateLimit } from '@bulwark/rate-limit';
import { type RedisScriptClient, redisRateLimitStore } from '@bulwark/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ClusterClient,
  clusterToolsAvailable,
  connectCluster,
  nodeOfKey,
  type RedisClusterProcesses,
  startRedisCluster,
} from './redis-cluster.ts';
import { RUN_ID } from './services.ts';

const available = clusterToolsAvailable();
if (!available) {
  if (process.env.CI === 'true')
    throw new Error('redis-server and redis-cli are required (scripts/services.sh)');
  console.log('skipping the Redis Cluster tests: redis-server or redis-cli is not installed');
}
const prefix = `bulwark:test:${RUN_ID}:cluster:`;

type Cluster = ClusterClient;

describe.skipIf(!available)('Redis rate-limit store on a 3-node Redis Cluster', () => {
  let nodes: RedisClusterProcesses;
  let cluster: Cluster;
  beforeAll(async () => {
    // The live nodes keep serving their slots after the others agree a node failed
    // (with full coverage required, every key would get CLUSTERDOWN from then on).
    nodes = await startRedisCluster({ requireFullCoverage: false });
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

  it('decides keys on every node with one round trip each, each key in its own hash-tagged slot', async () => {
    let trips = 0;
    const counted: RedisScriptClient = {
      evalSha: (sha, options) => {
        trips++;
        return cluster.evalSha(sha, options);
      },
      eval: (script, options) => {
        trips++;
        return cluster.eval(script, options);
      },
    };
    const store = redisRateLimitStore(counted, { onStoreError: 'fail-closed', prefix, timeoutMs: 2_000 });
    const limit = rateLimit({ ratePerSecond: 0.1, burst: 2, store, key: (ctx) => ctx.operation ?? '' });
    const keys = Array.from({ length: 12 }, (_, i) => `tenant-${i}`);
    const owners = new Set<number>();
    for (const key of keys) owners.add(await nodeOfKey(nodes.ports, `${prefix}{${key}}`));
    expect(owners.size).toBe(3);
    // Load the script on every node first (EVALSHA then EVAL the first time on each).
    for (const key of keys) await limit.execute(() => 1, { operation: key });
    trips = 0;
    for (const key of keys) await limit.execute(() => 1, { operation: key });
    expect(trips).toBe(keys.length);
    for (const key of keys) {
      const error = await limit.execute(() => 1, { operation: key }).catch((e: unknown) => e);
      expect(isBulwarkError(error, 'ERR_RATE_LIMITED')).toBe(true);
    }
  });

  it('holds a shared limit across 4 processes to within 2% of rate × time + burst', async () => {
    const seconds = 5;
    const fixture = new URL('./fixtures/rate-limiter.ts', import.meta.url).pathname;
    const url = `cluster:redis://127.0.0.1:${nodes.ports[0]}`;
    const children = Array.from({ length: 4 }, () =>
      spawn(process.execPath, ['--conditions=bulwark-source', fixture, url, prefix, 'fleet'], {
        stdio: ['pipe', 'pipe', 'inherit'],
      }),
    );
    try {
      const outputs = children.map((child) => {
        const lines = createInterface({ input: child.stdout! });
        let ready!: () => void;
        const isReady = new Promise<void>((resolve) => (ready = resolve));
        const result = new Promise<{ admitted: number }>((resolve, reject) => {
          lines.on('line', (line) => {
            if (line === 'ready') ready();
            else if (line.startsWith('{')) resolve(JSON.parse(line));
          });
          child.on('exit', (code) => reject(new Error(`a limiter process exited with code ${code}`)));
        });
        return { isReady, result };
      });
      await Promise.all(outputs.map((o) => o.isReady));
      // One window for all: each process starts and stops on the same wall-clock instants, so a
      // process that gets the CPU late cannot stretch the window the limit is measured over.
      const start = Date.now() + 200;
      for (const child of children) child.stdin!.write(`go ${start} ${start + seconds * 1000}\n`);
      const results = await Promise.all(outputs.map((o) => o.result));
      const total = results.reduce((sum, r) => sum + r.admitted, 0);
      const expected = 200 * seconds + 20;
      console.log(`4 processes admitted ${total} on the cluster (expected ${expected})`);
      expect(Math.abs(total - expected)).toBeLessThanOrEqual(expected * 0.02);
    } finally {
      for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 60_000);

  it('fails the keys of a SIGKILLed node as chosen, within the timeout, and keeps deciding on the others', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `after-kill-${i}`);
    const owner = new Map<string, number>();
    for (const key of keys) owner.set(key, await nodeOfKey(nodes.ports, `${prefix}{${key}}`));
    const victim = owner.get(keys[0]!)!;
    const closed = rateLimit({
      ratePerSecond: 100,
      burst: 100,
      key: (ctx) => ctx.operation ?? '',
      store: redisRateLimitStore(cluster, { onStoreError: 'fail-closed', prefix, timeoutMs: 300 }),
    });
    const open = rateLimit({
      ratePerSecond: 100,
      burst: 100,
      key: (ctx) => ctx.operation ?? '',
      store: redisRateLimitStore(cluster, { onStoreError: 'fail-open', prefix, timeoutMs: 300 }),
    });
    nodes.kill(victim);
    for (const key of keys) {
      const started = performance.now();
      const outcome = await closed.execute(() => 'ran', { operation: key }).catch((e: unknown) => e);
      expect(performance.now() - started).toBeLessThan(1_000);
      if (owner.get(key) === victim) {
        expect(outcome).toBeInstanceOf(RateLimitStoreError);
        await expect(open.execute(() => 'ran', { operation: key })).resolves.toBe('ran');
      } else {
        expect(outcome).toBe('ran');
      }
    }
  }, 30_000);
});
