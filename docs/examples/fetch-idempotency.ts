import { createFetch } from '@bulwark/fetch';
import { formatIdempotencyKeyHeader, newIdempotencyKey } from '@bulwark/idempotency';

// With idempotencyKeys, every POST and PATCH without a key gets one, the same
// on every attempt, and so becomes safe to retry.
const fetch = createFetch({ idempotencyKeys: true });
await fetch('http://payments.internal/charges', {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ amount: 1200, currency: 'EUR' }),
});

// Or bring your own key, for example one stored with the order, so that a
// retry after a crash of this process sends the same one.
const key = newIdempotencyKey();
const plain = createFetch();
export const charge = await plain('http://payments.internal/charges', {
  method: 'POST',
  headers: { 'Idempotency-Key': formatIdempotencyKeyHeader(key) },
  body: JSON.stringify({ amount: 1200, currency: 'EUR' }),
});
