import type { OptionHints } from '@bulwark/core/authoring';

/**
 * Retry options of other libraries (p-retry, cockatiel, Polly, resilience4j),
 * with the bulwark option to use instead. An unknown option with one of these
 * names is refused with this advice.
 */
export const RETRY_OPTION_HINTS: OptionHints = Object.freeze({
  retries: "use maxAttempts, which counts the first call too (p-retry's retries: N is maxAttempts: N + 1)",
  maxRetries: 'use maxAttempts, which counts the first call too (maxRetries: N is maxAttempts: N + 1)',
  MaxRetryAttempts:
    "use maxAttempts, which counts the first call too (Polly's MaxRetryAttempts: N is maxAttempts: N + 1)",
  attempts: 'use maxAttempts (attempts in all, counting the first call)',
  minTimeout: 'use backoff: exponential({ initialMs })',
  maxTimeout: 'use backoff: exponential({ maxMs })',
  factor: 'use backoff: exponential({ factor })',
  randomize: 'use backoff: exponential({ jitter }) (full jitter is the default)',
  Delay: 'use backoff: exponential({ initialMs }) or constant(ms)',
  MaxDelay: 'use backoff: exponential({ maxMs })',
  BackoffType: 'use backoff: exponential(), constant() or fromFunction()',
  UseJitter: 'use backoff: exponential({ jitter })',
  waitDuration: 'use backoff: constant(ms)',
  delay: 'use backoff: constant(ms) or exponential({ initialMs })',
  maxRetryTime: 'bound the whole call with deadline(ms) outside retry() (or deadlineMs)',
  shouldRetry: 'use retryOn(outcome, ctx)',
  ShouldHandle: 'use retryOn(outcome, ctx)',
  retryCondition: 'use retryOn(outcome, ctx)',
  onFailedAttempt: 'subscribe with policy.onRetry(listener)',
  onRetry: 'subscribe with policy.onRetry(listener); it returns a disposer',
  signal: 'pass the signal per call: policy.execute(fn, { signal })',
});
