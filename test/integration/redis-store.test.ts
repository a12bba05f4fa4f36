import { idempotency } from '@bulwark/idempotency';
import { redisIdempotencyStore } from '@bulwark/redis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeStoreConformance } from '../idempotency/conformance.ts';
import { describeOwnerProcesses } from './owner-process.ts';
import { REAL_TIME_CONFORMANCE, REDIS_URL, RUN_ID, redisAvailable } from './services.ts';
import { storeOutageTests } from './store-outages.ts';

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
    ...REAL_TIME_CONFORMANCE,
    store: () => redisIdempotencyStore(client, { prefix }),
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

  storeOutageTests('Redis', () => ({
    url: REDIS_URL,
    defaultPort: 6379,
    async connect(url) {
      const proxied = await connect(url);
      return { store: redisIdempotencyStore(proxied, { prefix }), close: async () => proxied.destroy() };
    },
    unconnected(url) {
      const offline = createClient({ url, disableOfflineQueue: true });
      return { store: redisIdempotencyStore(offline, { prefix }), close: async () => {} };
    },
    recordState: (k) => client.hGet(prefix + k, 's'),
    inProgress: 'p',
    key,
  }));
});
