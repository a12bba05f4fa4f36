// The distributed bulkhead on a real Redis, shared by real processes: never
// more than maxConcurrent inside, and a SIGKILLed holder's permit comes back
// after its lease.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { distributedBulkhead, PermitLostError } from '@bulwark/bulkhead';
import { isBulwarkError } from '@bulwark/core';
import { redisSemaphoreStore } from '@bulwark/redis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, RUN_ID, redisAvailable, sleep } from './services.ts';

const available = await redisAvailable();
const prefix = `bulwark:test:${RUN_ID}:sem:`;
type Client = ReturnType<typeof createClient>;

function worker(args: string[]): {
  child: ChildProcess;
  lines: AsyncIterable<string>;
  exited: Promise<void>;
} {
  const fixture = new URL('./fixtures/semaphore-worker.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, ['--conditions=bulwark-source', fixture, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return { child, lines: createInterface({ input: child.stdout! }), exited };
}

async function firstLine(lines: AsyncIterable<string>): Promise<string | undefined> {
  for await (const line of lines) return line;
  return undefined;
}

describe.skipIf(!available)('distributedBulkhead on Redis', () => {
  let client: Client;
  const started: ChildProcess[] = [];
  beforeAll(async () => {
    client = createClient({ url: REDIS_URL, socket: { reconnectStrategy: false } });
    client.on('error', () => {});
    await client.connect();
  });
  afterAll(async () => {
    for (const child of started) if (child.exitCode === null) child.kill('SIGKILL');
    if (client === undefined) return;
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await client.del(keys);
    }
    client.destroy();
  });

  it('4 processes calling as fast as they can never have more than maxConcurrent inside', async () => {
    const key = 'load';
    const workers = Array.from({ length: 4 }, () =>
      worker(['load', REDIS_URL, prefix, key, '3', '2000', '2500']),
    );
    for (const w of workers) started.push(w.child);
    const results = (await Promise.all(workers.map((w) => firstLine(w.lines)))).map(
      (line) => JSON.parse(line!) as { admitted: number; refused: number },
    );
    await Promise.all(workers.map((w) => w.exited));
    const peak = Number(await client.get(`${prefix}{${key}}:peak`));
    expect(peak).toBeGreaterThanOrEqual(2); // the limit was contended
    expect(peak).toBeLessThanOrEqual(3);
    expect(Number(await client.get(`${prefix}{${key}}:inside`))).toBe(0);
    expect(results.reduce((n, r) => n + r.admitted, 0)).toBeGreaterThan(50);
    expect(results.reduce((n, r) => n + r.refused, 0)).toBeGreaterThan(0);
    expect(await client.hLen(`${prefix}{${key}}`)).toBe(0); // every permit was given back
  }, 20_000);

  it("a SIGKILLed holder's permit returns after its lease, and not before", async () => {
    const key = 'killed';
    const leaseMs = 600;
    const holder = worker(['hold', REDIS_URL, prefix, key, '1', String(leaseMs), '0']);
    started.push(holder.child);
    expect(await firstLine(holder.lines)).toBe('inside');
    holder.child.kill('SIGKILL');
    await holder.exited;
    const limit = distributedBulkhead({
      maxConcurrent: 1,
      leaseMs,
      key,
      store: redisSemaphoreStore(client, { prefix }),
    });
    const killedAt = performance.now();
    expect(await limit.tryAcquire()).toBeUndefined(); // full: the dead holder is seen
    let permit = await limit.tryAcquire();
    while (permit === undefined && performance.now() - killedAt < 5_000) {
      await sleep(50);
      permit = await limit.tryAcquire();
    }
    expect(permit).toBeDefined();
    expect(performance.now() - killedAt).toBeGreaterThanOrEqual(leaseMs);
    await permit!.release();
    expect(await client.hLen(`${prefix}{${key}}`)).toBe(0);
  }, 20_000);

  it('a holder that stopped renewing is fenced: its work is told through the signal and its release frees nothing', async () => {
    const key = 'fenced';
    const store = redisSemaphoreStore(client, { prefix });
    const leaseMs = 300;
    // A holder whose renewals never reach the store (as if paused): a store that drops its renewals.
    const paused = distributedBulkhead({
      maxConcurrent: 1,
      leaseMs,
      key,
      store: {
        acquire: store.acquire.bind(store),
        renew: () => new Promise(() => {}),
        release: store.release.bind(store),
      },
    });
    const other = distributedBulkhead({ maxConcurrent: 1, leaseMs, key, store });
    const stale = await paused.tryAcquire();
    expect(stale).toBeDefined();
    expect(await other.tryAcquire()).toBeUndefined();
    await sleep(leaseMs + 50);
    const fresh = await other.tryAcquire();
    expect(fresh).toBeDefined(); // took the slot of a holder not seen renewing for a lease
    await sleep(leaseMs / 3 + 50);
    expect(stale!.signal.aborted).toBe(true);
    expect(stale!.signal.reason).toBeInstanceOf(PermitLostError);
    await stale!.release(); // fenced: frees only its own (gone) entry
    expect(await client.hLen(`${prefix}{${key}}`)).toBe(1);
    expect(await other.tryAcquire()).toBeUndefined();
    await fresh!.release();
  });

  it('refuses invalid options with one error listing every violation, and fails closed on a foreign key', async () => {
    let error: unknown;
    try {
      distributedBulkhead({ maxConcurrent: 0, leaseMs: -5, store: {} as never, key: '' });
    } catch (e) {
      error = e;
    }
    expect(isBulwarkError(error, 'ERR_INVALID_OPTIONS')).toBe(true);
    for (const option of ['maxConcurrent', 'leaseMs', 'store', 'key'])
      expect((error as Error).message).toContain(option);
    expect(() => redisSemaphoreStore(client, { retainMs: 0, timeoutMs: -1 })).toThrow(
      /retainMs[\s\S]*timeoutMs/,
    );
    const store = redisSemaphoreStore(client, { prefix });
    await client.set(store.redisKey('foreign'), 'x');
    const limit = distributedBulkhead({ maxConcurrent: 1, key: 'foreign', store });
    await expect(limit.execute(() => 'ran')).rejects.toSatisfy(
      (e) => isBulwarkError(e, 'ERR_STORE_UNAVAILABLE') && /holds a string/.test((e as Error).message),
    );
  });
});
