import { bulkhead } from '@bulwark/bulkhead';
import { bulwarkFastify } from '@bulwark/fastify';
import { createFetch } from '@bulwark/fetch';
import Fastify from 'fastify';

const resilientFetch = createFetch({ attemptTimeoutMs: 1_000 });
const app = Fastify();
// Reads the caller's deadline headers, answers 503 beyond 100 requests in flight.
await app.register(bulwarkFastify, { bulkhead: bulkhead({ maxConcurrent: 100 }) });

app.get('/items/:id', async (request) => {
  const { id } = request.params as { id: string };
  // Runs inside the request's deadline: the call gets what is left of the
  // caller's budget, and says so downstream in x-request-timeout-ms.
  const response = await resilientFetch(`http://inventory.internal/items/${id}`, {
    signal: request.bulwark.signal,
  });
  return response.json();
});

await app.listen({ port: 3000 });
