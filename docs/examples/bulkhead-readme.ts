import { bulkhead } from '@bulwark/bulkhead';

// At most 20 queries at once; 10 more may wait, each for at most 100 ms.
const db = bulkhead({ maxConcurrent: 20, maxQueue: 10, queueTimeoutMs: 100, name: 'orders-db' });
db.onReject(({ reason }) => console.warn(`orders-db shed a call: ${reason}`));
export const order = await db.execute((ctx) =>
  fetch('http://orders.internal/orders/42', { signal: ctx.signal }),
);
