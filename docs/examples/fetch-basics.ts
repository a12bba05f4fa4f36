import { createFetch } from '@bulwark/fetch';
import { exponential, retryBudget } from '@bulwark/retry';

// One budget for every client that calls the inventory service.
const budget = retryBudget({ ratio: 0.1 });

export const fetch = createFetch({
  deadlineMs: 2_000, // the whole call: attempts, waits, and reading the body
  attemptTimeoutMs: 500, // each attempt, until the response headers arrive
  maxAttempts: 4,
  backoff: exponential({ initialMs: 50, maxMs: 1_000 }),
  budget,
  breakers: { openMs: 5_000 }, // per origin; every other breaker option applies too
  bulkheads: { maxConcurrent: 32, maxQueue: 64 }, // per origin
});

fetch.retry.onRetry(({ attempt, delayMs }) =>
  console.info(`attempt ${attempt} failed; next in ${delayMs} ms`),
);

// Exactly the global fetch's signature: a Request, init options, a signal.
const controller = new AbortController();
const response = await fetch(new Request('http://inventory.internal/items/42'), {
  headers: { accept: 'application/json' },
  signal: controller.signal,
});
if (!response.ok) {
  // Retries ran out (or the status is not retried): the last response, as it is.
  console.warn(`inventory answered ${response.status}`);
}
export const item = await response.json();

// The breaker of each origin can be inspected.
export const state = fetch.breakers?.peek('http://inventory.internal')?.state;
