// A completed record without a payload was changed outside bulwark: the Redis
// store fails closed with a store error naming the key, rather than handing
// the codec the text "null".
import { defaultFingerprint } from '@bulwark/idempotency';
import { redisIdempotencyStore } from '@bulwark/redis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectCorruptRecordFailsClosed } from './corrupt-record.ts';
import { REDIS_URL, RUN_ID, redisAvailable } from './services.ts';

const available = await redisAvailable();
const prefix = `bulwark:test:${RUN_ID}:corrupt:`;

type Client = ReturnType<typeof createClient>;

describe.skipIf(!available)('Redis store, a completed record without a payload', () => {
  let client: Client;
  beforeAll(async () => {
    const unconnected = createClient({
      url: REDIS_URL,
      socket: { connectTimeout: 1_000, reconnectStrategy: false },
      disableOfflineQueue: true,
    });
    unconnected.on('error', () => {});
    client = await unconnected.connect();
  });
  afterAll(async () => {
    if (client === undefined) return;
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await client.del(keys);
    }
    client.destroy();
  });

  it('fails closed with ERR_STORE_UNAVAILABLE naming the key, never running fn or calling the codec', async () => {
    await client.hSet(`${prefix}order-7`, { s: 'c', f: defaultFingerprint('request') });
    await client.pExpire(`${prefix}order-7`, 60_000);
    await expectCorruptRecordFailsClosed(
      redisIdempotencyStore(client, { prefix }),
      /completed record for key "order-7" .* has no payload field/,
    );
    expect(await client.hGetAll(`${prefix}order-7`)).toEqual({ s: 'c', f: defaultFingerprint('request') });
  });
});
