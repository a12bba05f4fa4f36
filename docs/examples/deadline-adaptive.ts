import { pipeline } from '@bulwark/core';
import { adaptiveTimeout, deadline } from '@bulwark/deadline';
import { retry } from '@bulwark/retry';

// Two seconds for the whole call. Each attempt gets 1.5 × the p99.9 of recent
// answers (at least 100 ms), at most one second, and never past the deadline.
const policy = pipeline(deadline(2_000), retry({ maxAttempts: 3 }), adaptiveTimeout(1_000));

export async function getPrice(sku: string): Promise<unknown> {
  return policy.execute(async (ctx) => {
    const response = await fetch(`http://127.0.0.1:8080/prices/${sku}`, { signal: ctx.signal });
    return response.json();
  });
}
