import { InvalidOptionsError } from '@bulwark/core';
import { OptionsChecker } from '@bulwark/core/authoring';
import type { CircuitState } from './errors.ts';
import type { BreakerState } from './state.ts';
import { type BreakerSnapshot, SNAPSHOT_VERSION } from './store.ts';

const STATES: readonly CircuitState[] = ['closed', 'open', 'half-open', 'isolated'];

/** Checks a saved state; throws a RangeError that says what is wrong with it. */
export function checkSnapshot(snapshot: unknown, where = 'initialState'): BreakerSnapshot {
  const s = snapshot as Partial<BreakerSnapshot> | null;
  if (typeof s !== 'object' || s === null) {
    throw new InvalidOptionsError('circuitBreaker()', [
      { option: where, expected: 'a snapshot from breaker.toJSON()', value: snapshot },
    ]);
  }
  if (s.version !== SNAPSHOT_VERSION) {
    throw new InvalidOptionsError('circuitBreaker()', [
      {
        option: `${where}.version`,
        expected: `${SNAPSHOT_VERSION} (a snapshot from this version of @bulwark/circuit-breaker)`,
        value: s.version,
      },
    ]);
  }
  const check = new OptionsChecker('circuitBreaker()');
  check.oneOf(`${where}.state`, s.state, STATES, true);
  check.number(`${where}.openRemainingMs`, s.openRemainingMs, { min: 0, required: true });
  check.number(`${where}.trips`, s.trips, { integer: true, min: 0, required: true });
  check.done();
  return Object.freeze({
    version: SNAPSHOT_VERSION,
    state: s.state!,
    openRemainingMs: s.openRemainingMs!,
    trips: s.trips!,
  });
}

/** The snapshot of `state` at `now` (durations relative to `now`). */
export function snapshotOf(state: BreakerState, trips: number, now: number): BreakerSnapshot {
  return {
    version: SNAPSHOT_VERSION,
    state: state.kind,
    openRemainingMs: state.kind === 'open' ? Math.max(0, state.until - now) : 0,
    trips,
  };
}

/**
 * What a breaker in local state `local` adopts from the fleet's `snapshot`:
 * an open or isolated state published elsewhere, for how long (an isolation
 * elsewhere opens here for `isolatedMs`, since nobody here can know when it
 * ends), or undefined to keep its own. It never closes a breaker that is open
 * here, and never reopens one for an open state that has already elapsed.
 */
export function adoptedOpenMs(
  snapshot: BreakerSnapshot,
  local: CircuitState,
  isolatedMs: () => number,
): number | undefined {
  if (snapshot.state !== 'open' && snapshot.state !== 'isolated') return undefined;
  if (local === 'open' || local === 'isolated') return undefined;
  if (snapshot.state === 'isolated') return isolatedMs();
  return snapshot.openRemainingMs > 0 ? snapshot.openRemainingMs : undefined;
}
