import type { Clock } from '@bulwark/clock';
import type { ExecutionContext, Operation } from './context.ts';
import { CallbackError } from './errors.ts';
import { OptionsChecker, optionKeys } from './options.ts';
import { BasePolicy, type Policy } from './policy.ts';

/**
 * Where a {@link KeyedPolicy} finds the member policy for a key: a
 * `KeyedRegistry` of policies, or a module's registry of its own with a
 * `get()` (`circuitBreakers()`, fetch's `OriginBulkheads`). `get()` makes
 * the member on its first use.
 */
export interface PolicyRegistry<K, P extends Policy = Policy> {
  get(key: K): P;
}

/** Options for {@link keyed}. */
export interface KeyedPolicyOptions {
  /**
   * The clock of the context `execute()` makes; give the clock the members
   * measure time on. Default: the system clock.
   */
  readonly clock?: Clock | undefined;
}

const KEYED_KEYS = optionKeys<KeyedPolicyOptions>({ clock: true });

/**
 * A policy that runs each call under the member of a registry picked by a key
 * derived from the call's context: one breaker or bulkhead per host, per
 * tenant, composed into a `pipeline()` as a single policy. Each call costs
 * `keyOf(ctx)` and one `registry.get()`; the member runs the call in the same
 * context. A `keyOf` that throws rejects the call with a `CallbackError`.
 */
export class KeyedPolicy<K, P extends Policy = Policy> extends BasePolicy {
  /** Where the members are kept. */
  readonly registry: PolicyRegistry<K, P>;
  readonly #keyOf: (ctx: ExecutionContext) => K;

  constructor(
    registry: PolicyRegistry<K, P>,
    keyOf: (ctx: ExecutionContext) => K,
    options?: KeyedPolicyOptions,
  ) {
    const check = new OptionsChecker('keyed()');
    check.expect(
      typeof registry === 'object' && registry !== null && typeof registry.get === 'function',
      'registry',
      registry,
      'a registry of policies (an object with get(key))',
    );
    check.func('keyOf', keyOf, true);
    check.knownKeys(options, KEYED_KEYS);
    check.clock('clock', options?.clock, false);
    check.done();
    super(options?.clock);
    this.registry = registry;
    this.#keyOf = keyOf;
  }

  run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
    let key: K;
    try {
      key = this.#keyOf(ctx);
    } catch (error) {
      return Promise.reject(new CallbackError('keyOf', error));
    }
    return this.registry.get(key).run(fn, ctx);
  }
}

/**
 * A policy that runs each call under `registry.get(keyOf(ctx))`: for example
 * `keyed(circuitBreakers(), (ctx) => tenantOf(ctx))` gives every tenant its
 * own breaker, as one policy of a `pipeline()`.
 *
 * @throws InvalidOptionsError when `registry` has no `get()`, `keyOf` is not a
 * function, or an option is invalid.
 */
export function keyed<K, P extends Policy>(
  registry: PolicyRegistry<K, P>,
  keyOf: (ctx: ExecutionContext) => K,
  options?: KeyedPolicyOptions,
): KeyedPolicy<K, P> {
  return new KeyedPolicy(registry, keyOf, options);
}
