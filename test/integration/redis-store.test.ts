import { isBulwarkError } from '@bulwark/core';
import { idempotency, StoreUnavailableError } from '@bulwark/idempotency';
import { redisIdempotencyStore } from '@bulwark/redis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeStoreConformance } from '../idempotency/conformance.ts';
import { describeOwnerProcesses } from './owner-process.ts';
import { deadPort, REDIS_URL, RUN_ID, redisAvailable, sleep } from './services.ts';
import { startProxy } from './tcp-proxy.ts';

const available = await redisAvailable();
const prefix = `bulwark:test:${RUN_ID}:`;
let seq = 0;
const key = (name: string) => `${name}-${++seq}`;

type Client = ReturnType<typeof createClient>;

function connect(url: string): Promise<Client> {
  // Short timeouts, no reconnection and no offline queue: an unreachable server fails fast.
  const client = createClient({
    url,
    socket: { connectTimeout: 1_000, reconnectStrategy: false },
    disableOfflineQueue: true,
  });
  client.on('error', () => {});
  return client.connect();
}

describe.skipIf(!available)('Redis idempotency store', () => {
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

  describeStoreConformance('redis', () => ({
    store: () => redisIdempotencyStore(client, { prefix }),
    wait: sleep,
    leaseMs: 300,
    ttlMs: 600,
    marginMs: 150,
    key,
  }));

  describeOwnerProcesses('redis', () => ({
    args: ['redis', REDIS_URL, prefix],
    guard: (leaseMs) => idempotency<string>({ store: redisIdempotencyStore(client, { prefix }), leaseMs }),
    key,
  }));

  it('keeps records as hashes with a millisecond TTL under the prefix', async () => {
    const guard = idempotency<string>({ store: redisIdempotencyStore(client, { prefix }), ttlMs: 5_000 });
    const k = key('layout');
    await guard.run(k, 'req', () => 'v');
    expect(await client.hGetAll(prefix + k)).toMatchObject({ s: 'c', p: '["v"]' });
    const pttl = await client.pTTL(prefix + k);
    expect(pttl).toBeGreaterThan(4_000);
    expect(pttl).toBeLessThanOrEqual(5_000);
  });

  it('loads its scripts once, then begins and completes in one round trip each', async () => {
    await client.scriptFlush();
    const calls: string[] = [];
    const counting = {
      eval: (s: string, o: { keys: string[]; arguments: string[] }) => {
        calls.push('eval');
        return client.eval(s, o);
      },
      evalSha: (s: string, o: { keys: string[]; arguments: string[] }) => {
        calls.push('evalSha');
        return client.evalSha(s, o);
      },
    };
    const guard = idempotency<string>({ store: redisIdempotencyStore(counting, { prefix }) });
    await guard.run(key('trips'), 'req', () => 'v');
    expect(calls).toEqual(['evalSha', 'eval', 'evalSha', 'eval']);
    calls.length = 0;
    await guard.run(key('trips'), 'req', () => 'v');
    expect(calls).toEqual(['evalSha', 'evalSha']);
  });

  it('fails closed when Redis is unreachable: nothing runs', async () => {
    const port = await deadPort();
    await expect(connect(`redis://127.0.0.1:${port}`)).rejects.toThrow();
    const offline = createClient({ url: `redis://127.0.0.1:${port}`, disableOfflineQueue: true });
    const guard = idempotency({ store: redisIdempotencyStore(offline, { prefix }) });
    let ran = false;
    const error = await guard
      .run(key('down'), 'req', () => {
        ran = true;
      })
      .catch((e: unknown) => e);
    expect(isBulwarkError(error, 'ERR_STORE_UNAVAILABLE')).toBe(true);
    expect(ran).toBe(false);
  });

  it('fails closed within storeTimeoutMs when Redis stops answering without closing the connection', async () => {
    const url = new URL(REDIS_URL);
    const proxy = await startProxy(url.hostname, Number(url.port || 6379));
    const proxied = await connect(`redis://127.0.0.1:${proxy.port}`);
    try {
      const guard = idempotency<string>({
        store: redisIdempotencyStore(proxied, { prefix }),
        storeTimeoutMs: 300,
      });
      expect((await guard.run(key('frozen-before'), 'req', () => 'before')).kind).toBe('executed');
      proxy.freeze();
      let ran = false;
      const error = await guard
        .run(key('frozen'), 'req', () => {
          ran = true;
          return 'never';
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect((error as Error).message).toMatch(/storeTimeoutMs/);
      expect(ran).toBe(false);
    } finally {
      await proxy.cut();
      proxied.destroy();
    }
  });

  it('fails closed when the connection to Redis is cut mid-test', async () => {
    const url = new URL(REDIS_URL);
    const proxy = await startProxy(url.hostname, Number(url.port || 6379));
    const proxied = await connect(`redis://127.0.0.1:${proxy.port}`);
    const guard = idempotency<string>({ store: redisIdempotencyStore(proxied, { prefix }), leaseMs: 5_000 });
    expect((await guard.run(key('cut'), 'req', () => 'before')).kind).toBe('executed');

    // Cut while fn runs: the result comes back, the record is not completed.
    const k = key('cut-during');
    const during = await guard.run(k, 'req', async () => {
      await proxy.cut();
      return 'during';
    });
    expect(during).toEqual({ kind: 'executed', value: 'during', completion: 'store-error' });
    expect(await client.hGet(prefix + k, 's')).toBe('p');

    // Cut before the request: it is refused and fn never runs.
    let ran = false;
    const error = await guard
      .run(key('cut-after'), 'req', () => {
        ran = true;
        return 'after';
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(ran).toBe(false);
  });
});
