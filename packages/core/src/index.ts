export { type Backoff, checkedDelayMs, isValidDelay } from './backoff.ts';
export { type BoundedOptions, bounded } from './bounded.ts';
export { BucketedWindow } from './bucketed-window.ts';
export {
  type ExecuteOptions,
  type ExecutionContext,
  type Operation,
  remainingMs,
  rootContext,
  ScopedContext,
  withAttempt,
  withIdempotencyKey,
} from './context.ts';
export { ambientDeadline, type DeadlineScope, runWithDeadline } from './deadline-scope.ts';
export {
  BulwarkError,
  type BulwarkErrorCode,
  type BulwarkErrorFor,
  type BulwarkErrorMap,
  type BulwarkErrorOptions,
  bulwarkErrorBrand,
  CallbackError,
  DeadlineExceededError,
  type DeadlineSource,
  formatMs,
  isBulwarkError,
  isRefusal,
  refusalBrand,
} from './errors.ts';
export { type Disposable, disposable, EventHub, type Listener } from './events.ts';
export {
  type FallbackEvent,
  type FallbackHandler,
  type FallbackOn,
  type FallbackOptions,
  type FallbackOutcome,
  FallbackPolicy,
  fallback,
} from './fallback.ts';
export { type Evictable, KeyedRegistry, type KeyedRegistryOptions } from './keyed-registry.ts';
export {
  formatValue,
  InvalidOptionsError,
  type OptionHints,
  OptionsChecker,
  type OptionViolation,
  optionKeys,
} from './options.ts';
export type { Outcome } from './outcome.ts';
export {
  BasePolicy,
  type ExecuteOnlyPolicy,
  NoopPolicy,
  noopPolicy,
  PipelinePolicy,
  type Policy,
  type PolicyKind,
  pipeline,
  policyKind,
  startCall,
} from './policy.ts';
export {
  errorType,
  failSpan,
  type InstrumentInfo,
  LazyGauge,
  LevelCounter,
  type MetricInstrument,
  Telemetry,
  type TelemetrySpan,
  UpDownLevel,
} from './telemetry.ts';
export { type TracedOptions, TracedPolicy, traced } from './traced.ts';
export {
  type CallOptionsSplitter,
  type MethodInvoker,
  type SplitCall,
  type WrapMethodsOptions,
  wrapMethods,
} from './wrap-methods.ts';
