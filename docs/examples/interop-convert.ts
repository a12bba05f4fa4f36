import { circuitBreaker } from '@bulwark/circuit-breaker';
import { pipeline } from '@bulwark/core';
import { deadline, timeout } from '@bulwark/deadline';
import { breakerOptionsFromOpossum, retryOptionsFromPRetry } from '@bulwark/interop';
import { retry } from '@bulwark/retry';
import type CircuitBreaker from 'opossum';
import type { Options as PRetryOptions } from 'p-retry';

// The options of the old call site, unchanged.
const opossumOptions: CircuitBreaker.Options = {
  timeout: 800,
  errorThresholdPercentage: 40,
  volumeThreshold: 10,
};
const pRetryOptions: PRetryOptions = { retries: 4, minTimeout: 100, maxRetryTime: 5_000 };

const breaker = breakerOptionsFromOpossum(opossumOptions);
const retrying = retryOptionsFromPRetry(pRetryOptions);
for (const warning of [...breaker.warnings, ...retrying.warnings]) console.warn(warning);

// maxRetryTime becomes the deadline, opossum's timeout a per-attempt timeout
// inside the breaker.
const policy = pipeline(
  deadline(retrying.deadlineMs ?? Number.POSITIVE_INFINITY),
  retry(retrying.options),
  circuitBreaker({ ...breaker.options, name: 'orders' }),
  timeout(breaker.timeoutMs ?? Number.POSITIVE_INFINITY),
);

export const order = await policy.execute((ctx) =>
  fetch('http://orders.internal/orders/7', { signal: ctx.signal }),
);
