export {
  type BreakerErrorEvent,
  type BreakerStats,
  type CircuitAcquireOptions,
  CircuitBreakerPolicy,
  type CircuitPermit,
  type CircuitWaitOptions,
  circuitBreaker,
  type StateChangeEvent,
  type TransitionReason,
} from './breaker.ts';
export { BrokenCircuitError, CircuitClosedError, type CircuitState } from './errors.ts';
export {
  type CallOutcome,
  CIRCUIT_BREAKER_DEFAULTS,
  type CircuitBreakerOptions,
  type HalfOpenOptions,
  RIDE_THROUGH_DEFAULTS,
  type RideThroughOptions,
} from './options.ts';
export {
  CIRCUIT_BREAKER_REGISTRY_DEFAULTS,
  CircuitBreakerRegistry,
  type CircuitBreakerRegistryOptions,
  circuitBreakers,
  type KeyedStateChangeEvent,
} from './registry.ts';
export {
  type BreakerSnapshot,
  type BreakerStateStore,
  MemoryBreakerStateStore,
  memoryBreakerStateStore,
  SNAPSHOT_VERSION,
} from './store.ts';
export type { RideThroughOutcome } from './telemetry.ts';
export {
  ADAPTIVE_THROTTLE_DEFAULTS,
  type AdaptiveThrottleOptions,
  AdaptiveThrottlePolicy,
  adaptiveThrottle,
  type ThrottleClassifier,
  ThrottledError,
  type ThrottleEvent,
  type ThrottleOutcome,
  type ThrottlePermit,
  type ThrottleVerdict,
} from './throttle.ts';
export {
  ConsecutiveTrip,
  consecutive,
  type FailureRateOptions,
  FailureRateTrip,
  failureRate,
  RATE_TRIP_DEFAULTS,
  type SlowCallRateOptions,
  SlowCallRateTrip,
  slowCallRate,
  type Trip,
  type TripState,
  type WindowSpec,
} from './trips.ts';
