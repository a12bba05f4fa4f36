export {
  BULWARK_SERVER_DEFAULTS as BULWARK_FASTIFY_DEFAULTS,
  type BulwarkRequestContext,
  type BulwarkServerOptions as BulwarkFastifyOptions,
} from '@bulwark/http-server';
export { bulwarkFastify, type RouteIdempotencyOptions } from './plugin.ts';
