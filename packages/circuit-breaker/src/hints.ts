import type { OptionHints } from '@bulwark/core/authoring';

/**
 * Circuit-breaker options of other libraries (opossum, cockatiel, Polly,
 * resilience4j), with the bulwark option to use instead.
 */
export const BREAKER_OPTION_HINTS: OptionHints = Object.freeze({
  resetTimeout: "use openMs (how long the breaker stays open before a probe; opossum's resetTimeout)",
  halfOpenAfter: "use openMs (cockatiel's halfOpenAfter)",
  BreakDuration: "use openMs (Polly's BreakDuration)",
  waitDurationInOpenState: "use openMs (resilience4j's waitDurationInOpenState)",
  errorThresholdPercentage:
    "use trip: failureRate({ threshold: percentage / 100, minimumCalls, window }) (opossum's errorThresholdPercentage)",
  FailureRatio: 'use trip: failureRate({ threshold })',
  failureRateThreshold: 'use trip: failureRate({ threshold: percentage / 100 })',
  volumeThreshold: 'use trip: failureRate({ minimumCalls })',
  MinimumThroughput: 'use trip: failureRate({ minimumCalls })',
  minimumNumberOfCalls: 'use trip: failureRate({ minimumCalls })',
  rollingCountTimeout: 'use trip: failureRate({ window })',
  rollingCountBuckets: 'use trip: failureRate({ window })',
  SamplingDuration: 'use trip: failureRate({ window })',
  slidingWindowSize: 'use trip: failureRate({ window })',
  threshold: 'use trip: consecutive(n) or failureRate({ threshold })',
  breaker: 'use trip: consecutive(n) or failureRate({ … })',
  errorFilter: 'use failureOn(outcome): return false for outcomes that must not count',
  timeout: 'put timeout(ms) from @bulwark/deadline inside the breaker: pipeline(breaker, timeout(ms))',
  permittedNumberOfCallsInHalfOpenState: 'use halfOpen: { maxProbes }',
  capacity: 'use a bulkhead({ maxConcurrent }) from @bulwark/bulkhead',
  enabled: 'leave the breaker out of the pipeline, or use isolate()',
});
