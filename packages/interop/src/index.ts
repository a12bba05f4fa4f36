export { MissingPeerDependencyError } from './errors.ts';
export {
  type BreakerConversion,
  breakerOptionsFromOpossum,
  checkOpossumOptions,
  OPOSSUM_DEFAULTS,
  type OpossumOptions,
  type OpossumState,
} from './opossum-options.ts';
export {
  OPOSSUM_RATE_DEFAULTS,
  type OpossumRateOptions,
  OpossumRateTrip,
  opossumRate,
} from './opossum-rate.ts';
export {
  checkPRetryOptions,
  P_RETRY_DEFAULTS,
  P_RETRY_MAX_DELAY_MS,
  type PRetryContext,
  type PRetryOptions,
  pRetryStops,
  type RetryConversion,
  retryOptionsFromPRetry,
} from './p-retry-options.ts';
export { type ModuleLoader, requirePeer } from './peer.ts';
