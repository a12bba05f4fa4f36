export type { BulwarkRequestContext } from './context.ts';
export { bulwarkExpress, idempotent } from './middleware.ts';
export {
  BULWARK_EXPRESS_DEFAULTS,
  type BulwarkExpressOptions,
  type RouteIdempotencyOptions,
} from './options.ts';
