import { circuitBreaker } from '@bulwark/circuit-breaker';
import { systemClock } from '@bulwark/clock';

// The primitive, without the policy: ask for a permit, report how the call went.
// A report is judged exactly as the policy judges a call it runs: failureOn sees
// the value or the error, a failure after the caller's signal aborted counts
// neither way, and the permit times the call on the breaker's clock.
const breaker = circuitBreaker({
  name: 'search',
  clock: systemClock,
  failureOn: (outcome) => (outcome.ok ? (outcome.value as Response).status >= 500 : true),
});

export async function search(q: string, signal: AbortSignal): Promise<Response | undefined> {
  const permit = breaker.tryAcquire({ signal });
  if (permit === undefined) return undefined; // open: serve a fallback instead
  try {
    const response = await fetch(`http://search.internal/?q=${encodeURIComponent(q)}`, { signal });
    permit.success(undefined, response);
    return response;
  } catch (error) {
    permit.failure(error);
    throw error;
  }
}
