import { adaptiveLimit, bulkhead } from '@bulwark/bulkhead';
import { pipeline } from '@bulwark/core';
import { timeout } from '@bulwark/deadline';

// The limit learns the search cluster's capacity from each call's latency:
// it starts at 20 and moves between 5 and 200.
const limit = adaptiveLimit({ algorithm: 'gradient2', initialLimit: 20, minLimit: 5, maxLimit: 200 });
const search = bulkhead({ maxConcurrent: limit, name: 'search' });

// The bulkhead outside the timeout: a timed-out call counts as a drop, which
// tells the limit that the dependency is overloaded.
const policy = pipeline(search, timeout(500));

export const hits = await policy.execute((ctx) =>
  fetch('http://search.internal/?q=boots', { signal: ctx.signal }),
);
console.log(`search: ${limit.algorithm} limit now ${search.limit}`);
