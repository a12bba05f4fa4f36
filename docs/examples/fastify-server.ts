// Fastify 5: inbound deadlines, load shedding and an idempotent route.
import { adaptiveLimit, bulkhead } from '@bulwark/bulkhead';
import { deadlineHeaders } from '@bulwark/deadline';
import { bulwarkFastify } from '@bulwark/fastify';
import { memoryStore } from '@bulwark/idempotency';
import Fastify from 'fastify';

interface Order {
  readonly id: string;
  readonly sku: string;
  readonly quantity: number;
}
declare function createOrder(input: Omit<Order, 'id'>, signal: AbortSignal): Promise<Order>;

export const app = Fastify();

await app.register(bulwarkFastify, {
  // Load shedding: a limit that learns the service's capacity from latency.
  // A request that finds no free slot gets 503 with Retry-After: 1.
  bulkhead: bulkhead({ maxConcurrent: adaptiveLimit({ algorithm: 'gradient2', initialLimit: 50 }) }),
  defaultTimeoutMs: 10_000, // a request without a deadline header gets 10 s
  maxTimeoutMs: 30_000, // and none may ask for more than 30 s
  // On by default: a DeadlineExceededError that escapes a handler is answered 504,
  // an open circuit, a full bulkhead or a rate limit 503 with Retry-After.
  errorHandler: true,
});

app.get('/stock/:sku', async (request) => {
  const { sku } = request.params as { sku: string };
  // The signal aborts at the deadline or when the client goes away; the time
  // left travels downstream as x-request-timeout-ms.
  const response = await fetch(`http://inventory.internal/items/${sku}`, {
    signal: request.bulwark.signal,
    headers: deadlineHeaders(request.bulwark.remainingMs(), { safetyMarginMs: 20 }),
  });
  return response.json();
});

// One store for the process; use @bulwark/redis or @bulwark/postgres across processes.
const orders = memoryStore({ maxEntries: 50_000 });

app.post(
  '/orders',
  {
    config: {
      idempotency: {
        store: orders,
        required: true, // 400 without an Idempotency-Key
        scope: (request) => request.headers['x-customer-id'] as string | undefined,
        // The route's guard, for its events. (A store failure is logged through
        // request.log / app.log already, with its cause.)
        onGuard: (guard) => guard.onOutcome((event) => app.log.debug(event, 'idempotency outcome')),
      },
    },
  },
  async (request, reply) => {
    const order = await createOrder(request.body as Omit<Order, 'id'>, request.bulwark.signal);
    return reply.code(201).header('location', `/orders/${order.id}`).send(order);
  },
);

await app.listen({ host: '127.0.0.1', port: 3000 });
