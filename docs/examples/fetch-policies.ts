import { injectFault } from '@bulwark/chaos';
import { fallback } from '@bulwark/core';
import { createFetch } from '@bulwark/fetch';
import { rateLimit } from '@bulwark/rate-limit';

// Rehearse a flaky origin in staging: 5% of attempts fail as a reset connection would.
const chaos = injectFault({
  rate: 0.05,
  enabled: process.env.REHEARSAL === '1',
  error: () => Object.assign(new Error('injected reset'), { code: 'ECONNRESET' }),
});

export const fetch = createFetch({
  deadlineMs: 2_000,
  policies: {
    // Once per call, inside the deadline, outside the retries: at most 50 calls/s
    // leave this process, and a call that fails in the end gets a stale answer.
    call: [
      fallback(() => new Response('[]', { headers: { 'content-type': 'application/json' } })),
      rateLimit({ ratePerSecond: 50, burst: 10 }),
    ],
    // Once per attempt, inside the origin's breaker, bulkhead and attempt timeout:
    // an injected fault is retried, and counts against the origin, as a real one would.
    attempt: [chaos],
  },
});
