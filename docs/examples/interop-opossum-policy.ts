import { pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { opossumPolicy } from '@bulwark/interop/opossum';
import { retry } from '@bulwark/retry';

// The opossum options the team already tuned, kept as they are.
const breaker = opossumPolicy({
  name: 'inventory',
  timeout: 800,
  errorThresholdPercentage: 40,
  resetTimeout: 15_000,
  abortController: new AbortController(),
});

// Existing opossum dashboards and listeners keep working on the instance.
breaker.breaker.on('open', () => console.warn('inventory breaker opened'));

// The deadline bounds everything, retries included; opossum's timeout is a
// retryable per-attempt timeout; its open circuit (ERR_CIRCUIT_OPEN) is not retried.
const policy = pipeline(deadline(2_000), retry({ maxAttempts: 3 }), breaker);

export const items = await policy.execute((ctx) =>
  fetch('http://inventory.internal/items', { signal: ctx.signal }),
);
