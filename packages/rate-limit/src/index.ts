export { RateLimitedError, RateLimitStoreError, type RateLimitStoreFailure } from './errors.ts';
export {
  RATE_LIMIT_DEFAULTS,
  RATE_LIMIT_MAX_WAIT_MS,
  type RateLimitOptions,
  RateLimitPolicy,
  type RateLimitRefuseEvent,
  rateLimit,
  type TakeOptions,
} from './rate-limit.ts';
export {
  gcra,
  MEMORY_RATE_LIMIT_STORE_DEFAULTS,
  MemoryRateLimitStore,
  type MemoryRateLimitStoreOptions,
  type MemoryRateLimitStoreStats,
  memoryRateLimitStore,
  type RateLimitDecision,
  type RateLimitRule,
  type RateLimitStore,
  type TakeRequest,
} from './store.ts';
