// The two clients the demo compares.
import { systemClock } from '@bulwark/clock';
import { isBulwarkError, presets } from 'bulwark';
import type { RequestResult } from './stats.ts';

/**
 * How long a caller of either client is willing to wait, in milliseconds. The
 * bulwark client makes it its deadline; the summary counts the successes of
 * both clients that came within it.
 */
export const SLO_MS = 1_500;

export interface DemoClient {
  readonly name: string;
  /** One logical request; never rejects. */
  send(): Promise<RequestResult>;
  /** A word for the live view (the breaker's state). */
  status(): string;
  close(): void;
}

/**
 * What many services do by hand: try again at once on any failure, up to four
 * times, with no timeout, no backoff and no limit on concurrency.
 */
export function naiveClient(url: string): DemoClient {
  return {
    name: 'naive',
    async send() {
      const start = systemClock.now();
      for (let attempt = 1; attempt <= 4; attempt++) {
        try {
          const response = await fetch(url, { headers: { 'x-demo-client': 'naive' } });
          await response.arrayBuffer();
          if (response.ok) return { ok: true, latencyMs: systemClock.now() - start, shed: false };
        } catch {
          // try again
        }
      }
      return { ok: false, latencyMs: systemClock.now() - start, shed: false };
    },
    status: () => '-',
    close() {},
  };
}

/**
 * `presets.httpClient()` given the caller's SLO as its deadline and nothing
 * else: the preset's defaults as a user who sets only the deadline gets them.
 */
export function bulwarkClient(url: string): DemoClient {
  const origin = new URL(url).origin;
  const fetchWithPolicies = presets.httpClient({ name: 'demo', deadlineMs: SLO_MS });
  return {
    name: 'bulwark',
    async send() {
      const start = systemClock.now();
      try {
        const response = await fetchWithPolicies(url, { headers: { 'x-demo-client': 'bulwark' } });
        await response.arrayBuffer();
        return { ok: response.ok, latencyMs: systemClock.now() - start, shed: false };
      } catch (error) {
        const shed = isBulwarkError(error, 'ERR_CIRCUIT_OPEN') || isBulwarkError(error, 'ERR_BULKHEAD_FULL');
        return { ok: false, latencyMs: systemClock.now() - start, shed };
      }
    },
    status: () => fetchWithPolicies.breakers?.peek(origin)?.state ?? 'closed',
    close() {},
  };
}
