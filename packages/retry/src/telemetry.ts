import { Telemetry } from '@bulwark/core/authoring';

export const telemetry = new Telemetry('@bulwark/retry', '0.1.0');

export const attemptsCounter = telemetry.counter('bulwark.retry.attempts', {
  description: 'Attempts started by retry policies; retry is "true" for every attempt after the first',
  unit: '{attempt}',
});

export const giveupsCounter = telemetry.counter('bulwark.retry.giveups', {
  description: 'Retry loops that stopped without success, by reason',
  unit: '{call}',
});
