import { type Clock, systemClock } from '@bulwark/clock';
import { ambientDeadline, OptionsChecker, optionKeys, runWithDeadline } from '@bulwark/core/authoring';
import { Deadline } from './deadline.ts';

const SCOPE_KEYS = optionKeys<DeadlineScopeOptions>({ clock: true });

/** Options for {@link withDeadline} and {@link currentDeadline}. */
export interface DeadlineScopeOptions {
  /** The clock the deadline is measured on. Default: the system clock. */
  readonly clock?: Clock | undefined;
}

/**
 * Runs `fn` with a deadline `ms` milliseconds from now in scope, for
 * everything it calls, synchronously or asynchronously. When scopes nest, the
 * earlier deadline wins. Every policy's `ExecutionContext.deadline` and
 * {@link currentDeadline} see it.
 */
export function withDeadline<R>(ms: number, fn: () => R, options?: DeadlineScopeOptions): R {
  const check = new OptionsChecker('withDeadline()');
  check.knownKeys(options, SCOPE_KEYS);
  check.number('ms', ms, { min: 0, infinite: true, required: true });
  check.func('fn', fn, true);
  check.clock('clock', options?.clock);
  check.done();
  const clock = options?.clock ?? systemClock;
  return runWithDeadline(clock.now() + ms, clock, fn);
}

/** The deadline in scope, measured on `clock` (default: the system clock), or undefined. */
export function currentDeadline(options?: DeadlineScopeOptions): Deadline | undefined {
  const clock = options?.clock ?? systemClock;
  const at = ambientDeadline(clock);
  return at === undefined ? undefined : Deadline.at(at, { clock });
}
