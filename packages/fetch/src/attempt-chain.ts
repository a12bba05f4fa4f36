import type { CircuitBreakerRegistry } from '@bulwark/circuit-breaker';
import type { Clock } from '@bulwark/clock';
import { type ExecutionContext, type Operation, type Policy, pipeline } from '@bulwark/core';
import { DerivedContext, type KeyedRegistry, keyed } from '@bulwark/core/authoring';
import type { AdaptiveTimeoutPolicy, TimeoutPolicy } from '@bulwark/deadline';
import type { OriginBulkheads } from './origin-bulkheads.ts';
import { PlacedPolicies } from './policies.ts';

/**
 * An attempt's context: the context it runs in, plus the origin it goes to,
 * which picks that origin's breaker, bulkhead and adaptive timeout in the
 * attempt chain. It shares its parent's signal.
 */
export class OriginContext extends DerivedContext {
  readonly origin: string;
  constructor(parent: ExecutionContext, origin: string) {
    super(parent, parent.attempt, parent.idempotencyKey);
    this.origin = origin;
  }
}

/** The key of the attempt chain's keyed policies: the origin of the attempt's {@link OriginContext}. */
const originOf = (ctx: ExecutionContext): string => (ctx as OriginContext).origin;

/** What the attempt chain is made of: the resolved parts of a fetch, each undefined when off. */
export interface AttemptChainParts {
  readonly clock: Clock;
  readonly breakers: CircuitBreakerRegistry | undefined;
  readonly bulkheads: OriginBulkheads | undefined;
  readonly adaptiveTimeouts: KeyedRegistry<string, AdaptiveTimeoutPolicy> | undefined;
  readonly attemptTimeout: TimeoutPolicy | undefined;
  readonly attemptPolicy: Policy | undefined;
}

/** The policies every attempt runs through, and how to run an attempt's transport under them. */
export interface AttemptChain {
  /** The chain, outermost first: for inspection and tests. */
  readonly policy: Policy;
  /**
   * Runs `send` (the transport of one attempt to `origin`) under the chain,
   * in `ctx`, as a promise.
   */
  run(send: Operation<Response>, ctx: ExecutionContext, origin: string): Promise<Response>;
}

/**
 * The per-attempt chain of a fetch, built once per `createFetch()`:
 * `pipeline(keyed breaker, keyed bulkhead, attempt timeout, attempt
 * policies)`, the breaker, the bulkhead and an adaptive timeout each picked
 * per attempt by the attempt's origin (`keyed()` over the fetch's
 * registries). Undefined when the chain has no policy: the transport then
 * runs as it is.
 */
export function attemptChain(parts: AttemptChainParts): AttemptChain | undefined {
  const { clock, breakers, bulkheads, adaptiveTimeouts, attemptTimeout, attemptPolicy } = parts;
  const policies: Policy[] = [];
  if (breakers !== undefined) policies.push(keyed(breakers, originOf, { clock }));
  if (bulkheads !== undefined) policies.push(keyed(bulkheads, originOf, { clock }));
  if (adaptiveTimeouts !== undefined) policies.push(keyed(adaptiveTimeouts, originOf, { clock }));
  else if (attemptTimeout !== undefined) policies.push(attemptTimeout);
  if (attemptPolicy !== undefined) policies.push(new PlacedPolicies('attempt', attemptPolicy));
  if (policies.length === 0) return undefined;
  const policy = policies.length === 1 ? policies[0]! : pipeline(...policies);
  // Only a keyed policy reads the origin: without one, no context is made.
  const byOrigin = breakers !== undefined || bulkheads !== undefined || adaptiveTimeouts !== undefined;
  return {
    policy,
    run: (send, ctx, origin) => {
      let result: Response | PromiseLike<Response>;
      try {
        result = policy.run(send, byOrigin ? new OriginContext(ctx, origin) : ctx);
      } catch (error) {
        return Promise.reject(error);
      }
      return result instanceof Promise ? result : Promise.resolve(result);
    },
  };
}
