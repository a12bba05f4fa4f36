import { Telemetry } from '@bulwark/core/authoring';

export const telemetry = new Telemetry('@bulwark/hedging', '0.1.0');

export const hedgesCounter = telemetry.counter('bulwark.hedging.hedges', {
  description: 'Hedged attempts started, by what triggered them: the delay ran out, or an attempt failed',
  unit: '{attempt}',
});

export const deniedCounter = telemetry.counter('bulwark.hedging.denied', {
  description:
    'Hedges that were due but not started, by reason: the budget was empty or the deadline too close',
  unit: '{attempt}',
});

export const winsCounter = telemetry.counter('bulwark.hedging.wins', {
  description: 'Hedged calls (calls that started at least one hedge) that succeeded, by which attempt won',
  unit: '{call}',
});
