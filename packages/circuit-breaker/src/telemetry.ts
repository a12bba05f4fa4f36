import { type MetricInstrument, Telemetry } from '@bulwark/core/authoring';
import type { CircuitState } from './errors.ts';

export const telemetry = new Telemetry('@bulwark/circuit-breaker', '0.1.0');

/** The counters every breaker reports, as created on one Telemetry scope. */
export interface BreakerCounters {
  readonly calls: MetricInstrument;
  readonly refusals: MetricInstrument;
  readonly transitions: MetricInstrument;
}

/**
 * Creates the breaker counters (`bulwark.circuit.calls`, `.refusals`,
 * `.transitions`) on `scope`. Bridges that report another library's breakers
 * under the same names (`@bulwark/interop` for opossum) call it with their own
 * scope, so the names, units and descriptions are defined once.
 */
export function breakerCounters(scope: Telemetry): BreakerCounters {
  return Object.freeze({
    calls: scope.counter('bulwark.circuit.calls', {
      description: 'Calls a breaker admitted, by how they were judged: success, failure or ignored',
      unit: '{call}',
    }),
    refusals: scope.counter('bulwark.circuit.refusals', {
      description: 'Calls a breaker refused, by the state that refused them',
      unit: '{call}',
    }),
    transitions: scope.counter('bulwark.circuit.transitions', {
      description: 'Breaker state changes',
      unit: '{transition}',
    }),
  });
}

const counters = breakerCounters(telemetry);
export const callsCounter = counters.calls;
export const refusalsCounter = counters.refusals;
export const transitionsCounter = counters.transitions;

const STATES: readonly CircuitState[] = ['closed', 'open', 'half-open', 'isolated'];

/** Breakers per name and state, for the `bulwark.circuit.state` gauge. */
const population = new Map<string, Record<CircuitState, number>>();

const stateGauge = telemetry.gauge(
  'bulwark.circuit.state',
  { description: 'Breakers in each state, per breaker name', unit: '{breaker}' },
  (result) => {
    for (const [breaker, counts] of population) {
      for (const state of STATES) result.observe(counts[state], attributesFor(breaker, 'state', state));
    }
  },
);

/** Moves one breaker named `name` from state `from` (or nowhere) to `to` (or nowhere). */
export function countState(name: string, from: CircuitState | undefined, to: CircuitState | undefined): void {
  let counts = population.get(name);
  if (counts === undefined) {
    counts = { closed: 0, open: 0, 'half-open': 0, isolated: 0 };
    population.set(name, counts);
  }
  if (from !== undefined) counts[from]--;
  if (to !== undefined) counts[to]++;
  stateGauge.refresh();
}

type Attributes = Readonly<Record<string, string>>;

const attributeCache = new Map<string, Attributes>();

/** A frozen attribute set `{ breaker: name, [key]: value }`, shared by every breaker of that name. */
export function attributesFor(name: string, key?: string, value?: string): Attributes {
  const id = key === undefined ? name : `${name}\u0000${key}\u0000${value}`;
  let attributes = attributeCache.get(id);
  if (attributes === undefined) {
    attributes = Object.freeze(key === undefined ? { breaker: name } : { breaker: name, [key]: value! });
    attributeCache.set(id, attributes);
  }
  return attributes;
}

/** The attribute sets one breaker name records with, built once per name. */
export interface BreakerAttributes {
  readonly name: string;
  readonly outcome: readonly [Attributes, Attributes, Attributes];
  readonly refused: Readonly<Record<CircuitState, Attributes>>;
}

/**
 * How a ride-through ended, or why a refused call did not wait:
 * `admitted` (a probe slot or the closed breaker let it through), `refused`
 * (a probe failed and its deadline could not outlive the next one, or the breaker was isolated), `timed-out` (its deadline or
 * `maxWaitMs` came before a verdict), `aborted` (its signal), `full`
 * (`maxWaiters` calls were already waiting), `no-time` (its deadline could not
 * outlive the probe, or the breaker is isolated).
 */
export type RideThroughOutcome = 'admitted' | 'refused' | 'timed-out' | 'aborted' | 'full' | 'no-time';

const rideThroughCounter = telemetry.counter('bulwark.circuit.ride_through', {
  description:
    'Refused calls that waited for a probe, by outcome (admitted, refused, timed-out, aborted), or did not (full, no-time)',
  unit: '{call}',
});

/** Counts one ride-through outcome for the breakers with these attributes. */
export function recordRideThrough(attrs: BreakerAttributes, outcome: RideThroughOutcome): void {
  rideThroughCounter.add(1, attributesFor(attrs.name, 'outcome', outcome));
}

const attributeSets = new Map<string, BreakerAttributes>();

/** The attribute sets for breakers named `name` (shared by all of them). */
export function breakerAttributes(name: string): BreakerAttributes {
  let set = attributeSets.get(name);
  if (set === undefined) {
    set = Object.freeze({
      name,
      outcome: Object.freeze([
        attributesFor(name, 'outcome', 'success'),
        attributesFor(name, 'outcome', 'failure'),
        attributesFor(name, 'outcome', 'ignored'),
      ] as const),
      refused: Object.freeze({
        closed: attributesFor(name, 'state', 'closed'),
        open: attributesFor(name, 'state', 'open'),
        'half-open': attributesFor(name, 'state', 'half-open'),
        isolated: attributesFor(name, 'state', 'isolated'),
      }),
    });
    attributeSets.set(name, set);
  }
  return set;
}

/** Records one breaker's state change: the state gauge (unless it left its registry) and the counter. */
export function recordTransition(
  name: string | undefined,
  counted: boolean,
  from: CircuitState,
  to: CircuitState,
): void {
  if (name !== undefined && counted) countState(name, from, to);
  transitionsCounter.add(1, { breaker: name ?? 'unnamed', from, to });
}

/** Adds the `bulwark.circuit.opened` span event for a trip (a state adopted from a store adds none). */
export function recordOpened(name: string | undefined, reason: string, openMs: number): void {
  telemetry.spanEvent('bulwark.circuit.opened', () => ({
    breaker: name ?? 'unnamed',
    reason,
    open_ms: openMs,
  }));
}
