export { type Admission, admitRequest, type ClosingResponse, enterDeadline } from './admission.ts';
export { type BulwarkRequestContext, RequestScope } from './context.ts';
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
} from './idempotency.ts';
export {
  BULWARK_SERVER_DEFAULTS,
  type BulwarkServerOptions,
  type ResolvedServerOptions,
  resolveServerOptions,
} from './options.ts';
export {
  DEFAULT_MAX_UNPARSED_BODY_BYTES,
  type ReadUnparsedBodyOptions,
  readUnparsedBody,
  type UnparsedBody,
} from './unparsed-body.ts';
