import { bulkhead } from '@bulwark/bulkhead';
import { bulwarkFastify } from '@bulwark/fastify';
import { memoryStore } from '@bulwark/idempotency';
import Fastify from 'fastify';

const app = Fastify();
await app.register(bulwarkFastify, { bulkhead: bulkhead({ maxConcurrent: 100 }) });

app.get('/report', async (request) => {
  // Aborts at the caller's deadline (grpc-timeout, x-request-timeout-ms, ...) or on disconnect.
  return fetch('http://reports.internal/latest', { signal: request.bulwark.signal }).then((r) => r.json());
});

app.post('/payments', { config: { idempotency: { store: memoryStore() } } }, async (request, reply) =>
  reply.code(201).send({ accepted: request.body }),
);

export { app };
