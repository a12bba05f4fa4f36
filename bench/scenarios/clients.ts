// The five clients the scenario benchmark compares. Each peer is configured as
// its own documentation recommends (the README's first example, at the version
// installed), and every one calls the service through the platform fetch.
//
// A client's call gets `pick(attempt)`, the URL for its n-th attempt (1-based):
// with one origin always the same; with three equivalent origins it starts at
// the caller's origin and moves to the next one on each attempt, as a client
// with a list of hosts does by hand. bulwark's preset is given the first URL
// and, with three origins, the same list as its documented `origins` option
// (createFetch then picks each retry's origin by its breakers).
//
// `stop` aborts whatever is still running when the run ends; it is the
// harness's, not a caller's deadline (callers leave at the SLO without telling
// anyone, which is what an open-loop caller does).
import { presets } from 'bulwark';
import {
  type CircuitBreakerPolicy,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleAll,
  retry,
} from 'cockatiel';
import CircuitBreaker from 'opossum';
import pRetry from 'p-retry';
import { SLO_MS } from './engine.ts';

export type ClientName = 'naive' | 'p-retry' | 'cockatiel' | 'opossum' | 'bulwark';
export const CLIENT_NAMES: readonly ClientName[] = ['naive', 'p-retry', 'cockatiel', 'opossum', 'bulwark'];

export interface ScenarioClient {
  /** One logical request; resolves true on a 2xx answer, never rejects. */
  call(pick: (attempt: number) => string, stop: AbortSignal): Promise<boolean>;
  close(): void;
}

/** Why logical requests failed: an error's code or name, or the last HTTP status. */
export const failures = new Map<string, number>();

function failed(reason: unknown): false {
  const r = reason as { code?: unknown; name?: unknown; cause?: { code?: unknown } } | undefined;
  const key =
    typeof r?.code === 'string'
      ? r.code
      : typeof r?.cause?.code === 'string'
        ? `${String(r.name)}(${r.cause.code})`
        : String(r?.name ?? reason);
  failures.set(key, (failures.get(key) ?? 0) + 1);
  return false;
}

/** The configuration each client is given, as printed in docs/benchmarks.md. */
export const CLIENT_CONFIGS: Readonly<Record<ClientName, string>> = {
  naive:
    'fetch with a 1.5 s timeout per attempt (AbortSignal.timeout), up to 3 immediate retries on any error or non-2xx',
  'p-retry':
    'pRetry(run, { retries: 5 }) with run throwing on !response.ok (README "Usage"); defaults: minTimeout 1000, factor 2, no randomize, no attempt timeout',
  cockatiel:
    'wrap(retry(handleAll, { maxAttempts: 3, backoff: new ExponentialBackoff() }), circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) })) (README opening example); one breaker per origin',
  opossum:
    'new CircuitBreaker(action, { timeout: 3000, errorThresholdPercentage: 50, resetTimeout: 30000 }) (README "Usage"); one breaker per origin, no retry',
  bulwark:
    'presets.httpClient({ deadlineMs: 1500 }); with three equivalent origins also origins: [[the three]] (docs/fetch.md "Equivalent origins")',
};

async function get(url: string, signal: AbortSignal): Promise<Response> {
  const response = await fetch(url, { signal });
  await response.arrayBuffer();
  return response;
}

function naive(): ScenarioClient {
  return {
    async call(pick, stop) {
      let last: unknown;
      for (let attempt = 1; attempt <= 4 && !stop.aborted; attempt++) {
        try {
          const response = await get(pick(attempt), AbortSignal.any([stop, AbortSignal.timeout(SLO_MS)]));
          if (response.ok) return true;
          last = { name: `HTTP ${response.status}` };
        } catch (error) {
          last = error; // try again at once
        }
      }
      return failed(last);
    },
    close() {},
  };
}

function pRetryClient(): ScenarioClient {
  return {
    async call(pick, stop) {
      try {
        await pRetry(
          async (attempt) => {
            const response = await get(pick(attempt), stop);
            if (!response.ok)
              throw Object.assign(new Error(response.statusText), { name: `HTTP ${response.status}` });
          },
          { retries: 5, signal: stop },
        );
        return true;
      } catch (error) {
        return failed(error);
      }
    },
    close() {},
  };
}

function cockatielClient(): ScenarioClient {
  const retryPolicy = retry(handleAll, { maxAttempts: 3, backoff: new ExponentialBackoff() });
  const breakers = new Map<string, CircuitBreakerPolicy>();
  const breakerFor = (origin: string): CircuitBreakerPolicy => {
    let breaker = breakers.get(origin);
    if (breaker === undefined) {
      breaker = circuitBreaker(handleAll, { halfOpenAfter: 10 * 1000, breaker: new ConsecutiveBreaker(5) });
      breakers.set(origin, breaker);
    }
    return breaker;
  };
  return {
    async call(pick, stop) {
      try {
        await retryPolicy.execute(async ({ attempt, signal }) => {
          const url = pick(attempt + 1);
          await breakerFor(new URL(url).origin).execute(async () => {
            const response = await get(url, signal);
            if (!response.ok)
              throw Object.assign(new Error(response.statusText), { name: `HTTP ${response.status}` });
          }, signal);
        }, stop);
        return true;
      } catch (error) {
        return failed(error);
      }
    },
    close() {},
  };
}

function opossumClient(): ScenarioClient {
  const breakers = new Map<string, CircuitBreaker<[string, AbortSignal], void>>();
  const breakerFor = (origin: string): CircuitBreaker<[string, AbortSignal], void> => {
    let breaker = breakers.get(origin);
    if (breaker === undefined) {
      breaker = new CircuitBreaker(
        async (url: string, signal: AbortSignal) => {
          const response = await get(url, signal);
          if (!response.ok)
            throw Object.assign(new Error(response.statusText), { name: `HTTP ${response.status}` });
        },
        { timeout: 3000, errorThresholdPercentage: 50, resetTimeout: 30000 },
      );
      breakers.set(origin, breaker);
    }
    return breaker;
  };
  return {
    async call(pick, stop) {
      const url = pick(1);
      try {
        await breakerFor(new URL(url).origin).fire(url, stop);
        return true;
      } catch (error) {
        return failed(error);
      }
    },
    close() {
      for (const b of breakers.values()) b.shutdown();
    },
  };
}

function bulwarkClient(): ScenarioClient {
  // One client per set of origins the harness hands out: the warm-up server's,
  // then the scenario's (one, or three equivalent ones).
  const clients = new Map<string, ReturnType<typeof presets.httpClient>>();
  const clientFor = (pick: (attempt: number) => string): ReturnType<typeof presets.httpClient> => {
    const group = [...new Set([1, 2, 3].map((attempt) => new URL(pick(attempt)).origin))].sort();
    const key = group.join(' ');
    let client = clients.get(key);
    if (client === undefined) {
      client = presets.httpClient(
        group.length > 1 ? { deadlineMs: 1500, origins: [group] } : { deadlineMs: 1500 },
      );
      clients.set(key, client);
    }
    return client;
  };
  return {
    async call(pick, stop) {
      try {
        const response = await clientFor(pick)(pick(1), { signal: stop });
        await response.arrayBuffer();
        return response.ok || failed({ name: `HTTP ${response.status}` });
      } catch (error) {
        return failed(error);
      }
    },
    close() {},
  };
}

export function makeClient(name: ClientName): ScenarioClient {
  switch (name) {
    case 'naive':
      return naive();
    case 'p-retry':
      return pRetryClient();
    case 'cockatiel':
      return cockatielClient();
    case 'opossum':
      return opossumClient();
    case 'bulwark':
      return bulwarkClient();
  }
}
