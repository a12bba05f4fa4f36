import { Telemetry } from '@bulwark/core/authoring';

export const telemetry = new Telemetry('@bulwark/failure-detector', '0.1.0');

export const transitionsCounter = telemetry.counter('bulwark.failure_detector.transitions', {
  description: 'Peers a heartbeat monitor began or stopped suspecting, by the state entered',
  unit: '{transition}',
});

export const droppedCounter = telemetry.counter('bulwark.failure_detector.dropped', {
  description: 'Heartbeats dropped before reaching a detector, by reason',
  unit: '{heartbeat}',
});

export const probesCounter = telemetry.counter('bulwark.failure_detector.probes', {
  description: 'HTTP health probes made by pingers, by outcome',
  unit: '{probe}',
});
