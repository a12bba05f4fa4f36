import { pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { AbortError, pRetryPolicy } from '@bulwark/interop/p-retry';

// p-retry's options, as the call site had them.
const retrying = pRetryPolicy({
  retries: 5,
  minTimeout: 200,
  factor: 2,
  onFailedAttempt: ({ attemptNumber, retryDelay }) =>
    console.warn(`attempt ${attemptNumber} failed; retrying in ${retryDelay} ms`),
});

// The deadline aborts p-retry's wait and the attempt in flight at 2 s, and
// p-retry's maxRetryTime is capped at the time left.
const policy = pipeline(deadline(2_000), retrying);

export const report = await policy.execute(async (ctx) => {
  const response = await fetch('http://reports.internal/daily', { signal: ctx.signal });
  // A 404 will not go away: stop retrying, here and in any retry around this one.
  if (response.status === 404) throw new AbortError(`no report (HTTP ${response.status})`);
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.text();
});
