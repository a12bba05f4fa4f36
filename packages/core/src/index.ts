// `@bulwark/core`: the user API (policies, pipeline(), contexts, errors,
// fallback, traced()). What policy authors need besides is `@bulwark/core/authoring`.
export type { Backoff } from './backoff.ts';
export { type ExecuteOptions, type ExecutionContext, type Operation, remainingMs } from './context.ts';
export {
  BulwarkError,
  type BulwarkErrorCode,
  type BulwarkErrorFor,
  type BulwarkErrorMap,
  type BulwarkErrorOptions,
  CallbackError,
  DeadlineExceededError,
  type DeadlineSource,
  isBulwarkError,
  isRefusal,
  type LeaseLossReason,
  LeaseLostError,
  type StoreFailure,
  type StoreUnavailableDetails,
  StoreUnavailableError,
} from './errors.ts';
export type { Disposable, Listener } from './events.ts';
export {
  type FallbackEvent,
  type FallbackHandler,
  type FallbackOn,
  type FallbackOptions,
  type FallbackOutcome,
  FallbackPolicy,
  fallback,
} from './fallback.ts';
export { InvalidOptionsError, type OptionViolation } from './options.ts';
export type { Outcome } from './outcome.ts';
export {
  type ExecuteOnlyPolicy,
  NoopPolicy,
  noopPolicy,
  PipelinePolicy,
  type Policy,
  pipeline,
} from './policy.ts';
export { type TracedOptions, TracedPolicy, traced } from './traced.ts';
export {
  type CallOptionsSplitter,
  type MethodInvoker,
  type SplitCall,
  type WrapMethodsOptions,
  wrapMethods,
} from './wrap-methods.ts';
