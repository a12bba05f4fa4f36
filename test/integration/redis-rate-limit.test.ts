import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { isBulwarkError, pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { RateLimitStoreError, rateLimit } from '@bulwark/rate-limit';
import { type RedisScriptClient, redisRateLimitStore } from '@bulwark/redis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atPort, REDIS_URL, RUN_ID, redisAvailable } from './services.ts';
import { startProxy } from './tcp-proxy.ts';

const available = await redisAvailable();
const prefix = `bulwark:test:${RUN_ID}:rate:`;
let seq = 0;
const key = (name: string) => `${name}-${++seq}`;

type Client = ReturnType<typeof createClient>;

function connect(url: string): Promise<Client> {
  const client = createClient({
    url,
    socket: { connectTimeout: 1_000, reconnectStrategy: false },
    disableOfflineQueue: true,
  });
  client.on('error', () => {});
  return client.connect();
}

/** The client, counting the script calls it sends. */
function counting(client: Client) {
  const counts = { evalSha: 0, eval: 0 };
  const wrapped: RedisScriptClient = {
    evalSha: (sha, options) => {
      counts.evalSha++;
      return client.evalSha(sha, options);
    },
    eval: (script, options) => {
      counts.eval++;
      return client.eval(script, options);
    },
  };
  return { wrapped, counts };
}

/** Server time in microseconds. */
async function serverMicros(client: Client): Promise<number> {
  const [s, us] = (await client.sendCommand(['TIME'])) as [string, string];
  return Number(s) * 1_000_000 + Number(us);
}

describe.skipIf(!available)('Redis rate-limit store', () => {
  let client: Client;
  beforeAll(async () => {
    client = await connect(REDIS_URL);
  });
  afterAll(async () => {
    if (client === undefined) return;
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await client.del(keys);
    }
    client.destroy();
  });

  it('admits the burst at once and refuses the next, one round trip per decision', async () => {
    const { wrapped, counts } = counting(client);
    const store = redisRateLimitStore(wrapped, { onStoreError: 'fail-closed', prefix, timeoutMs: 2_000 });
    // One call per 10 s: no refill within the test.
    const limit = rateLimit({ ratePerSecond: 0.1, burst: 5, store, key: key('burst') });
    await limit.execute(() => 0); // loads the script on a server that lacked it
    const before = counts.evalSha + counts.eval;
    let admitted = 1;
    for (let i = 0; i < 9; i++) {
      await limit
        .execute(() => admitted++)
        .catch((e: unknown) => {
          if (!isBulwarkError(e, 'ERR_RATE_LIMITED')) throw e;
        });
    }
    expect(admitted).toBe(5);
    // Four admissions and one refusal went to Redis; the other refusals were served from the cache.
    expect(counts.evalSha + counts.eval - before).toBe(5);
    expect(store.stats().cachedRefusals).toBe(4);
  });

  it('refuses with a retryAfterMs that matches the rule, and keeps the key in a hash tag with a TTL', async () => {
    const k = key('retry');
    const store = redisRateLimitStore(client, { onStoreError: 'fail-closed', prefix, timeoutMs: 2_000 });
    const limit = rateLimit({ ratePerSecond: 1, burst: 2, store, key: k });
    await limit.execute(() => 1);
    await limit.execute(() => 1);
    const error = (await limit.execute(() => 1).catch((e: unknown) => e)) as { retryAfterMs: number };
    expect(isBulwarkError(error, 'ERR_RATE_LIMITED')).toBe(true);
    // The third call conforms 1 s after the first, less the time the calls took.
    expect(error.retryAfterMs).toBeGreaterThan(800);
    expect(error.retryAfterMs).toBeLessThanOrEqual(1_000);
    // Two admitted calls put the TAT about 2 s ahead; the key expires at the end of the
    // 1 s expiry period (the drain time, 3 s, capped at 1 s) that holds it.
    const ttl = await client.pTTL(`${prefix}{${k}}`);
    expect(ttl).toBeGreaterThan(1_000);
    expect(ttl).toBeLessThanOrEqual(3_000);
  });

  /** The key's TAT (µs) and its expiry (PEXPIRETIME, ms since the epoch). */
  async function tatAndExpiry(k: string): Promise<{ tat: number; expiresAt: number }> {
    const redisKey = `${prefix}{${k}}`;
    const tat = Number(await client.get(redisKey));
    const expiresAt = Number(await client.sendCommand(['PEXPIRETIME', redisKey]));
    return { tat, expiresAt };
  }

  it('expires a key at the end of the expiry period that holds its TAT, after every write', async () => {
    // 10/s, burst 4: the drain time is 5 intervals = 500 ms, the expiry period.
    const k = key('expiry');
    const store = redisRateLimitStore(client, { onStoreError: 'fail-closed', prefix, timeoutMs: 2_000 });
    const limit = rateLimit({ ratePerSecond: 10, burst: 4, store, key: k });
    const expiries = new Set<number>();
    for (let i = 0; i < 4; i++) {
      await limit.execute(() => i);
      const { tat, expiresAt } = await tatAndExpiry(k);
      // The end of the 500 ms period that holds the TAT: after it, by less than one period.
      expect(expiresAt).toBe((Math.floor(tat / 500_000) + 1) * 500);
      expect(expiresAt * 1000).toBeGreaterThan(tat);
      expiries.add(expiresAt);
    }
    // Four TATs 100 ms apart span at most two periods of 500 ms.
    expect(expiries.size).toBeLessThanOrEqual(2);
  });

  it('keeps the expiry while the TAT stays in its period, and is gone within a period of draining', async () => {
    // 100/s, burst 99: a 1 s drain time, so a 1 s expiry period.
    const k = key('kept');
    const store = redisRateLimitStore(client, { onStoreError: 'fail-closed', prefix, timeoutMs: 2_000 });
    const limit = rateLimit({ ratePerSecond: 100, burst: 99, store, key: k });
    const redisKey = `${prefix}{${k}}`;
    // A TAT 100-300 ms ahead, at least 90 ms before the end of its period, with an expiry
    // a minute away: the next write stays in that period, so it keeps that expiry as it is.
    const now = await serverMicros(client);
    let tat = now + 100_000;
    if (tat % 1_000_000 > 900_000) tat += 200_000;
    await client.set(redisKey, String(tat), { PXAT: Math.floor(now / 1000) + 60_000 });
    const before = Number(await client.sendCommand(['PEXPIRETIME', redisKey]));
    await limit.execute(() => 1);
    const after = await tatAndExpiry(k);
    expect(after.tat).toBe(tat + 10_000);
    expect(after.expiresAt).toBe(before);

    // 10/s, burst 9: a 1 s expiry period. The whole burst puts the TAT 900 ms ahead; the
    // key outlives it by less than a period, and is gone once the server's clock passes that.
    const d = key('drain');
    const drainKey = `${prefix}{${d}}`;
    const drain = rateLimit({ ratePerSecond: 10, burst: 9, store, key: d });
    for (let i = 0; i < 9; i++) await drain.execute(() => i);
    const { tat: last, expiresAt } = await tatAndExpiry(d);
    expect(expiresAt * 1000).toBeGreaterThan(last);
    expect(expiresAt * 1000 - last).toBeLessThanOrEqual(1_000_000);
    const wait = expiresAt - (await serverMicros(client)) / 1000 + 5;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)));
    expect(await client.exists(drainKey)).toBe(0);
  });

  it('keeps separate keys apart', async () => {
    const store = redisRateLimitStore(client, { onStoreError: 'fail-closed', prefix, timeoutMs: 2_000 });
    const a = key('tenant-a');
    const b = key('tenant-b');
    const limit = rateLimit({ ratePerSecond: 0.1, burst: 1, store, key: (ctx) => ctx.operation ?? '' });
    await limit.execute(() => 1, { operation: a });
    await expect(limit.execute(() => 1, { operation: a })).rejects.toMatchObject({
      code: 'ERR_RATE_LIMITED',
    });
    await expect(limit.execute(() => 'b', { operation: b })).resolves.toBe('b');
  });

  it('reserves slots in order in wait mode', async () => {
    const store = redisRateLimitStore(client, { onStoreError: 'fail-closed', prefix, timeoutMs: 2_000 });
    const limit = rateLimit({ ratePerSecond: 1, burst: 1, store, wait: true, maxWaitMs: 5_000 });
    const k = key('reserve');
    const d1 = await store.take(k, limit.rule, { now: 0, maxDelayMs: 5_000, budgetMs: Infinity });
    const d2 = await store.take(k, limit.rule, { now: 0, maxDelayMs: 5_000, budgetMs: Infinity });
    const d3 = await store.take(k, limit.rule, { now: 0, maxDelayMs: 1_500, budgetMs: Infinity });
    expect(d1).toMatchObject({ allowed: true, delayMs: 0 });
    expect(d2.allowed).toBe(true);
    expect(d2.delayMs).toBeGreaterThan(900);
    expect(d2.delayMs).toBeLessThanOrEqual(1_000);
    expect(d3.allowed).toBe(false);
    expect(d3.retryAfterMs).toBeGreaterThan(1_900);
  });

  it('keeps the waits another limiter reserved on the key when its own horizon is shorter', async () => {
    const store = redisRateLimitStore(client, { onStoreError: 'fail-closed', prefix, timeoutMs: 2_000 });
    const k = key('mixed');
    // 10/s, burst 1: a waiting limiter reserves 3 slots, the TAT runs 400 ms ahead.
    const waiting = rateLimit({ ratePerSecond: 10, burst: 1, store, wait: true, maxWaitMs: 5_000 }).rule;
    for (let i = 0; i < 4; i++)
      await store.take(k, waiting, { now: 0, maxDelayMs: 5_000, budgetMs: Infinity });
    const reserved = await tatAndExpiry(k);
    // A limiter that does not wait (horizon: one interval) is refused, and the reservations stay.
    const refusing = rateLimit({ ratePerSecond: 10, burst: 1, store, key: k });
    const error = (await refusing.execute(() => 1).catch((e: unknown) => e)) as { retryAfterMs: number };
    expect(isBulwarkError(error, 'ERR_RATE_LIMITED')).toBe(true);
    expect(await tatAndExpiry(k)).toEqual(reserved);
  });

  it('bounds the effect of a step back of the server clock to the horizon', async () => {
    // A TAT an hour ahead of the server's clock is what a step back of an hour leaves behind.
    const k = key('stepped');
    await client.set(`${prefix}{${k}}`, String((await serverMicros(client)) + 3_600_000_000));
    const store = redisRateLimitStore(client, { onStoreError: 'fail-closed', prefix, timeoutMs: 2_000 });
    const limit = rateLimit({ ratePerSecond: 10, burst: 2, store, key: k });
    const error = (await limit.execute(() => 1).catch((e: unknown) => e)) as { retryAfterMs: number };
    expect(isBulwarkError(error, 'ERR_RATE_LIMITED')).toBe(true);
    // Refused for at most the horizon (burst × interval = 200 ms), not for an hour.
    expect(error.retryAfterMs).toBeLessThanOrEqual(200);
    // Once that retry-after has passed, a call is admitted: the refusal brought the TAT back
    // within the horizon, and gave the key (written without an expiry) one.
    const clamped = await tatAndExpiry(k);
    expect(clamped.tat).toBeLessThanOrEqual((await serverMicros(client)) + 200_000);
    expect(clamped.expiresAt).toBe((Math.floor(clamped.tat / 300_000) + 1) * 300);
    await new Promise((resolve) => setTimeout(resolve, error.retryAfterMs + 5));
    await expect(limit.execute(() => 'admitted')).resolves.toBe('admitted');
    const { tat, expiresAt } = await tatAndExpiry(k);
    expect(expiresAt).toBe((Math.floor(tat / 300_000) + 1) * 300);
  });

  it('fails as chosen, with a typed error, on a value it did not write or a key of another type', async () => {
    const text = key('garbage');
    const hash = key('hash');
    await client.set(`${prefix}{${text}}`, 'not a time');
    await client.hSet(`${prefix}{${hash}}`, 'f', '1');
    const closed = redisRateLimitStore(client, { onStoreError: 'fail-closed', prefix, timeoutMs: 2_000 });
    for (const k of [text, hash]) {
      const limit = rateLimit({ ratePerSecond: 1, burst: 1, store: closed, key: k });
      const error = (await limit.execute(() => 1).catch((e: unknown) => e)) as RateLimitStoreError;
      expect(error).toBeInstanceOf(RateLimitStoreError);
      expect(error.failure).toBe('corrupt');
    }
    const open = redisRateLimitStore(client, { onStoreError: 'fail-open', prefix, timeoutMs: 2_000 });
    const seen: string[] = [];
    open.onStoreError((e) => seen.push(e.failure));
    await expect(
      rateLimit({ ratePerSecond: 1, burst: 1, store: open, key: text }).execute(() => 'ran'),
    ).resolves.toBe('ran');
    expect(seen).toEqual(['corrupt']);
    // The foreign value is left alone.
    expect(await client.get(`${prefix}{${text}}`)).toBe('not a time');
  });

  it('answers within the deadline per the choice while Redis is cut off or silent', async () => {
    const target = new URL(REDIS_URL);
    const proxy = await startProxy(target.hostname, Number(target.port || 6379));
    const viaProxy = createClient({
      url: atPort(REDIS_URL, proxy.port),
      socket: { connectTimeout: 500, reconnectStrategy: (retries) => Math.min(50 * retries, 200) },
      disableOfflineQueue: true,
    });
    viaProxy.on('error', () => {});
    await viaProxy.connect();
    try {
      const closed = rateLimit({
        ratePerSecond: 100,
        burst: 100,
        key: key('outage'),
        store: redisRateLimitStore(viaProxy, { onStoreError: 'fail-closed', prefix, timeoutMs: 200 }),
      });
      const open = rateLimit({
        ratePerSecond: 100,
        burst: 100,
        key: key('outage'),
        store: redisRateLimitStore(viaProxy, { onStoreError: 'fail-open', prefix, timeoutMs: 200 }),
      });
      await expect(closed.execute(() => 'up')).resolves.toBe('up');

      // Silent: bytes are dropped, the command never answers.
      proxy.freeze();
      let started = performance.now();
      const silent = await pipeline(deadline(300), closed)
        .execute(() => 'ran')
        .catch((e: unknown) => e);
      expect((silent as RateLimitStoreError).failure).toBe('timeout');
      expect(performance.now() - started).toBeLessThan(300);
      await expect(open.execute(() => 'ran')).resolves.toBe('ran');

      // Cut: every connection dropped, new ones refused.
      await proxy.cut();
      started = performance.now();
      const cut = await closed.execute(() => 'ran').catch((e: unknown) => e);
      expect(isBulwarkError(cut, 'ERR_STORE_UNAVAILABLE')).toBe(true);
      expect(performance.now() - started).toBeLessThan(300);
      await expect(open.execute(() => 'ran')).resolves.toBe('ran');
    } finally {
      viaProxy.destroy();
      await proxy.cut();
    }
  });

  it('holds a shared limit across 4 processes to within 2% of rate × time + burst', async () => {
    const seconds = 5;
    const k = key('fleet');
    const fixture = new URL('./fixtures/rate-limiter.ts', import.meta.url).pathname;
    const children = Array.from({ length: 4 }, () =>
      spawn(process.execPath, ['--conditions=bulwark-source', fixture, REDIS_URL, prefix, k], {
        stdio: ['pipe', 'pipe', 'inherit'],
      }),
    );
    try {
      const outputs = children.map((child) => {
        const lines = createInterface({ input: child.stdout! });
        let ready!: () => void;
        const isReady = new Promise<void>((resolve) => (ready = resolve));
        const result = new Promise<{ admitted: number; refused: number; roundTrips: number }>(
          (resolve, reject) => {
            lines.on('line', (line) => {
              if (line === 'ready') ready();
              else if (line.startsWith('{')) resolve(JSON.parse(line));
            });
            child.on('exit', (code) => reject(new Error(`a limiter process exited with code ${code}`)));
          },
        );
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
      console.log(`4 processes admitted ${total} (expected ${expected}):`, JSON.stringify(results));
      expect(Math.abs(total - expected)).toBeLessThanOrEqual(expected * 0.02);
      for (const r of results) expect(r.admitted).toBeGreaterThan(0);
    } finally {
      for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 60_000);
});
