import { Telemetry } from '@bulwark/core/authoring';

export const telemetry = new Telemetry('@bulwark/bulkhead', '0.1.0');

export const activeCounter = telemetry.upDownCounter('bulwark.bulkhead.active', {
  description: 'Calls holding a bulkhead slot',
  unit: '{call}',
});
export const queuedCounter = telemetry.upDownCounter('bulwark.bulkhead.queued', {
  description: 'Calls waiting in a bulkhead queue',
  unit: '{call}',
});
export const rejectionsCounter = telemetry.counter('bulwark.bulkhead.rejections', {
  description: 'Calls a bulkhead refused, by reason',
  unit: '{call}',
});

// The distributed bulkhead: what this process holds and sees of the fleet's limit.
export const heldCounter = telemetry.upDownCounter('bulwark.bulkhead.distributed.held', {
  description: 'Distributed bulkhead permits this process holds (not lost, not released)',
  unit: '{permit}',
});
export const distributedRejectionsCounter = telemetry.counter('bulwark.bulkhead.distributed.rejections', {
  description: 'Permits a distributed bulkhead refused, by reason',
  unit: '{call}',
});
export const leaseLossesCounter = telemetry.counter('bulwark.bulkhead.distributed.lease_losses', {
  description: 'Distributed bulkhead permits lost while held, by reason',
  unit: '{permit}',
});
