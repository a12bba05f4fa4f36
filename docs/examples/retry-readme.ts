import { retry, retryBudget } from '@bulwark/retry';

const budget = retryBudget(); // shared: 10 retries/s plus 20% of requests
const policy = retry({ maxAttempts: 3, budget }); // exponential, full jitter, 100 ms → 10 s
policy.onGiveUp(({ attempts, reason }) => console.warn(`gave up after ${attempts}: ${reason}`));
export const rows = await policy.execute((ctx) => fetch('http://a.internal/rows', { signal: ctx.signal }));
