export {
  BULWARK_SERVER_DEFAULTS as BULWARK_EXPRESS_DEFAULTS,
  type BulwarkRequestContext,
  type BulwarkServerOptions as BulwarkExpressOptions,
} from '@bulwark/http-server';
export { bulwarkExpress, deadlineGate, idempotent, type RouteIdempotencyOptions } from './middleware.ts';
