export { DeadlineExceededError, type DeadlineSource } from '@bulwark/core';
export {
  DEADLINE_HEADERS,
  deadlineHeaders,
  decodeGrpcTimeout,
  decodeTimeoutMs,
  encodeGrpcTimeout,
  encodeTimeoutMs,
  type HeaderSource,
  type InboundTimeout,
  InvalidDeadlineHeaderError,
  type OutboundDeadlineOptions,
  readDeadlineHeaders,
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
