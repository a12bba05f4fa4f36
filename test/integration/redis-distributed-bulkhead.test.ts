// The distributed bulkhead on a real Redis, shared by real processes: never
// more than maxConcurrent inside, and a SIGKILLed holder's permit comes back
// after its lease. Through a TCP proxy: a frozen, reset, slow or answer-losing
// Redis gets an answer within the bound, leaks no permit, and the process
// survives.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { distributedBulkhead, PermitLostError } from '@bulwark/bulkhead';
import { isBulwarkError, pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { FleetStoreError, redisSemaphoreStore } from '@bulwark/redis';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { atPort, REDIS_URL, RUN_ID, redisAvailable, sleep } from './services.ts';
import { startProxy, type TcpProxy } from './tcp-proxy.ts';

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

describe.skipIf(!available)('distributedBulkhead when Redis fails behind a TCP proxy', () => {
  let client: Client;
  let proxy: TcpProxy;
  let proxied: Client;
  const unhandled: unknown[] = [];
  const collect = (error: unknown) => unhandled.push(error);
  let seq = 0;
  const key = (name: string) => `${name}-${++seq}`;

  function connect(url: string): Promise<Client> {
    const c = createClient({
      url,
      socket: { connectTimeout: 1_000, reconnectStrategy: false },
      disableOfflineQueue: true,
    });
    c.on('error', () => {});
    return c.connect();
  }

  beforeAll(async () => {
    process.on('unhandledRejection', collect);
    process.on('uncaughtException', collect);
    client = await connect(REDIS_URL);
  });
  beforeEach(async () => {
    const url = new URL(REDIS_URL);
    proxy = await startProxy(url.hostname, Number(url.port || 6379));
    proxied = await connect(atPort(REDIS_URL, proxy.port));
  });
  afterEach(async () => {
    if (proxied.isOpen) proxied.destroy();
    await proxy.cut();
    expect(unhandled).toEqual([]);
  });
  afterAll(async () => {
    process.off('unhandledRejection', collect);
    process.off('uncaughtException', collect);
    if (client === undefined) return;
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await client.del(keys);
    }
    client.destroy();
  });

  /** Real time until `check` holds, polled; fails after `ms`. */
  async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
    const started = performance.now();
    while (!(await check())) {
      if (performance.now() - started > ms) throw new Error(`not within ${ms} ms`);
      await sleep(10);
    }
    return performance.now() - started;
  }

  /** Polls `limit` for a permit until it gets one; fails after `ms`. Resolves with it and the time it took. */
  async function acquireWithin(limit: ReturnType<typeof distributedBulkhead>, ms: number) {
    const started = performance.now();
    for (;;) {
      const permit = await limit.tryAcquire();
      if (permit !== undefined) return { permit, waited: performance.now() - started };
      if (performance.now() - started > ms) throw new Error(`no permit within ${ms} ms`);
      await sleep(10);
    }
  }

  it('a frozen Redis: calls are refused with ERR_STORE_UNAVAILABLE within timeoutMs, a held permit is reported lost, and its slot returns after a lease', async () => {
    const name = key('frozen');
    const leaseMs = 400;
    const store = redisSemaphoreStore(proxied, { prefix, timeoutMs: 200 });
    const limit = distributedBulkhead({ maxConcurrent: 1, leaseMs, key: name, store });
    const held = await limit.tryAcquire();
    expect(held).toBeDefined();
    proxy.freeze();
    let ran = 0;
    const started = performance.now();
    const error = await limit.execute(() => ran++).catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(400);
    expect(isBulwarkError(error, 'ERR_STORE_UNAVAILABLE')).toBe(true);
    expect((error as FleetStoreError).reason).toBe('timeout');
    // A caller's deadline shorter than the store's timeout bounds the call.
    const short = pipeline(deadline(50), limit);
    const at = performance.now();
    await expect(short.execute(() => ran++)).rejects.toSatisfy((e) =>
      isBulwarkError(e, 'ERR_DEADLINE_EXCEEDED'),
    );
    expect(performance.now() - at).toBeLessThan(150);
    // The holder's renewals hang: after a lease without a confirmed one, its work is told.
    await within(leaseMs + 400, async () => held!.signal.aborted);
    expect((held!.signal.reason as PermitLostError).reason).toBe('unconfirmed');
    await held!.release();
    // Another process, on a healthy connection, gets the slot a lease after it first saw it taken.
    const other = distributedBulkhead({
      maxConcurrent: 1,
      leaseMs,
      key: name,
      store: redisSemaphoreStore(client, { prefix }),
    });
    expect(await other.tryAcquire()).toBeUndefined();
    const { permit } = await acquireWithin(other, leaseMs + 400);
    await permit.release();
    expect(await client.hLen(store.redisKey(name))).toBe(0);
    expect(ran).toBe(0);
  });

  it('a reset connection: calls are refused at once, a held permit is reported lost, its slot returns after a lease', async () => {
    const name = key('reset');
    const leaseMs = 300;
    const store = redisSemaphoreStore(proxied, { prefix, timeoutMs: 1_000 });
    const limit = distributedBulkhead({ maxConcurrent: 1, leaseMs, key: name, store });
    const held = await limit.tryAcquire();
    expect(held).toBeDefined();
    await proxy.reset();
    const started = performance.now();
    const error = await limit.execute(() => 'ran').catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(100); // not the 1 s timeout
    expect(error).toBeInstanceOf(FleetStoreError);
    expect((error as FleetStoreError).reason).toBe('unavailable');
    await within(leaseMs + 400, async () => held!.signal.aborted);
    expect((held!.signal.reason as PermitLostError).reason).toBe('unconfirmed');
    await held!.release(); // fails quietly: the connection is gone
    const other = distributedBulkhead({
      maxConcurrent: 1,
      leaseMs,
      key: name,
      store: redisSemaphoreStore(client, { prefix }),
    });
    const { permit, waited } = await acquireWithin(other, 2 * leaseMs + 400);
    expect(waited).toBeGreaterThanOrEqual(leaseMs - 50);
    await permit.release();
    expect(await client.hLen(store.redisKey(name))).toBe(0);
  });

  it('an acquire whose answer is lost after Redis granted it gives the permit back at once, not a lease later', async () => {
    const name = key('lost-answer');
    const store = redisSemaphoreStore(proxied, { prefix, timeoutMs: 150 });
    const limit = distributedBulkhead({ maxConcurrent: 1, leaseMs: 60_000, key: name, store });
    proxy.dropReplies(true);
    const error = await limit.execute(() => 'ran').catch((e: unknown) => e);
    expect((error as FleetStoreError).reason).toBe('timeout');
    // Redis did record the holder; the bulkhead sent a release for it right behind.
    await within(500, async () => (await client.hLen(store.redisKey(name))) === 0);
    const other = distributedBulkhead({
      maxConcurrent: 1,
      key: name,
      store: redisSemaphoreStore(client, { prefix }),
    });
    const permit = await other.tryAcquire();
    expect(permit).toBeDefined();
    await permit!.release();
  });

  it('a slow Redis: a call whose deadline passes while acquiring answers at its deadline, and a permit granted later is given back unused', async () => {
    const name = key('slow');
    const store = redisSemaphoreStore(proxied, { prefix, timeoutMs: 2_000 });
    const limit = distributedBulkhead({ maxConcurrent: 1, leaseMs: 60_000, key: name, store });
    proxy.delayReplies(300);
    let ran = 0;
    const started = performance.now();
    await expect(pipeline(deadline(100), limit).execute(() => ran++)).rejects.toSatisfy((e) =>
      isBulwarkError(e, 'ERR_DEADLINE_EXCEEDED'),
    );
    expect(performance.now() - started).toBeLessThan(250);
    // The grant arrives 300 ms in: the work must not run for a caller that has gone,
    // and the permit goes back.
    await sleep(400);
    expect(ran).toBe(0);
    await within(1_000, async () => (await client.hLen(store.redisKey(name))) === 0);
  });
});
