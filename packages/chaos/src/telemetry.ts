import { Telemetry } from '@bulwark/core/authoring';

export const telemetry = new Telemetry('@bulwark/chaos', '0.1.0');

export const injectionsCounter = telemetry.counter('bulwark.chaos.injections', {
  description: 'Calls a chaos policy injected into, by kind: fault, latency or outcome',
  unit: '{call}',
});
