import { breakerCounters } from '@bulwark/circuit-breaker/authoring';
import { Telemetry } from '@bulwark/core/authoring';

/**
 * Breakers bridged from opossum report under the metric names of
 * `@bulwark/circuit-breaker` (in this package's scope), with `source: 'opossum'`,
 * so one dashboard shows native and opossum breakers side by side.
 */
export const telemetry = new Telemetry('@bulwark/interop', '0.1.0');

const counters = breakerCounters(telemetry);
export const callsCounter = counters.calls;
export const refusalsCounter = counters.refusals;
export const transitionsCounter = counters.transitions;

/** The states an opossum breaker can be in, in bulwark's words. */
export type BridgedState = 'closed' | 'open' | 'half-open';

const STATES: readonly BridgedState[] = ['closed', 'open', 'half-open'];

/** Bridged breakers per name and state, for the `bulwark.circuit.state` gauge. */
const population = new Map<string, Record<BridgedState, number>>();

const stateGauge = telemetry.gauge(
  'bulwark.circuit.state',
  { description: 'Breakers in each state, per breaker name', unit: '{breaker}' },
  (result) => {
    for (const [breaker, counts] of population) {
      for (const state of STATES) result.observe(counts[state], { breaker, state, source: 'opossum' });
    }
  },
);

/** Moves one bridged breaker named `name` from state `from` (or nowhere) to `to` (or nowhere). */
export function countState(name: string, from: BridgedState | undefined, to: BridgedState | undefined): void {
  let counts = population.get(name);
  if (counts === undefined) {
    counts = { closed: 0, open: 0, 'half-open': 0 };
    population.set(name, counts);
  }
  if (from !== undefined) counts[from]--;
  if (to !== undefined) counts[to]++;
  stateGauge.refresh();
}
