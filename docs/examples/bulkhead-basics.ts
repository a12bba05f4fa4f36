import { BulkheadRejectedError, bulkhead } from '@bulwark/bulkhead';
import { pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';

// Sized with Little's law: 400 requests/s at 25 ms each keep about 10 busy;
// twice that leaves room for bursts and for a slow tail.
const payments = bulkhead({
  maxConcurrent: 20,
  maxQueue: 20, // a short queue absorbs bursts...
  queueTimeoutMs: 50, // ...but nobody waits longer than a few service times
  name: 'payments',
});

// The deadline sits outside, so time spent in the queue counts against it.
const policy = pipeline(deadline(1_000), payments);

export async function charge(orderId: string, signal: AbortSignal): Promise<Response | 'busy'> {
  try {
    return await policy.execute(
      (ctx) => fetch(`http://payments.internal/charge/${orderId}`, { method: 'POST', signal: ctx.signal }),
      { signal },
    );
  } catch (error) {
    // Shed: answer quickly instead of joining the pile-up.
    if (error instanceof BulkheadRejectedError) return 'busy';
    throw error;
  }
}

export const { active, queued, rejected } = payments.stats();
