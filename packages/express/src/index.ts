export {
  BULWARK_SERVER_DEFAULTS as BULWARK_EXPRESS_DEFAULTS,
  type BulwarkRequestContext,
  type BulwarkServerOptions as BulwarkExpressOptions,
  type StoreErrorPhase,
} from '@bulwark/http-server';
export {
  bulwarkErrorHandler,
  bulwarkExpress,
  deadlineGate,
  type IdempotentHandler,
  idempotent,
  type RouteIdempotencyOptions,
} from './middleware.ts';
