import { circuitBreaker } from '@bulwark/circuit-breaker';

// The primitive, without the policy: ask for a permit, report how the call went.
const breaker = circuitBreaker({ name: 'search' });

export async function search(q: string): Promise<Response | undefined> {
  const permit = breaker.tryAcquire();
  if (permit === undefined) return undefined; // open: serve a fallback instead
  const started = performance.now();
  try {
    const response = await fetch(`http://search.internal/?q=${encodeURIComponent(q)}`);
    if (response.status >= 500)
      permit.failure(new Error(`HTTP ${response.status}`), performance.now() - started);
    else permit.success(performance.now() - started);
    return response;
  } catch (error) {
    permit.failure(error, performance.now() - started);
    throw error;
  }
}
