import { circuitBreaker, consecutive } from '@bulwark/circuit-breaker';

const breaker = circuitBreaker({ name: 'users', trip: consecutive(5), openMs: 10_000 });
export const user = await breaker.execute((ctx) => fetch('http://users.internal/42', { signal: ctx.signal }));
// Refused while open: BrokenCircuitError, code ERR_CIRCUIT_OPEN, retryAfterMs = time until a probe
