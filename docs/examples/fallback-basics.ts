import { circuitBreaker } from '@bulwark/circuit-breaker';
import { fallback, isBulwarkError, pipeline } from '@bulwark/core';
import { timeout } from '@bulwark/deadline';

interface Prices {
  readonly stale: boolean;
  readonly items: Record<string, number>;
}
let lastGood: Prices = { stale: true, items: {} };

const policy = pipeline(
  // Outermost: replaces an open breaker's refusal and a timeout, not a 4xx.
  fallback<Prices>(
    (outcome) => {
      if (!outcome.ok) console.warn('serving cached prices:', outcome.error);
      return { ...lastGood, stale: true };
    },
    {
      on: (outcome) =>
        !outcome.ok &&
        (isBulwarkError(outcome.error, 'ERR_CIRCUIT_OPEN') ||
          isBulwarkError(outcome.error, 'ERR_DEADLINE_EXCEEDED') ||
          (outcome.error as { status?: number }).status === 503),
    },
  ),
  circuitBreaker({ name: 'prices' }),
  timeout(300),
);

export const prices = await policy.execute(async (ctx): Promise<Prices> => {
  const response = await fetch('http://prices.internal/all', { signal: ctx.signal });
  if (!response.ok) throw Object.assign(new Error(`HTTP ${response.status}`), { status: response.status });
  lastGood = { stale: false, items: (await response.json()) as Record<string, number> };
  return lastGood;
});
