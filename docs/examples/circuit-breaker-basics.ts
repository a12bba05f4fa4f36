import { circuitBreaker, failureRate, slowCallRate } from '@bulwark/circuit-breaker';
import { pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { exponential, retry } from '@bulwark/retry';

const breaker = circuitBreaker({
  name: 'inventory',
  // Open when half the last 100 calls failed, or 80% of them took 2 s or more.
  trip: [
    failureRate({ threshold: 0.5, minimumCalls: 20, window: { kind: 'count', size: 100 } }),
    slowCallRate({ threshold: 0.8, slowerThanMs: 2_000, minimumCalls: 20 }),
  ],
  // 5 s after the first trip, then 10 s, 20 s, … up to 2 min while it keeps failing.
  openMs: exponential({ initialMs: 5_000, maxMs: 120_000, jitter: 'none' }),
  halfOpen: { maxProbes: 2, successThreshold: 2, probeTimeoutMs: 5_000 },
});
breaker.onStateChange(({ from, to, reason }) =>
  console.warn(`inventory breaker ${from} → ${to} (${reason})`),
);

// Retry outside the breaker: an open circuit is not retried (ERR_CIRCUIT_OPEN).
const policy = pipeline(deadline(3_000), retry(), breaker);
export const items = await policy.execute((ctx) =>
  fetch('http://inventory.internal/items', { signal: ctx.signal }),
);
