import { idempotency } from '@bulwark/idempotency';
import { redisIdempotencyStore } from '@bulwark/redis';
import { createClient } from 'redis';

export const client = createClient({
  url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  socket: { connectTimeout: 1_000 },
  disableOfflineQueue: true, // an outage fails fast, and the guard fails closed
});
// Required: without an 'error' listener, a lost connection crashes the process.
// The client reconnects by itself; meanwhile the guard fails closed (503).
client.on('error', (error: Error) => console.error('redis:', error.message));
await client.connect();
export const guard = idempotency({ store: redisIdempotencyStore(client, { prefix: 'orders:idem:' }) });
