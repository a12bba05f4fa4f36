// Express 5: inbound deadlines, load shedding and an idempotent route.
import { bulkhead } from '@bulwark/bulkhead';
import { deadlineHeaders } from '@bulwark/deadline';
import { bulwarkErrorHandler, bulwarkExpress, deadlineGate, idempotent } from '@bulwark/express';
import { memoryStore } from '@bulwark/idempotency';
import express from 'express';

interface Order {
  readonly id: string;
  readonly sku: string;
  readonly quantity: number;
}
declare function createOrder(input: Omit<Order, 'id'>, signal: AbortSignal): Promise<Order>;

export const app = express();

// First, so a shed request is refused before its body is read.
app.use(
  bulwarkExpress({
    bulkhead: bulkhead({ maxConcurrent: 100 }), // the 101st request at once gets 503
    retryAfterSeconds: 2,
    defaultTimeoutMs: 10_000,
  }),
);
app.use(express.json()); // before or after idempotent(): either way the body is fingerprinted
// After the body parsers, right before the routes: 504 instead of running a
// handler whose deadline passed while the body was read.
app.use(deadlineGate());

app.get('/stock/:sku', async (req, res) => {
  const response = await fetch(`http://inventory.internal/items/${req.params.sku}`, {
    signal: req.bulwark.signal, // aborts at the deadline or when the client goes away
    headers: deadlineHeaders(req.bulwark.remainingMs(), { safetyMarginMs: 20 }),
  });
  res.json(await response.json());
});

app.post(
  '/orders',
  idempotent({
    store: memoryStore(),
    scope: (req) => req.get('x-customer-id'),
    // Why the store failed: 'begin' (the request got 503) or 'complete' (not stored).
    onStoreError: (error, phase) => console.error(`idempotency store failed (${phase})`, error),
  }),
  async (req, res) => {
    const order = await createOrder(req.body, req.bulwark.signal);
    res.status(201).location(`/orders/${order.id}`).json(order);
  },
);

// After the routes: 504 for a DeadlineExceededError a handler lets escape, 503
// with Retry-After for an open circuit, a full bulkhead or a rate limit.
app.use(bulwarkErrorHandler());

app.listen(3000, '127.0.0.1');
