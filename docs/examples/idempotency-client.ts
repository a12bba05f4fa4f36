// Client side: one key per logical operation, the same on every retry.
import { type ExecutionContext, pipeline } from '@bulwark/core';
import { timeout } from '@bulwark/deadline';
import { formatIdempotencyKeyHeader, idempotencyKey } from '@bulwark/idempotency';

// idempotencyKey() sits outside the retry, so every attempt sees the same key.
// (Put your retry policy between the two.)
const createOrder = pipeline(idempotencyKey(), timeout(2_000));

export async function placeOrder(order: { sku: string; quantity: number }): Promise<unknown> {
  return createOrder.execute(async (ctx: ExecutionContext) => {
    const response = await fetch('https://shop.example/orders', {
      method: 'POST',
      signal: ctx.signal,
      headers: {
        'content-type': 'application/json',
        'idempotency-key': formatIdempotencyKeyHeader(ctx.idempotencyKey!),
      },
      body: JSON.stringify(order),
    });
    return response.json();
  });
}
