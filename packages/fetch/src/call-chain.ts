import type { Clock } from '@bulwark/clock';
import { type ExecutionContext, type Operation, type Policy, pipeline } from '@bulwark/core';
import { BasePolicy } from '@bulwark/core/authoring';
import type { DeadlinePolicy } from '@bulwark/deadline';
import type { RetryBudget, RetryPolicy } from '@bulwark/retry';
import { PlacedPolicies } from './policies.ts';
import type { BodyDeadline } from './transport.ts';

/** A call that may not be retried still counts as a request in the retry budget's ratio. */
class CountRequest extends BasePolicy {
  readonly #budget: RetryBudget;
  constructor(budget: RetryBudget, clock: Clock) {
    super(clock);
    this.#budget = budget;
  }
  run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
    this.#budget.recordRequest();
    return fn(ctx);
  }
}

/** What the call chain is made of: the resolved parts of a fetch. */
export interface CallChainParts {
  readonly clock: Clock;
  /** The call's deadline (`deadlineMs`, or an earlier enclosing one). */
  readonly deadline: DeadlinePolicy;
  /** `policies.call`, composed; undefined when there are none. */
  readonly callPolicy: Policy | undefined;
  readonly retry: RetryPolicy;
  readonly budget: RetryBudget | undefined;
}

/** The policies every call runs through, outermost first. */
export interface CallChain {
  /**
   * Runs `attempt` (one attempt, as the retries see it) under the chain, in
   * `root`, and tells `body` the deadline the call runs under: the
   * `deadline()` scope's, not one a policy inside sets, since the body's read
   * outlives the call and only the call's own deadline bounds it.
   */
  run(
    retryable: boolean,
    attempt: Operation<Response>,
    root: ExecutionContext,
    body: BodyDeadline,
  ): Promise<Response>;
}

/**
 * The per-call chain of a fetch, built once per `createFetch()`, outermost
 * first: the deadline (`deadline()`), your call-level policies, then the
 * retries (or, for a request that may not be sent twice, a count in the retry
 * budget). Each attempt the innermost layer runs goes through the attempt
 * chain (see attemptChain()).
 */
export function callChain(parts: CallChainParts): CallChain {
  const { clock, deadline, callPolicy, retry, budget } = parts;
  // Inside the deadline: `pipeline(policies.call, retry())` for a call that may
  // be retried; `policies.call` and a count in the retry budget, each when
  // there is one, for a call that may not be sent twice.
  const inside: Policy[] = [];
  if (callPolicy !== undefined) inside.push(new PlacedPolicies('call', callPolicy));
  const retrying = inside.length === 0 ? retry : pipeline(...inside, retry);
  if (budget !== undefined) inside.push(new CountRequest(budget, clock));
  const once = inside.length === 0 ? undefined : inside.length === 1 ? inside[0] : pipeline(...inside);
  return {
    run: (retryable, attempt, root, body) =>
      deadline.run((scope) => {
        body.seen(scope.deadline);
        if (retryable) return retrying.run(attempt, scope);
        return once === undefined ? attempt(scope) : once.run(attempt, scope);
      }, root),
  };
}
