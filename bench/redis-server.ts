// A Redis for one benchmark suite: a redis-server of its own on a free loopback
// port, with persistence off and its files in a temporary directory, stopped by
// its PID when the suite ends (and killed should the suite's process exit
// first). Its counters (INFO commandstats, CONFIG RESETSTAT) then count only
// what the suite sent, and a shared Redis is neither loaded nor polluted.
// REDIS_URL points the suite at an existing Redis instead (nothing is started).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';

export interface BenchRedis {
  /** The URL to connect to. */
  readonly url: string;
  /** The PID of the server this helper started; undefined when REDIS_URL named one. */
  readonly pid: number | undefined;
  /** Stops the server this helper started (a no-op for REDIS_URL). */
  stop(): Promise<void>;
}

/** A port that was free on loopback a moment ago (the kernel's pick). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address !== null
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function answers(url: string): Promise<boolean> {
  const client = createClient({ url, socket: { connectTimeout: 500, reconnectStrategy: false } });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    if (client.isOpen) client.destroy();
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Starts a redis-server on a free loopback port (or uses REDIS_URL) and
 * resolves once it answers PING. Rejects when redis-server cannot be started.
 */
export async function startBenchRedis(): Promise<BenchRedis> {
  const external = process.env.REDIS_URL;
  if (external !== undefined && external !== '') {
    return { url: external, pid: undefined, stop: async () => {} };
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-bench-redis-'));
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: 'ignore' },
    );
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const kill = () => {
      if (!exited(child)) child.kill('SIGKILL');
    };
    process.once('exit', kill);
    const stop = async () => {
      process.off('exit', kill);
      if (!exited(child)) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await Promise.race([gone, pause(2_000)]);
        kill();
      }
      rmSync(dir, { recursive: true, force: true });
    };
    const url = `redis://127.0.0.1:${port}`;
    for (let i = 0; i < 50 && !exited(child); i++) {
      const failed = await Promise.race([spawnError, pause(0).then(() => undefined)]);
      if (failed !== undefined) {
        await stop();
        throw new Error(`redis-server could not be started: ${failed.message}`);
      }
      if (await answers(url)) return { url, pid: child.pid, stop };
      await pause(100);
    }
    // It exited (the port was taken in between) or never answered: try another port.
    await stop();
  }
  throw new Error('redis-server did not come up on a free loopback port');
}

/** A client of the suite's Redis, as `connectBenchRedis()` returns it. */
export type BenchRedisClient = ReturnType<typeof createClient>;

/**
 * Connects one client (no reconnects, no offline queue) to the suite's Redis
 * and prints which Redis it is, or returns why it could not connect.
 */
export async function connectBenchRedis(
  url: string,
  pid: number | undefined,
): Promise<{ redis: BenchRedisClient } | { unreachable: string }> {
  const redis = createClient({
    url,
    socket: { connectTimeout: 1_000, reconnectStrategy: false },
    disableOfflineQueue: true,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
  } catch (error) {
    return { unreachable: `Redis at ${url} is unreachable (${(error as Error).message})` };
  }
  const version = (await redis.info('server')).match(/redis_version:(\S+)/)?.[1] ?? '?';
  console.log(
    `\nRedis ${url}${pid === undefined ? ' (REDIS_URL)' : `, started for this suite (PID ${pid})`}, ${version}`,
  );
  return { redis };
}
