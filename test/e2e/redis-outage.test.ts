// The documented Redis setup through a Redis outage, for real: a redis-server
// of this test's own on a free port, a server process built on
// docs/examples/redis-readme.ts, Redis killed (SIGKILL) under it and started
// again. The process must survive, refuse requests with 503 /
// ERR_STORE_UNAVAILABLE (fail closed) while Redis is away, and serve again once
// it is back. A client handed to the store with no 'error' listener at all
// must survive too.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { isBulwarkError } from '@bulwark/core';
import { type IdempotentResult, idempotency } from '@bulwark/idempotency';
import { redisIdempotencyStore } from '@bulwark/redis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUN_ID } from '../integration/services.ts';

const FIXTURE = new URL('./fixtures/redis-outage/server.ts', import.meta.url).pathname;
const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;
if (!hasRedisServer && process.env.CI === 'true') {
  throw new Error('redis-server is not installed; scripts/services.sh installs it');
}
if (!hasRedisServer) console.log('skipping the Redis outage test: redis-server is not installed');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Resolves with what `child` printed when `line` matches, or rejects when it exits or `ms` pass first. */
function waitForLine(child: ChildProcess, match: RegExp, ms: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => done(new Error(`${what}: no line matching ${match} within ${ms} ms`)), ms);
    const onExit = (code: number | null) => done(new Error(`${what} exited (code ${code}) before ${match}`));
    function done(error: Error | undefined, line?: string) {
      clearTimeout(timer);
      lines.removeAllListeners('line');
      child.off('exit', onExit);
      if (error === undefined) resolve(line!);
      else reject(error);
    }
    lines.on('line', (line) => {
      if (match.test(line)) done(undefined, line);
    });
    child.once('exit', onExit);
  });
}

/**
 * A redis-server of this test's own, in the foreground, stopped by its PID: no
 * snapshot, and no AOF unless `persistence` asks for one (in `dir`).
 */
async function startRedis(
  port: number,
  persistence: readonly string[] = ['--appendonly', 'no'],
): Promise<ChildProcess> {
  const redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--daemonize', 'no'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await waitForLine(redis, /Ready to accept connections/, 10_000, 'redis-server');
  return redis;
}

async function kill(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  await exited;
}

interface Answer {
  readonly status: number;
  readonly body: string;
}

describe.skipIf(!hasRedisServer)('the documented Redis setup through a Redis outage', () => {
  let port: number;
  let redis: ChildProcess | undefined;
  let server: ChildProcess | undefined;
  let base: string;
  let stderr = '';
  let n = 0;

  /** One POST with a new key to `route` (doc, bare or guard). */
  const post = async (route: string): Promise<Answer> => {
    n++;
    let response: Response;
    try {
      response = await fetch(`${base}/${route}/${n}`, {
        method: 'POST',
        headers: { 'idempotency-key': `"${RUN_ID}-${n}"`, 'content-type': 'application/json' },
        body: JSON.stringify({ n }),
        signal: AbortSignal.timeout(5_000),
      });
    } catch (error) {
      await sleep(100); // let the exit be recorded
      throw new Error(
        `POST /${route} got no answer (${String(error)}); the server process: exit code ${server?.exitCode}, signal ${server?.signalCode}, stderr:\n${stderr.slice(-2_000)}`,
      );
    }
    return { status: response.status, body: await response.text() };
  };
  const routes = ['doc', 'bare', 'guard'] as const;

  beforeAll(async () => {
    port = await freePort();
    redis = await startRedis(port);
    server = spawn(process.execPath, ['--conditions=bulwark-source', FIXTURE, `${RUN_ID}:`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, REDIS_URL: `redis://127.0.0.1:${port}` },
    });
    server.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const line = await waitForLine(server, /^listening \d+$/, 15_000, 'the server process');
    base = `http://127.0.0.1:${line.split(' ')[1]}`;
  }, 30_000);

  afterAll(async () => {
    await kill(server, 'SIGTERM');
    await kill(redis, 'SIGKILL');
  });

  it('survives, fails closed with 503 while Redis is down, and serves again once it is back', async () => {
    for (const route of routes) expect(await post(route), route).toMatchObject({ status: 200 });

    await kill(redis, 'SIGKILL');
    // Every route refuses while Redis is away, over several reconnection rounds.
    for (let round = 0; round < 4; round++) {
      const doc = await post('doc');
      expect(doc.status).toBe(503);
      expect(JSON.parse(doc.body)).toMatchObject({ type: 'urn:bulwark:idempotency:store-unavailable' });
      const bare = await post('bare');
      expect(bare.status).toBe(503);
      expect(JSON.parse(bare.body)).toMatchObject({ type: 'urn:bulwark:idempotency:store-unavailable' });
      expect(await post('guard')).toEqual({
        status: 503,
        body: JSON.stringify({ code: 'ERR_STORE_UNAVAILABLE' }),
      });
      await sleep(400);
    }
    expect({ exitCode: server!.exitCode, signal: server!.signalCode, stderr }).toMatchObject({
      exitCode: null,
      signal: null,
    });
    expect(stderr).not.toMatch(/Unhandled 'error' event/);

    redis = await startRedis(port);
    // node-redis reconnects by itself: within a few seconds every route serves again.
    const recovered = new Set<string>();
    for (let i = 0; i < 50 && recovered.size < routes.length; i++) {
      for (const route of routes) {
        if (recovered.has(route)) continue;
        const answer = await post(route);
        if (answer.status === 200) recovered.add(route);
        else expect(answer.status).toBe(503); // still reconnecting: refused, never run unguarded
      }
      if (recovered.size < routes.length) await sleep(200);
    }
    expect([...recovered].sort()).toEqual([...routes].sort());
    expect(server!.exitCode).toBeNull();
  }, 40_000);
});

describe.skipIf(!hasRedisServer)('what a Redis restart forgets (docs/idempotency.md, durability)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-aof-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Completes a key, kills Redis with SIGKILL, starts it again with the same settings, and runs the key again. */
  async function acrossRestart(
    persistence: readonly string[],
  ): Promise<{ before: string; after: string; ran: number }> {
    const port = await freePort();
    let redis: ChildProcess | undefined = await startRedis(port, persistence);
    const client = createClient({ url: `redis://127.0.0.1:${port}`, disableOfflineQueue: true });
    client.on('error', () => {}); // reconnection attempts while Redis is down
    await client.connect();
    try {
      const guard = idempotency<string>({ store: redisIdempotencyStore(client, { prefix: `${RUN_ID}:` }) });
      let ran = 0;
      const run = () => guard.run('order-1', 'the same request', () => `charge ${++ran}`);
      const before = (await run()).kind;
      await kill(redis, 'SIGKILL');
      redis = await startRedis(port, persistence);
      let after: IdempotentResult<string> | undefined;
      for (let i = 0; i < 50 && after === undefined; i++) {
        try {
          after = await run();
        } catch (error) {
          if (!isBulwarkError(error, 'ERR_STORE_UNAVAILABLE')) throw error;
          await sleep(100); // the client is still reconnecting
        }
      }
      return { before, after: after?.kind ?? 'never reconnected', ran };
    } finally {
      client.destroy();
      await kill(redis, 'SIGKILL');
    }
  }

  it('without AOF, a completed key is forgotten and its retry executes again', async () => {
    expect(await acrossRestart(['--appendonly', 'no'])).toEqual({
      before: 'executed',
      after: 'executed',
      ran: 2,
    });
  }, 30_000);

  it('with appendonly yes and appendfsync everysec, a killed Redis still replays the completed key', async () => {
    const aof = ['--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', dir];
    expect(await acrossRestart(aof)).toEqual({ before: 'executed', after: 'replayed', ran: 1 });
  }, 30_000);
});
