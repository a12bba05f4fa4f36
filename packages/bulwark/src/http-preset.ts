import { consecutive, failureRate } from '@bulwark/circuit-breaker';
import { type CreateFetchOptions, createFetch, type ResilientFetch } from '@bulwark/fetch';
import { exponential } from '@bulwark/retry';

/**
 * The defaults of {@link httpClient}, chosen for calls between services (see
 * docs/presets.md for the measurements behind them): a caller rarely waits
 * more than a few seconds, so the whole call gets 10 s; one attempt gets 1.5 ×
 * the p99.9 of its origin's recent answers (at least 100 ms), and 2 s (or the
 * whole deadline when that is shorter) until 100 answers are known or while the
 * origin is slower than that as a whole; a breaker opens per origin after 20
 * failures in a row (so a hard-down origin is refused within a few dozen
 * calls, even after a long healthy stretch, and an origin called a few times a
 * second can trip at all, while an origin failing fewer than three calls in
 * four almost never fails 20 in a row) or when three quarters of at least 10 calls in the last 2 s
 * failed (an origin that still answers one call in four is overloaded or
 * flaky rather than down, and retries within a budget serve its callers better
 * than refusing them all), and stays open 250 ms after a first trip, 500 ms
 * after trips that follow one another (so an origin is back within about half
 * a second of its fault ending, and is probed at most twice a second while it
 * is down); a probe that has not answered within 250 ms lets the next call
 * probe too, and the first success closes the breaker (so one slow probe
 * cannot hold a slow but working origin shut); a call that meets the open breaker
 * waits for the probe's verdict when its deadline allows, and through a failed
 * probe for the next one (ride-through, up to 256 waiting per origin), and an
 * origin's adaptive attempt timeout forgets its latency when its breaker trips; every POST and PATCH gets an idempotency key, so it
 * can be retried safely.
 */
export const HTTP_CLIENT_DEFAULTS = Object.freeze({
  deadlineMs: 10_000,
  attemptTimeoutMs: 2_000,
  adaptiveAttemptTimeout: true,
  maxAttempts: 4,
  idempotencyKeys: true,
  consecutiveFailures: 20,
  failureRateThreshold: 0.75,
  minimumCalls: 10,
  failureWindowMs: 2_000,
  openMs: Object.freeze({ initialMs: 250, maxMs: 500 }),
  probeTimeoutMs: 250,
  rideThroughMaxWaiters: 256,
  maxConcurrentPerOrigin: 64,
  maxQueuePerOrigin: 256,
  queueTimeoutMs: 1_000,
});

/**
 * A ready-made `fetch` for calls to other services: deadline → retry with a
 * budget → per-origin breaker → per-origin bulkhead → attempt timeout, with
 * {@link HTTP_CLIENT_DEFAULTS}. Every option of `createFetch` may be given to
 * replace a default; options are checked there, all at once.
 */
export function httpClient(options: CreateFetchOptions = {}): ResilientFetch {
  const d = HTTP_CLIENT_DEFAULTS;
  const given = options.deadlineMs;
  return createFetch({
    deadlineMs: d.deadlineMs,
    // Never above a shorter deadline the caller gave (createFetch refuses an
    // attempt timeout above the deadline when both are given).
    attemptTimeoutMs:
      typeof given === 'number' && given > 0 ? Math.min(d.attemptTimeoutMs, given) : d.attemptTimeoutMs,
    adaptiveAttemptTimeout: d.adaptiveAttemptTimeout,
    maxAttempts: d.maxAttempts,
    idempotencyKeys: d.idempotencyKeys,
    breakers: {
      trip: [
        consecutive(d.consecutiveFailures),
        failureRate({
          threshold: d.failureRateThreshold,
          minimumCalls: d.minimumCalls,
          window: { kind: 'time', ms: d.failureWindowMs, buckets: 10 },
        }),
      ],
      // Short, capped open times: recovery follows the end of a fault within
      // about half a second, whatever the fault's length. No jitter, so the
      // wait is predictable (and ride-through can plan on it).
      openMs: exponential({ initialMs: d.openMs.initialMs, maxMs: d.openMs.maxMs, jitter: 'none' }),
      // Every call has a deadline here: one that can outlive the next probe waits for it.
      rideThrough: { maxWaiters: d.rideThroughMaxWaiters },
      // A slow probe gives its slot to the next call after 250 ms; its late
      // success still closes the breaker.
      halfOpen: { probeTimeoutMs: d.probeTimeoutMs },
    },
    bulkheads: {
      maxConcurrent: d.maxConcurrentPerOrigin,
      maxQueue: d.maxQueuePerOrigin,
      queueTimeoutMs: d.queueTimeoutMs,
    },
    ...options,
  });
}
