import { AsyncLocalStorage } from 'node:async_hooks';
import type { Clock } from '@bulwark/clock';

/** A deadline in scope: an instant on the clock it was set on. */
export interface DeadlineScope {
  readonly at: number;
  readonly clock: Clock;
}

/**
 * The key of the deadline scope on `globalThis`. A partial upgrade can leave
 * two copies of @bulwark/core in one process; each finds the same
 * AsyncLocalStorage under this registered symbol, so a deadline put in scope
 * through one copy is seen by code running on the other. The version suffix
 * names the shape of {@link DeadlineScope}: a future release that changes that
 * shape must take a new key (`.v2`), so copies that cannot read each other's
 * scopes never share one.
 */
const STORAGE_KEY = Symbol.for('bulwark.deadline-scope.v1');

const processWide = globalThis as { [STORAGE_KEY]?: AsyncLocalStorage<DeadlineScope> };
processWide[STORAGE_KEY] ??= new AsyncLocalStorage<DeadlineScope>();
const storage: AsyncLocalStorage<DeadlineScope> = processWide[STORAGE_KEY];

/** The deadline in scope, as an instant on `clock`, or undefined. */
export function ambientDeadline(clock: Clock): number | undefined {
  const scope = storage.getStore();
  if (scope === undefined) return undefined;
  if (scope.clock === clock) return scope.at;
  // A deadline set on another clock: carry over the time remaining.
  return clock.now() + (scope.at - scope.clock.now());
}

/**
 * Runs `fn` with the deadline `at` (an instant on `clock`) in scope for
 * everything it calls, synchronously or asynchronously. When a deadline is
 * already in scope, the earlier one wins.
 */
export function runWithDeadline<R>(at: number, clock: Clock, fn: () => R): R {
  const current = storage.getStore();
  if (current !== undefined) {
    const currentAt = current.clock === clock ? current.at : clock.now() + (current.at - current.clock.now());
    if (currentAt <= at) return fn();
  }
  return storage.run({ at, clock }, fn);
}
