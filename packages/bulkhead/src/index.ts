export {
  type AcquireOptions,
  BULKHEAD_DEFAULTS,
  type BulkheadOptions,
  type BulkheadPermit,
  BulkheadPolicy,
  type BulkheadRejectEvent,
  type BulkheadStats,
  type BulkheadWarningEvent,
  bulkhead,
} from './bulkhead.ts';
export {
  DISTRIBUTED_BULKHEAD_DEFAULTS,
  type DistributedBulkheadOptions,
  DistributedBulkheadPolicy,
  type DistributedPermit,
  distributedBulkhead,
  PermitLostError,
  type SemaphoreAcquireResult,
  type SemaphoreHolder,
  type SemaphoreStore,
} from './distributed.ts';
export { BulkheadRejectedError, type BulkheadRejectReason } from './errors.ts';
export {
  ADAPTIVE_LIMIT_DEFAULTS,
  AdaptiveLimit,
  type AdaptiveLimitOptions,
  AimdLimit,
  adaptiveLimit,
  FixedLimit,
  Gradient2Limit,
  type LimitAlgorithm,
  type LimitSample,
  type LimitSource,
  type LimitWindow,
  VegasLimit,
} from './limits.ts';
