export {
  type BackoffFunction,
  ConstantBackoff,
  constant,
  EXPONENTIAL_DEFAULTS,
  ExponentialBackoff,
  type ExponentialOptions,
  exponential,
  FunctionBackoff,
  fromFunction,
  JITTER_KINDS,
  type Jitter,
} from './backoff.ts';
export { RETRY_BUDGET_DEFAULTS, RetryBudget, type RetryBudgetOptions, retryBudget } from './budget.ts';
export {
  isRetryableError,
  NON_TRANSIENT_UNDICI_CODES,
  retryAfterHint,
  TRANSIENT_ERROR_CODES,
} from './classify.ts';
export {
  type GiveUpEvent,
  RETRY_DEFAULTS,
  type RetryDecision,
  type RetryEvent,
  type RetryOn,
  type RetryOptions,
  RetryPolicy,
  type RetrySuccessEvent,
  type RetryVerdict,
  retry,
  type StopReason,
} from './retry.ts';
