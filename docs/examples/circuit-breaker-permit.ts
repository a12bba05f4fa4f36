import { circuitBreaker } from '@bulwark/circuit-breaker';
import { Stopwatch, systemClock } from '@bulwark/clock';

// The primitive, without the policy: ask for a permit, report how the call went.
// The durations come from the same monotonic clock the breaker runs on.
const clock = systemClock;
const breaker = circuitBreaker({ name: 'search', clock });

export async function search(q: string): Promise<Response | undefined> {
  const permit = breaker.tryAcquire();
  if (permit === undefined) return undefined; // open: serve a fallback instead
  const stopwatch = Stopwatch.start(clock);
  try {
    const response = await fetch(`http://search.internal/?q=${encodeURIComponent(q)}`);
    if (response.status >= 500) permit.failure(new Error(`HTTP ${response.status}`), stopwatch.elapsed());
    else permit.success(stopwatch.elapsed());
    return response;
  } catch (error) {
    permit.failure(error, stopwatch.elapsed());
    throw error;
  }
}
