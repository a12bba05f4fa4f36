import { circuitBreakers, consecutive } from '@bulwark/circuit-breaker';

// One breaker per upstream host, at most 500 held; idle closed ones go first.
const perHost = circuitBreakers({ name: 'upstreams', trip: consecutive(5), openMs: 10_000, maxKeys: 500 });

export async function get(url: string): Promise<Response> {
  return perHost.get(new URL(url).host).execute((ctx) => fetch(url, { signal: ctx.signal }));
}
