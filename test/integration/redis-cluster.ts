// A 3-node Redis Cluster on loopback for one test file: three
// `redis-server --cluster-enabled yes` processes on free ports, joined with
// `redis-cli --cluster create`, stopped by their PIDs.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, createCluster } from 'redis';
import { sleep } from './services.ts';

export interface RedisClusterProcesses {
  readonly ports: readonly number[];
  /** SIGKILLs the node on `port`. */
  kill(port: number): void;
  /** Stops every node still running and removes their files. */
  stop(): Promise<void>;
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port free on loopback whose cluster bus port (port + 10000) is free too. */
async function freeNodePort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if (taken.has(port)) continue;
    if ((await bindable(port)) && (await bindable(port + 10_000))) return port;
  }
  throw new Error('no free port pair for a cluster node');
}

async function untilAnswers(
  port: number,
  check: (client: ReturnType<typeof createClient>) => Promise<boolean>,
) {
  for (let i = 0; i < 100; i++) {
    const client = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } });
    client.on('error', () => {});
    try {
      await client.connect();
      if (await check(client)) return;
    } catch {
      // not up yet
    } finally {
      if (client.isOpen) client.destroy();
    }
    await sleep(100);
  }
  throw new Error(`the cluster node on port ${port} did not come up`);
}

/** The port of the node that owns the slot of `key` (asked of the nodes on `ports`, first that answers). */
export async function nodeOfKey(ports: readonly number[], key: string): Promise<number> {
  for (const port of ports) {
    const client = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } });
    client.on('error', () => {});
    try {
      await client.connect();
      const slot = Number(await client.sendCommand(['CLUSTER', 'KEYSLOT', key]));
      const ranges = (await client.sendCommand(['CLUSTER', 'SLOTS'])) as Array<
        [number, number, [string, number]]
      >;
      for (const [from, to, [, owner]] of ranges) if (slot >= from && slot <= to) return Number(owner);
    } catch {
      // that node is down: ask the next
    } finally {
      if (client.isOpen) client.destroy();
    }
  }
  throw new Error(`no node owns ${key}`);
}

/** Whether redis-server and redis-cli can make a cluster here. */
export function clusterToolsAvailable(): boolean {
  return (
    spawnSync('redis-server', ['--version']).status === 0 &&
    spawnSync('redis-cli', ['--version']).status === 0
  );
}

/** Options for {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /**
   * `cluster-require-full-coverage`: when true (Redis's default), once the
   * nodes agree that a master without a replica has failed, every node answers
   * `CLUSTERDOWN` for every key; when false, the live nodes keep serving their
   * own slots. Default: true.
   */
  readonly requireFullCoverage?: boolean;
}

/** The `cluster-node-timeout` of every node, in milliseconds: how long a node goes unanswered before the others suspect it. */
export const CLUSTER_NODE_TIMEOUT_MS = 1_000;

/** Starts three nodes and joins them into a cluster (no replicas); resolves once every node reports `cluster_state:ok`. */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterProcesses> {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-cluster-'));
  const taken = new Set<number>();
  const ports: number[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freeNodePort(taken);
    taken.add(port);
    ports.push(port);
  }
  const nodes = new Map<number, ChildProcess>();
  // Should the test process die first, the nodes die with it.
  const killAll = () => {
    for (const child of nodes.values())
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const stop = async () => {
    process.off('exit', killAll);
    for (const child of nodes.values())
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await sleep(50);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          String(CLUSTER_NODE_TIMEOUT_MS),
          '--cluster-require-full-coverage',
          options.requireFullCoverage === false ? 'no' : 'yes',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: 'ignore' },
      );
      nodes.set(port, child);
    }
    for (const port of ports) await untilAnswers(port, async (c) => (await c.ping()) === 'PONG');
    const create = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    if (create.status !== 0)
      throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    for (const port of ports)
      await untilAnswers(port, async (c) => (await c.clusterInfo()).includes('cluster_state:ok'));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    ports,
    kill: (port) => nodes.get(port)?.kill('SIGKILL'),
    stop,
  };
}

/** A cluster client as `connectCluster()` returns it. */
export type ClusterClient = ReturnType<typeof createCluster>;

/**
 * A connected cluster client for `nodes`: no reconnects and no offline queue,
 * so a killed node's commands fail at once; its 'error' events are ignored.
 */
export async function connectCluster(nodes: RedisClusterProcesses): Promise<ClusterClient> {
  const cluster = createCluster({
    rootNodes: nodes.ports.map((port) => ({ url: `redis://127.0.0.1:${port}` })),
    defaults: { socket: { connectTimeout: 500, reconnectStrategy: false }, disableOfflineQueue: true },
  });
  cluster.on('error', () => {});
  await cluster.connect();
  return cluster;
}

/** What one node says of the cluster. */
export interface NodeView {
  /** Its `cluster_state`: `ok`, or `fail` while it refuses every key with CLUSTERDOWN. */
  readonly state: string;
  /** The ports of the nodes it flags `fail` (the nodes agreed they are down; `fail?` alone is not counted). */
  readonly failed: readonly number[];
}

/** Asks the nodes on `ports` what they say of the cluster, over one connection each. */
export interface ClusterObserver {
  view(port: number): Promise<NodeView>;
  /** How long a PING to the node on `port` took to be answered (real time), in milliseconds. */
  ping(port: number): Promise<number>;
  close(): void;
}

/** Connects a {@link ClusterObserver} to the nodes on `ports`. */
export async function observeCluster(ports: readonly number[]): Promise<ClusterObserver> {
  const clients = new Map<number, ReturnType<typeof createClient>>();
  const close = () => {
    for (const client of clients.values()) if (client.isOpen) client.destroy();
  };
  try {
    for (const port of ports) {
      const client = createClient({
        url: `redis://127.0.0.1:${port}`,
        socket: { connectTimeout: 500, reconnectStrategy: false },
      });
      client.on('error', () => {});
      clients.set(port, client);
      await client.connect();
    }
  } catch (error) {
    close();
    throw error;
  }
  const clientOf = (port: number) => {
    const client = clients.get(port);
    if (client === undefined) throw new Error(`port ${port} is not observed`);
    return client;
  };
  return {
    async ping(port) {
      const started = performance.now();
      await clientOf(port).ping();
      return performance.now() - started;
    },
    async view(port) {
      const client = clientOf(port);
      const [info, nodes] = await Promise.all([
        client.clusterInfo(),
        client.sendCommand(['CLUSTER', 'NODES']) as Promise<string>,
      ]);
      const failed: number[] = [];
      for (const line of String(nodes).split('\n')) {
        const [, address, flags] = line.split(' ');
        if (address === undefined || flags === undefined) continue;
        if (flags.split(',').includes('fail')) failed.push(Number(/:(\d+)/.exec(address)?.[1]));
      }
      return { state: /cluster_state:(\w+)/.exec(String(info))?.[1] ?? 'unknown', failed };
    },
    close,
  };
}
