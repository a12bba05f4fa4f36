import { failureRate } from '@bulwark/circuit-breaker';
import { type CreateFetchOptions, createFetch, type ResilientFetch } from '@bulwark/fetch';
import { exponential } from '@bulwark/retry';

/**
 * The defaults of {@link httpClient}, chosen for calls between services: a
 * caller rarely waits more than a few seconds, so the whole call gets 10 s and
 * one attempt 2 s; a breaker opens per origin when half of at least 20 calls in
 * 10 s failed, and stays open 5 s after a first trip, doubling up to 60 s after
 * trips that follow one another; every POST and PATCH gets an idempotency key,
 * so it can be retried safely.
 */
export const HTTP_CLIENT_DEFAULTS = Object.freeze({
  deadlineMs: 10_000,
  attemptTimeoutMs: 2_000,
  maxAttempts: 3,
  idempotencyKeys: true,
  failureRateThreshold: 0.5,
  minimumCalls: 20,
  failureWindowMs: 10_000,
  openMs: Object.freeze({ initialMs: 5_000, maxMs: 60_000 }),
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
    maxAttempts: d.maxAttempts,
    idempotencyKeys: d.idempotencyKeys,
    breakers: {
      trip: failureRate({
        threshold: d.failureRateThreshold,
        minimumCalls: d.minimumCalls,
        window: { kind: 'time', ms: d.failureWindowMs, buckets: 10 },
      }),
      // Consecutive trips wait longer each time; no jitter, so the wait is predictable.
      openMs: exponential({ initialMs: d.openMs.initialMs, maxMs: d.openMs.maxMs, jitter: 'none' }),
    },
    bulkheads: {
      maxConcurrent: d.maxConcurrentPerOrigin,
      maxQueue: d.maxQueuePerOrigin,
      queueTimeoutMs: d.queueTimeoutMs,
    },
    ...options,
  });
}
