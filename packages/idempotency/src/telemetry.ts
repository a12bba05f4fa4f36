import { Telemetry } from '@bulwark/core/authoring';

export const telemetry = new Telemetry('@bulwark/idempotency', '0.1.0');

/** `bulwark.idempotency.requests`: guarded requests by `outcome`. */
export const requestsCounter = telemetry.counter('bulwark.idempotency.requests', {
  description: 'Requests through an idempotency guard, by outcome',
  unit: '{request}',
});

/** `bulwark.idempotency.completions`: what became of executed requests, by `result`. */
export const completionsCounter = telemetry.counter('bulwark.idempotency.completions', {
  description: 'Executed requests by what happened to their record afterwards',
  unit: '{request}',
});

/**
 * `bulwark.idempotency.completion_retries`: completions (and releases) the
 * store failed, by the `result` their background retries came to.
 */
export const completionRetriesCounter = telemetry.counter('bulwark.idempotency.completion_retries', {
  description: 'Completions and releases retried in the background after a store failure, by final result',
  unit: '{request}',
});
