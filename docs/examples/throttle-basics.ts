import { adaptiveThrottle, circuitBreaker, failureRate } from '@bulwark/circuit-breaker';
import { pipeline } from '@bulwark/core';

// The breaker stops calls to a dependency that is down; the throttle sheds the
// excess of one that is overloaded but alive, client-side, before it is sent.
const throttle = adaptiveThrottle({ name: 'orders', k: 2, windowMs: 10_000 });
const policy = pipeline(
  throttle,
  circuitBreaker({ name: 'orders', trip: failureRate({ threshold: 0.5, minimumCalls: 20 }) }),
);

throttle.onThrottle(({ probability }) => console.debug(`shedding ${(probability * 100).toFixed(0)}%`));
// Refused locally: ThrottledError, code ERR_THROTTLED, with the probability it was refused at.
export const order = await policy.execute((ctx) => fetch('http://orders.internal/1', { signal: ctx.signal }));

// The primitive, for code that sends the request itself:
const permit = throttle.tryAcquire();
if (permit === undefined) throw throttle.refusal();
try {
  const response = await fetch('http://orders.internal/2');
  if (response.status === 503 || response.status === 429) permit.rejected();
  else permit.accepted();
} catch (error) {
  permit.rejected();
  throw error;
}
