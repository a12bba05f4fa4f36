import { pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { opossumPolicy } from '@bulwark/interop/opossum';
import { pRetryPolicy } from '@bulwark/interop/p-retry';

// Existing opossum and p-retry tuning, now under one deadline.
const policy = pipeline(
  deadline(2_000),
  pRetryPolicy({ retries: 3, minTimeout: 100 }),
  opossumPolicy({ name: 'prices', timeout: 500, resetTimeout: 10_000 }),
);
export const prices = await policy.execute((ctx) => fetch('http://prices.internal/', { signal: ctx.signal }));
