// A completed record without a payload was changed outside bulwark: the Redis
// store fails closed with a store error naming the key, rather than handing
// the codec the text "null".
import { isBulwarkError } from '@bulwark/core';
import { defaultFingerprint, idempotency, StoreUnavailableError } from '@bulwark/idempotency';
import { redisIdempotencyStore } from '@bulwark/redis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    let ran = false;
    let decoded = false;
    const guard = idempotency<string>({
      store: redisIdempotencyStore(client, { prefix }),
      codec: {
        encode: (value) => JSON.stringify(value),
        decode: (text) => {
          decoded = true;
          return JSON.parse(text);
        },
      },
    });
    const error = await guard
      .run('order-7', 'request', () => {
        ran = true;
        return 'charged';
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(isBulwarkError(error, 'ERR_CALLBACK_FAILED')).toBe(false);
    expect((error as StoreUnavailableError).operation).toBe('begin');
    expect((error as Error).message).toMatch(/completed record for key "order-7" .* has no payload field/);
    expect(ran).toBe(false);
    expect(decoded).toBe(false);
    expect(await client.hGetAll(`${prefix}order-7`)).toEqual({ s: 'c', f: defaultFingerprint('request') });
  });
});
