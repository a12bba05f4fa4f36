export {
  BULWARK_SERVER_DEFAULTS as BULWARK_FASTIFY_DEFAULTS,
  type BulwarkRequestContext,
  type StoreErrorPhase,
} from '@bulwark/http-server';
export {
  type BulwarkFastifyOptions,
  bulwarkErrorReply,
  bulwarkFastify,
  type RouteIdempotencyOptions,
} from './plugin.ts';
