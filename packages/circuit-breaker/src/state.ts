import type { TripState } from './trips.ts';

/**
 * The breaker's state machine, as a tagged union: each state carries only its
 * own fields, and a transition replaces the whole state object.
 *
 * - closed: the trips' running state (made at the first recorded call) and
 *   the admission number of the latest success;
 * - open: when it lets a probe through;
 * - half-open: the probes in flight and the probe successes so far;
 * - isolated: the live `isolate()` handles.
 */
export type BreakerState = ClosedState | OpenState | HalfOpenState | IsolatedState;

export interface ClosedState {
  readonly kind: 'closed';
  /** The trips' running state, created on the first recorded call. */
  trips: TripState[] | undefined;
  /**
   * The highest admission number of a success recorded in this state: a
   * failure admitted before it tells of the dependency as it was, and does
   * not count toward a trip.
   */
  lastSuccessSeq: number;
}

export interface OpenState {
  readonly kind: 'open';
  /** The instant (on the breaker's clock) from which a probe is let through. */
  readonly until: number;
}

export interface HalfOpenState {
  readonly kind: 'half-open';
  /** Probes in flight: id → admission time, in admission (so time) order. */
  readonly probes: Map<number, number>;
  /** The last probe id handed out (ids are unique within this state). */
  seq: number;
  /** Probe successes so far. */
  successes: number;
}

export interface IsolatedState {
  readonly kind: 'isolated';
  /** The live handles; the breaker closes when the last one is released. */
  readonly handles: Set<object>;
}

export function closedState(): ClosedState {
  return { kind: 'closed', trips: undefined, lastSuccessSeq: 0 };
}

export function openState(until: number): OpenState {
  return { kind: 'open', until };
}

export function halfOpenState(): HalfOpenState {
  return { kind: 'half-open', probes: new Map(), seq: 0, successes: 0 };
}

export function isolatedState(handles: Set<object>): IsolatedState {
  return { kind: 'isolated', handles };
}

/**
 * Takes back the permits of probes admitted `probeTimeoutMs` or more ago: a
 * probe that never settles must not hold its slot forever. Their late results
 * are ignored.
 */
export function expireProbes(state: HalfOpenState, probeTimeoutMs: number, now: number): void {
  // Admission order is time order: stop at the first probe still within its time.
  for (const [id, start] of state.probes) {
    if (start + probeTimeoutMs > now) break;
    state.probes.delete(id);
  }
}

/** Whether a probe slot is free now, once the probes past `probeTimeoutMs` gave theirs back. */
function hasFreeSlot(state: HalfOpenState, maxProbes: number, probeTimeoutMs: number, now: number): boolean {
  expireProbes(state, probeTimeoutMs, now);
  return state.probes.size < maxProbes;
}

/** Admits a probe: its id, or 0 when every slot is taken. */
export function admitProbe(
  state: HalfOpenState,
  maxProbes: number,
  probeTimeoutMs: number,
  now: number,
): number {
  if (!hasFreeSlot(state, maxProbes, probeTimeoutMs, now)) return 0;
  state.probes.set(++state.seq, now);
  return state.seq;
}

/** Half-open: milliseconds until a probe slot is free (0 when one is free now). */
export function probeRetryAfterMs(
  state: HalfOpenState,
  maxProbes: number,
  probeTimeoutMs: number,
  now: number,
): number {
  if (hasFreeSlot(state, maxProbes, probeTimeoutMs, now)) return 0;
  // Every slot is taken: the oldest probe gives its permit back first.
  for (const start of state.probes.values()) return Math.max(0, start + probeTimeoutMs - now);
  return 0;
}
