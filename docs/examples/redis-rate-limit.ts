import { memoryRateLimitStore, rateLimit } from '@bulwark/rate-limit';
import { redisRateLimitStore } from '@bulwark/redis';
import { createClient } from 'redis';

const client = createClient({
  url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  disableOfflineQueue: true,
});
client.on('error', (error: Error) => console.error('redis:', error.message));
await client.connect();

// 200 calls per second for the whole fleet of 4 instances. While Redis cannot
// decide, each instance falls back to a quarter of the limit on its own.
export const partnerLimit = rateLimit({
  ratePerSecond: 200,
  burst: 20,
  store: redisRateLimitStore(client, {
    onStoreError: 'fail-open',
    insurance: memoryRateLimitStore(),
    insuranceShare: 1 / 4,
    prefix: 'partner:rate:',
  }),
});
