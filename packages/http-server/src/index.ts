export {
  type Admission,
  admitRequest,
  answerExpired,
  type ClosingResponse,
  deadlineExpired,
  enterDeadline,
} from './admission.ts';
export { type BulwarkRequestContext, RequestScope } from './context.ts';
export { type ErrorResponseOptions, errorResponse } from './errors.ts';
export { type BulwarkHttpHandler, type BulwarkHttpOptions, bulwarkHttp, sendResponse } from './http.ts';
export {
  completeIdempotent,
  fingerprintInput,
  type IdempotentMessage,
  type IdempotentRoute,
  type ProceedDecision,
  type RouteIdempotencyOptions,
  replayableResponse,
  routeIdempotency,
  type SentHeaders,
  type StoreErrorPhase,
  settleBefore,
} from './idempotency.ts';
export {
  BULWARK_SERVER_DEFAULTS,
  type BulwarkServerOptions,
  checkServerOptions,
  type ResolvedServerOptions,
  resolveServerOptions,
  SERVER_OPTION_KEYS,
  withServerDefaults,
} from './options.ts';
export {
  applyRateLimit,
  type InboundRateLimitOptions,
  type InboundRateLimitOutcome,
  limitRequest,
  rateLimitPolicyField,
} from './rate-limit.ts';
export {
  DEFAULT_MAX_UNPARSED_BODY_BYTES,
  type ReadUnparsedBodyOptions,
  readUnparsedBody,
  type UnparsedBody,
} from './unparsed-body.ts';
