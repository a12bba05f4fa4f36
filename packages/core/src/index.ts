export { type Backoff, checkedDelayMs, isValidDelay } from './backoff.ts';
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
export { formatValue, InvalidOptionsError, OptionsChecker, type OptionViolation } from './options.ts';
export type { Outcome } from './outcome.ts';
export {
  BasePolicy,
  type ExecuteOnlyPolicy,
  NoopPolicy,
  noopPolicy,
  PipelinePolicy,
  type Policy,
  pipeline,
} from './policy.ts';
export { type InstrumentInfo, LazyGauge, type MetricInstrument, Telemetry } from './telemetry.ts';
export {
  type CallOptionsSplitter,
  type MethodInvoker,
  type SplitCall,
  type WrapMethodsOptions,
  wrapMethods,
} from './wrap-methods.ts';
