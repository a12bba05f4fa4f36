export { DeadlineExceededError, type DeadlineSource } from '@bulwark/core';
export {
  ADAPTIVE_TIMEOUT_DEFAULTS,
  type AdaptiveTimeoutOptions,
  AdaptiveTimeoutPolicy,
  adaptiveTimeout,
} from './adaptive-timeout.ts';
export {
  DEADLINE_HEADERS,
  type DeadlineProblem,
  deadlineHeaders,
  decodeGrpcTimeout,
  decodeTimeoutMs,
  encodeGrpcTimeout,
  encodeTimeoutMs,
  type HeaderSource,
  type InboundDeadline,
  type InboundDeadlineOptions,
  type InboundTimeout,
  InvalidDeadlineHeaderError,
  type OutboundDeadlineOptions,
  readDeadlineHeaders,
  readInboundDeadline,
} from './codecs.ts';
export { Deadline } from './deadline.ts';
export {
  type DeadlineExpiredEvent,
  DeadlinePolicy,
  type DeadlinePolicyOptions,
  deadline,
  TimeoutPolicy,
  timeout,
} from './policies.ts';
export { currentDeadline, type DeadlineScopeOptions, withDeadline } from './scope.ts';
