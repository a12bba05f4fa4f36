// `@bulwark/core/authoring`: the plumbing for writing a policy or a bulwark
// package (option checks, scoped contexts, events, telemetry, the ambient
// deadline, the shared mechanisms: bounded calls, bucketed windows, keyed
// registries and the keyed policy over them, latency windows). Applications use the main entry, `@bulwark/core`; nothing is
// exported from both.
export { checkedDelayMs, isValidDelay } from './backoff.ts';
export {
  asPromise,
  type BoundedOptions,
  bounded,
  joinRace,
  type RaceJoin,
  type SettleObserver,
} from './bounded.ts';
export { BucketedWindow } from './bucketed-window.ts';
export {
  DerivedContext,
  followAbort,
  rootContext,
  ScopedContext,
  withAttempt,
  withIdempotencyKey,
} from './context.ts';
export { ambientDeadline, type DeadlineScope, runWithDeadline } from './deadline-scope.ts';
export { bulwarkErrorBrand, formatMs, markRefusal, refusalBrand } from './errors.ts';
export { disposable, EventHub } from './events.ts';
export {
  KeyedPolicy,
  type KeyedPolicyOptions,
  keyed,
  type PolicyRegistry,
} from './keyed-policy.ts';
export { type Evictable, KeyedRegistry, type KeyedRegistryOptions } from './keyed-registry.ts';
export { checkLatencySample, LatencyWindow } from './latency-window.ts';
export { formatValue, type OptionHints, OptionsChecker, optionKeys } from './options.ts';
export { BasePolicy, type PolicyKind, policyKind } from './policy.ts';
export {
  errorType,
  failSpan,
  type InstrumentInfo,
  LazyGauge,
  LevelCounter,
  type MetricInstrument,
  metricsRegistered,
  Telemetry,
  type TelemetrySpan,
  UpDownLevel,
} from './telemetry.ts';
