import { createFetch } from '@bulwark/fetch';

export const fetch = createFetch({
  deadlineMs: 1_500,
  attemptTimeoutMs: 1_000,
  // An attempt slower than the p90 of recent ones gets a second one beside it
  // (200 ms until 20 latencies are known); hedges and retries share one budget.
  hedging: { delay: 'adaptive', percentile: 0.9, delayMs: 200, maxDelayMs: 1_000 },
});

fetch.hedging?.onHedge(({ attempt, elapsedMs }) =>
  console.info(`attempt ${attempt} started beside a call ${elapsedMs} ms old`),
);

// A GET is hedged; a POST only when it carries an Idempotency-Key.
export const results = await fetch('http://search.internal/q?term=bulwark');
