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
