export {
  DEFAULT_REDIS_PREFIX,
  RedisIdempotencyStore,
  type RedisScriptClient,
  type RedisStoreOptions,
  redisIdempotencyStore,
  type ScriptArguments,
} from './redis-store.ts';
