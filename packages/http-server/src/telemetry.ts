import { Telemetry } from '@bulwark/core/authoring';

/** One scope for every server adapter: @bulwark/fastify and @bulwark/express report through it. */
export const telemetry = new Telemetry('@bulwark/http-server', '0.1.0');

export const refusalsCounter = telemetry.counter('bulwark.server.refusals', {
  description: 'Requests answered without running the handler, by reason',
  unit: '{request}',
});
export const abortsCounter = telemetry.counter('bulwark.server.aborts', {
  description: "Admitted requests whose handler's signal aborted, by reason",
  unit: '{request}',
});

/** The `reason` attributes, made once. */
export const REFUSED = Object.freeze({
  invalidDeadline: Object.freeze({ reason: 'invalid-deadline' }),
  deadlineExpired: Object.freeze({ reason: 'deadline-expired' }),
  overloaded: Object.freeze({ reason: 'overloaded' }),
  rateLimited: Object.freeze({ reason: 'rate-limited' }),
  rateLimitStore: Object.freeze({ reason: 'rate-limit-store-unavailable' }),
});
export const ABORTED = Object.freeze({
  deadline: Object.freeze({ reason: 'deadline' }),
  disconnect: Object.freeze({ reason: 'disconnect' }),
});
