import { pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { hedging } from '@bulwark/hedging';
import { retryBudget } from '@bulwark/retry';

// One budget for retries and hedges to the search service: together they add
// at most 10% load, plus 2 per second for a quiet client.
const budget = retryBudget({ ratio: 0.1, minRetriesPerSecond: 2 });

const policy = pipeline(
  deadline(1_500),
  hedging({
    delay: 'adaptive', // the p90 of recent first-attempt latency...
    percentile: 0.9,
    delayMs: 200, // ...or 200 ms until 20 latencies are known
    maxDelayMs: 1_000,
    maxHedgedAttempts: 1,
    minAttemptMs: 100, // no hedge with 100 ms or less left before the deadline
    budget,
  }),
);

// Hedge only idempotent calls: a GET here. The loser's fetch is aborted.
export const results = await policy.execute((ctx) =>
  fetch('http://search.internal/q?term=bulwark', { signal: ctx.signal }),
);
