// wrapMethods around a real node-redis client: each command runs through a policy.
import { type ExecutionContext, type Operation, wrapMethods } from '@bulwark/core';
import { BasePolicy } from '@bulwark/core/authoring';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, RUN_ID, redisAvailable } from './services.ts';

const available = await redisAvailable();

class Recording extends BasePolicy {
  readonly seen: Array<string | undefined> = [];
  run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
    this.seen.push(ctx.operation);
    return fn(ctx);
  }
}

describe.skipIf(!available)('wrapMethods around a node-redis client', () => {
  const client = createClient({ url: REDIS_URL, socket: { reconnectStrategy: false } });

  beforeAll(async () => {
    await client.connect();
  });
  afterAll(async () => {
    await client.del(`${RUN_ID}:wrap`);
    client.destroy();
  });

  it('runs the chosen commands through the policy and leaves the others alone', async () => {
    const policy = new Recording(undefined);
    const redis = wrapMethods(client, policy, { methods: ['set', 'get'], operation: (m) => `redis.${m}` });
    await redis.set(`${RUN_ID}:wrap`, 'value');
    expect(await redis.get(`${RUN_ID}:wrap`)).toBe('value');
    expect(await redis.exists(`${RUN_ID}:wrap`)).toBe(1);
    expect(policy.seen).toEqual(['redis.set', 'redis.get']);
  });
});
