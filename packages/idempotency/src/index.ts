// The store and lease errors are core's, shared with every store (re-exported
// here, where idempotency users have always imported them).
export { LeaseLostError, StoreUnavailableError } from '@bulwark/core';
export {
  InvalidIdempotencyKeyError,
  LeaseSettledError,
  UnfingerprintableError,
  type UnfingerprintableReason,
} from './errors.ts';
export { canonicalJson, defaultFingerprint, MAX_FINGERPRINT_DEPTH } from './fingerprint.ts';
export {
  type BeginDecision,
  type CompletionEvent,
  type CompletionResult,
  type GuardCallOptions,
  IDEMPOTENCY_DEFAULTS,
  IdempotencyGuard,
  type IdempotencyLease,
  type IdempotencyOptions,
  type IdempotentResult,
  IN_PROGRESS_RETAIN_MIN_MS,
  idempotency,
  jsonResultCodec,
  type OutcomeEvent,
  type RequestOutcome,
  type ResultCodec,
} from './guard.ts';
export {
  assertIdempotencyKey,
  DEFAULT_IDEMPOTENCY_KEY_FORMAT,
  formatIdempotencyKeyHeader,
  IDEMPOTENCY_IN_PROGRESS_HEADER,
  IDEMPOTENCY_KEY_HEADER,
  IDEMPOTENT_REPLAYED_HEADER,
  type IdempotencyKeyFormat,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  type ParseIdempotencyKeyOptions,
  parseIdempotencyKeyHeader,
} from './header.ts';
export {
  defaultStoreStatus,
  HTTP_IDEMPOTENCY_DEFAULTS,
  type HttpDecision,
  HttpIdempotency,
  type HttpIdempotencyOptions,
  type HttpIdempotencyRequest,
  type HttpResponse,
  httpIdempotency,
  type Problem,
  problemResponse,
} from './http.ts';
export {
  type IdempotencyKeyOptions,
  IdempotencyKeyPolicy,
  idempotencyKey,
  newIdempotencyKey,
} from './key.ts';
export {
  DEFAULT_MEMORY_STORE_MAX_ENTRIES,
  MemoryIdempotencyStore,
  type MemoryStoreOptions,
  memoryStore,
} from './memory-store.ts';
export type {
  BeginOutcome,
  BeginRequest,
  IdempotencyStore,
  LeaseObservation,
} from './store.ts';
