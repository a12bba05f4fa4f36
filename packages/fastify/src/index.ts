export type { BulwarkRequestContext } from './context.ts';
export {
  BULWARK_FASTIFY_DEFAULTS,
  type BulwarkFastifyOptions,
  type RouteIdempotencyOptions,
} from './options.ts';
export { bulwarkFastify } from './plugin.ts';
