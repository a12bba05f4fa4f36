import type { Clock } from '@bulwark/clock';
import { type ExecutionContext, type Operation, type Policy, pipeline } from '@bulwark/core';
import { BasePolicy } from '@bulwark/core/authoring';
import type { DeadlinePolicy } from '@bulwark/deadline';
import type { RetryBudget, RetryPolicy } from '@bulwark/retry';
import { PlacedPolicies } from './policies.ts';

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

/** The policies every call runs through: one pipeline for calls that may be retried, one for calls that may not. */
export interface CallChain {
  /** `pipeline(deadline, call policies, retry)`. */
  readonly retrying: Policy;
  /** `pipeline(deadline, call policies)`, counting the call in the retry budget when there is one. */
  readonly once: Policy;
}

/**
 * The per-call chain of a fetch, built once per `createFetch()`, outermost
 * first: the deadline, your call-level policies, then the retries (or, for a
 * request that may not be sent twice, a count in the retry budget). Each
 * attempt the innermost layer runs goes through the attempt chain (see
 * attemptChain()).
 */
export function callChain(parts: CallChainParts): CallChain {
  const { clock, deadline, callPolicy, retry, budget } = parts;
  const around: Policy[] = [deadline];
  if (callPolicy !== undefined) around.push(new PlacedPolicies('call', callPolicy));
  const once = budget === undefined ? around : [...around, new CountRequest(budget, clock)];
  return {
    retrying: pipeline(...around, retry),
    once: once.length === 1 ? deadline : pipeline(...once),
  };
}
