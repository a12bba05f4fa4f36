// `@bulwark/core/authoring`: the plumbing for writing a policy or a bulwark
// package (option checks, scoped contexts, events, telemetry, the ambient
// deadline). Applications use the main entry, `@bulwark/core`; nothing is
// exported from both.
export { checkedDelayMs, isValidDelay } from './backoff.ts';
export { rootContext, ScopedContext, withAttempt, withIdempotencyKey } from './context.ts';
export { ambientDeadline, type DeadlineScope, runWithDeadline } from './deadline-scope.ts';
export { bulwarkErrorBrand, formatMs, refusalBrand } from './errors.ts';
export { disposable, EventHub } from './events.ts';
export { formatValue, OptionsChecker } from './options.ts';
export { BasePolicy } from './policy.ts';
export { type InstrumentInfo, LazyGauge, type MetricInstrument, Telemetry } from './telemetry.ts';
