export {
  REDIS_BREAKER_STORE_DEFAULTS,
  RedisBreakerStore,
  type RedisBreakerStoreOptions,
  type RedisBreakerStoreStats,
  redisBreakerStore,
} from './breaker-store.ts';
export { FleetStoreError, type FleetStoreFailure, type FleetStoreKind } from './errors.ts';
export {
  REDIS_RATE_LIMIT_STORE_DEFAULTS,
  RedisRateLimitStore,
  type RedisRateLimitStoreOptions,
  type RedisRateLimitStoreStats,
  redisRateLimitStore,
  type StoreErrorChoice,
} from './rate-limit-store.ts';
export {
  DEFAULT_REDIS_PREFIX,
  RedisIdempotencyStore,
  type RedisStoreOptions,
  redisIdempotencyStore,
} from './redis-store.ts';
export type { RedisScriptClient, ScriptArguments } from './run-script.ts';
export {
  REDIS_SEMAPHORE_STORE_DEFAULTS,
  RedisSemaphoreStore,
  type RedisSemaphoreStoreOptions,
  redisSemaphoreStore,
} from './semaphore-store.ts';
