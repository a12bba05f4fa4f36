import { circuitBreaker, failureRate } from '@bulwark/circuit-breaker';
import { pipeline } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';

// A call that meets the open breaker waits for the next probe's verdict when
// its 1.5 s deadline leaves room for the probe and for the call itself.
const breaker = circuitBreaker({
  name: 'inventory',
  trip: failureRate({ threshold: 0.5, minimumCalls: 20 }),
  openMs: 500,
  rideThrough: { maxWaiters: 128, probeEstimateMs: 100 },
});
const policy = pipeline(deadline(1_500), breaker);

export const stock = await policy.execute((ctx) =>
  fetch('http://inventory.internal/stock/42', { signal: ctx.signal }),
);

// Permit users wait the same way: a permit, or the open-circuit error after a failed probe.
const permit = await breaker.acquire({ signal: AbortSignal.timeout(1_000) });
permit.success();
