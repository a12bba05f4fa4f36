import { bulwarkFastify } from '@bulwark/fastify';
import { rateLimit } from '@bulwark/rate-limit';
import Fastify from 'fastify';

// Each API key may send 10 requests at once and 5 per second; over that, 429.
const app = Fastify();
await app.register(bulwarkFastify, {
  rateLimit: {
    limit: rateLimit({ ratePerSecond: 5, burst: 10 }),
    key: (request) => String(request.headers['x-api-key'] ?? request.socket.remoteAddress),
    name: 'per-key',
  },
});
app.get('/reports', async () => ({ ok: true }));

export { app };
