import { createFetch } from '@bulwark/fetch';

// A drop-in fetch: 30 s for the whole call, 10 s per attempt, 3 attempts with
// jittered backoff and a retry budget, a breaker and a bulkhead per origin.
const fetch = createFetch();

const response = await fetch('http://inventory.internal/items/42');
export const item = await response.json();
