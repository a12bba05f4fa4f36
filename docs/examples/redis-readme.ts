import { idempotency } from '@bulwark/idempotency';
import { redisIdempotencyStore } from '@bulwark/redis';
import { createClient } from 'redis';

const client = await createClient({
  url: process.env.REDIS_URL,
  socket: { connectTimeout: 1_000 },
  disableOfflineQueue: true, // an outage fails fast, and the guard fails closed
}).connect();
export const guard = idempotency({ store: redisIdempotencyStore(client, { prefix: 'orders:idem:' }) });
