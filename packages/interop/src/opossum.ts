import { type Clock, systemClock } from '@bulwark/clock';
import type { Disposable, ExecutionContext, Operation } from '@bulwark/core';
import {
  ambientDeadline,
  BasePolicy,
  OptionsChecker,
  optionKeys,
  ScopedContext,
} from '@bulwark/core/authoring';
import { acquireBridge, fireGuarded, type OpossumBreaker, type OpossumBridge } from './opossum-bridge.ts';
import { checkOpossumOptions, type OpossumOptions } from './opossum-options.ts';
import { requirePeer } from './peer.ts';

export type { OpossumBreaker } from './opossum-bridge.ts';
export {
  type BreakerConversion,
  breakerOptionsFromOpossum,
  OPOSSUM_DEFAULTS,
  type OpossumOptions,
  type OpossumState,
} from './opossum-options.ts';
export { type OpossumRateOptions, OpossumRateTrip, opossumRate } from './opossum-rate.ts';

/** opossum's constructor, as this entry uses it. */
type OpossumConstructor = new <A extends unknown[], R>(
  action: (...args: A) => R | Promise<R>,
  options?: OpossumOptions,
) => OpossumBreaker<A, R>;

// Loaded when this entry is imported, so that a missing peer is reported at once, by name.
const CircuitBreaker = requirePeer<OpossumConstructor>('opossum', '@bulwark/interop/opossum');

/** The arguments `opossumPolicy()`'s breaker fires its action with. */
export type OpossumPolicyArgs = [fn: Operation<unknown>, ctx: ExecutionContext];

/** Options for {@link opossumPolicy} beyond opossum's own. */
export interface OpossumPolicyOptions {
  /** The clock deadlines and open durations are measured on. Default: the system clock. */
  readonly clock?: Clock | undefined;
}

/** The keys of bulwark's own options beside opossum's ({@link OpossumPolicyOptions}, {@link FromOpossumOptions}). */
const OWN_KEYS = optionKeys<OpossumPolicyOptions>({ clock: true });

/** The action of every `opossumPolicy()` breaker: run the policy's function in its context. */
function bulwarkOperation(fn: Operation<unknown>, ctx: ExecutionContext): unknown {
  return fn(ctx);
}

/**
 * A policy backed by its own opossum breaker. See {@link opossumPolicy}.
 */
export class OpossumPolicy extends BasePolicy implements Disposable {
  /** The opossum breaker every call goes through: its stats, events and state machine. */
  readonly breaker: OpossumBreaker<OpossumPolicyArgs, unknown>;
  readonly #bridge: OpossumBridge;

  constructor(opossumOptions?: OpossumOptions, options?: OpossumPolicyOptions) {
    checkOpossumOptions('opossumPolicy()', opossumOptions, (check) => {
      check.expect(
        opossumOptions?.cache !== true,
        'cache',
        opossumOptions?.cache,
        'false or absent (every call runs a different function, so a cached result would answer the wrong call; use fromOpossum() on a breaker bound to its own action)',
      );
      check.expect(
        opossumOptions?.coalesce !== true,
        'coalesce',
        opossumOptions?.coalesce,
        'false or absent (every call runs a different function, so calls cannot share one; use fromOpossum())',
      );
      check.knownKeys(options, OWN_KEYS);
      check.clock('clock', options?.clock);
    });
    super(options?.clock);
    // opossum writes its defaults into the options object it is given: give it a copy.
    // Unnamed, it would take its action's name; bulwark calls an unnamed breaker "unnamed".
    this.breaker = new CircuitBreaker<OpossumPolicyArgs, unknown>(bulwarkOperation, {
      ...opossumOptions,
      name: opossumOptions?.name ?? 'unnamed',
    });
    this.#bridge = acquireBridge(this.breaker as unknown as OpossumBreaker<never[], unknown>, this.clock);
  }

  run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    // The function's context: it follows ctx.signal, and aborts at the deadline
    // or at opossum's timeout. Like bulwark's own breaker, the policy leaves the
    // caller's abort to the function (and to the caller's execute(), which
    // rejects at once): opossum sees the call end when the function does.
    const scope = new ScopedContext(ctx, ctx.deadline);
    return fireGuarded(
      this.#bridge,
      () => this.breaker.fire(fn, scope) as Promise<T>,
      ctx.clock,
      ctx.deadline,
      undefined,
      scope,
    );
  }

  /** Stops bridging telemetry and shuts the opossum breaker down (its timers included). */
  dispose(): void {
    this.#bridge.release();
    (this.breaker as { shutdown?: () => void }).shutdown?.();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * A policy backed by a new opossum breaker whose action runs the policy's
 * function. Every call goes through opossum's state machine, statistics and
 * events, with the opossum options a team already tuned; `.breaker` is the
 * opossum instance, for existing dashboards.
 *
 * Inside a pipeline it gains bulwark semantics: the open-circuit rejection is a
 * `BrokenCircuitError` (`ERR_CIRCUIT_OPEN`), opossum's timeout a retryable
 * `DeadlineExceededError` (`source: 'timeout'`) that also aborts `ctx.signal`,
 * and the deadline in the context ends the call with `DeadlineExceededError`
 * (aborting `ctx.signal` and opossum's `abortController`). Its events are
 * bridged to bulwark's circuit-breaker metrics with `source: 'opossum'`.
 *
 * `cache` and `coalesce` are refused: each call runs a different function.
 */
export function opossumPolicy(
  opossumOptions?: OpossumOptions,
  options?: OpossumPolicyOptions,
): OpossumPolicy {
  return new OpossumPolicy(opossumOptions, options);
}

/** Options for {@link fromOpossum}. */
export interface FromOpossumOptions {
  /** The clock deadlines and open durations are measured on. Default: the system clock. */
  readonly clock?: Clock | undefined;
}

/** What {@link fromOpossum} returns: `breaker.fire` with bulwark semantics. */
export interface OpossumFunction<A extends unknown[], R> extends Disposable {
  /** Fires the breaker, honouring the deadline in scope (`withDeadline()`, or `deadline(ms, { propagate: true })`). */
  (...args: A): Promise<R>;
  /** `fire` bound to a context: honours its deadline and passes its signal's abort through. */
  withContext(ctx: ExecutionContext): (...args: A) => Promise<R>;
  /** The breaker, unchanged. */
  readonly breaker: OpossumBreaker<A, R>;
}

/**
 * Adapts an existing opossum breaker, bound to its own action, for use inside
 * bulwark pipelines. The result takes the parameters of `breaker.fire`:
 *
 * - opossum's open-circuit rejection becomes `BrokenCircuitError`
 *   (`ERR_CIRCUIT_OPEN`), with `retryAfterMs` from the reset timeout (exact
 *   when the breaker opened after this call, else the reset timeout itself,
 *   an upper bound); bulwark's retry does not retry it;
 * - opossum's timeout becomes a retryable `DeadlineExceededError` (`source: 'timeout'`);
 * - the current deadline is honoured: when it passes, the promise rejects with
 *   `DeadlineExceededError` and the breaker's `abortController` (where it has
 *   one) is aborted.
 *
 * The breaker's events are bridged into bulwark telemetry with
 * `source: 'opossum'` until `dispose()`; after it, errors pass through unmapped.
 */
export function fromOpossum<A extends unknown[], R>(
  breaker: OpossumBreaker<A, R>,
  options?: FromOpossumOptions,
): OpossumFunction<A, R> {
  const check = new OptionsChecker('fromOpossum()');
  check.expect(
    typeof breaker === 'object' &&
      breaker !== null &&
      typeof breaker.fire === 'function' &&
      typeof breaker.on === 'function' &&
      typeof breaker.removeListener === 'function',
    'breaker',
    breaker,
    'an opossum CircuitBreaker',
  );
  check.knownKeys(options, OWN_KEYS);
  check.clock('clock', options?.clock);
  check.done();
  const clock = options?.clock ?? systemClock;
  const bridge = acquireBridge(breaker as unknown as OpossumBreaker<never[], unknown>, clock);
  const call = (...args: A): Promise<R> =>
    fireGuarded(bridge, () => breaker.fire(...args), clock, ambientDeadline(clock), undefined);
  const withContext =
    (ctx: ExecutionContext) =>
    (...args: A): Promise<R> =>
      fireGuarded(bridge, () => breaker.fire(...args), ctx.clock, ctx.deadline, ctx.signal);
  let disposed = false;
  const dispose = (): void => {
    if (disposed) return;
    disposed = true;
    bridge.release();
  };
  return Object.assign(call, { withContext, breaker, dispose, [Symbol.dispose]: dispose });
}
