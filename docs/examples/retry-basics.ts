import { pipeline } from '@bulwark/core';
import { deadline, timeout } from '@bulwark/deadline';
import { exponential, retry, retryBudget } from '@bulwark/retry';

// One budget for every call this process makes to the inventory service:
// retries may add at most 20% load on top of 10 retries per second.
const budget = retryBudget({ ratio: 0.2, minRetriesPerSecond: 10 });

const policy = pipeline(
  deadline(2_000), // the whole call, retries included
  retry({
    maxAttempts: 4,
    backoff: exponential({ initialMs: 50, maxMs: 1_000, jitter: 'full' }),
    budget,
    minAttemptMs: 100, // no attempt starts with less than 100 ms left
  }),
  timeout(500), // each attempt
);

export const stock = await policy.execute((ctx) =>
  fetch('http://inventory.internal/items/42', {
    signal: ctx.signal,
    headers: { 'x-retry-attempt': String(ctx.attempt) },
  }),
);
