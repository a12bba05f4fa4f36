export { createFetch, type ResilientFetch } from './create-fetch.ts';
export type { EquivalentOrigins } from './equivalent-origins.ts';
export { discardResponse, isIdempotentMethod, isReplayableBody, RETRY_ATTEMPT_HEADER } from './http.ts';
export {
  type CreateFetchOptions,
  FETCH_DEFAULTS,
  type FetchFunction,
} from './options.ts';
export { ORIGIN_BULKHEAD_DEFAULTS, type OriginBulkheadOptions, OriginBulkheads } from './origin-bulkheads.ts';
export type { FetchPolicies } from './policies.ts';
export { parseRetryAfter } from './retry-after.ts';
