import { createFetch } from '@bulwark/fetch';

// One client for the whole service: a 5 s budget per call, 1 s per attempt,
// up to 3 attempts with jittered backoff and a retry budget, and a circuit
// breaker and a bulkhead per origin.
export const resilientFetch = createFetch({ deadlineMs: 5_000, attemptTimeoutMs: 1_000, maxAttempts: 3 });

const response = await resilientFetch('http://inventory.internal/items/42');
export const item: unknown = await response.json();
