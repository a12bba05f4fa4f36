import type { Clock } from '@bulwark/clock';
import { type ExecutionContext, type Operation, PipelinePolicy, type Policy, pipeline } from '@bulwark/core';
import { BasePolicy, type OptionsChecker, type PolicyKind, policyKind } from '@bulwark/core/authoring';

/**
 * Policies of your own that a fetch composes into every call, each list
 * outermost first. Any bulwark policy fits: `rateLimit()`, `fallback()`,
 * `adaptiveThrottle()`, `injectFault()`, a `pipeline()` of them, or one of
 * your own built on `BasePolicy`. Every policy must measure time on the
 * fetch's clock.
 */
export interface FetchPolicies {
  /**
   * Around the whole call: inside the deadline (`deadlineMs`, whose context
   * they see), outside the retries. A policy here runs once per call and sees
   * the call's final outcome: a `Response` (any status the retries ended on)
   * or the error the call throws. A refusal here (a rate limit's, a
   * throttle's) ends the call without sending anything; a `fallback()` here
   * may answer with a `Response` of its own. Not `retry()` (the fetch retries
   * already) nor `timeout()` (it would bound all attempts together: use
   * `deadlineMs`), nor `hedging()` (at either place: use the `hedging`
   * option, which hedges only requests that may be sent twice). Default: none.
   */
  readonly call?: readonly Policy[] | undefined;
  /**
   * Around each attempt (and each poll of an in-progress 409): inside the
   * retries, the origin's circuit breaker and bulkhead and the attempt timeout,
   * closest to the transport. A policy here sees what the origin's breaker
   * sees: an error it throws (an injected fault, say) counts against the origin,
   * is retried when `isRetryableError` accepts it, and a wait it adds is
   * bounded by `attemptTimeoutMs`. A refusal here (`isRefusal`) is neither
   * retried nor counted against the origin. Not `retry()` (attempts would
   * multiply) nor `deadline()` (use `attemptTimeoutMs` or `timeout()`).
   * Default: none.
   */
  readonly attempt?: readonly Policy[] | undefined;
}

/** The policies of {@link FetchPolicies}, each list composed into one; undefined where a list is empty. */
export interface ComposedPolicies {
  readonly call: Policy | undefined;
  readonly attempt: Policy | undefined;
}

const PLACES = ['call', 'attempt'] as const;
/** Where a fetch composes policies of your own: around the call, or around each attempt. */
export type Place = (typeof PLACES)[number];

/** The kinds refused at each place, with why. */
const REFUSED: Readonly<Record<Place, Partial<Record<PolicyKind, string>>>> = {
  call: {
    retry:
      'createFetch() retries already (maxAttempts, backoff, budget); a second retry() would multiply attempts',
    timeout: 'a timeout() around the call bounds all attempts together: use deadlineMs',
    hedging:
      'hedging() here would send any request more than once, a POST without an Idempotency-Key too: use the hedging option, which hedges GET, HEAD and keyed requests only',
  },
  attempt: {
    retry: 'a retry() inside each attempt would multiply attempts: use maxAttempts',
    deadline: 'a deadline() inside the retries ends the call at the first slow attempt: use attemptTimeoutMs',
    hedging:
      'hedging() here would send any request more than once, a POST without an Idempotency-Key too: use the hedging option, which hedges GET, HEAD and keyed requests only',
  },
};

function isPolicy(value: unknown): value is Policy {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Policy).run === 'function' &&
    typeof (value as Policy).execute === 'function' &&
    typeof (value as Policy).clock?.now === 'function'
  );
}

/** The kinds of a policy, a pipeline's flattened. */
function kindsOf(policy: Policy): PolicyKind[] {
  if (policy instanceof PipelinePolicy) return policy.policies.flatMap(kindsOf);
  const kind = (policy as { [policyKind]?: PolicyKind })[policyKind];
  return kind === undefined ? [] : [kind];
}

const EMPTY: ComposedPolicies = Object.freeze({ call: undefined, attempt: undefined });

/**
 * Checks `policies` (the `policies` option of createFetch()) into `check`
 * and composes each list with `pipeline()`. Returns EMPTY when it is invalid.
 */
export function composePolicies(check: OptionsChecker, value: unknown, clock: Clock): ComposedPolicies {
  if (value === undefined) return EMPTY;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    check.expect(false, 'policies', value, '{ call?: Policy[], attempt?: Policy[] }');
    return EMPTY;
  }
  let ok = true;
  for (const key of Object.keys(value)) {
    const given = (value as Record<string, unknown>)[key];
    if ((PLACES as readonly string[]).includes(key) || given === undefined) continue;
    check.adopt('policies', [
      {
        option: key,
        expected: 'call or attempt',
        value: given,
        problem: 'is not a place: use call or attempt',
      },
    ]);
    ok = false;
  }
  const composed: Record<Place, Policy | undefined> = { call: undefined, attempt: undefined };
  for (const place of PLACES) {
    const list = (value as Record<string, unknown>)[place];
    if (list === undefined) continue;
    if (!Array.isArray(list)) {
      check.expect(false, `policies.${place}`, list, 'an array of policies');
      ok = false;
      continue;
    }
    list.forEach((policy: unknown, i) => {
      const option = `policies.${place}[${i}]`;
      if (!isPolicy(policy)) {
        check.expect(false, option, policy, 'a policy (an object with run(), execute() and clock)');
        ok = false;
        return;
      }
      if (policy.clock !== clock) {
        check.expect(
          false,
          `${option}.clock`,
          policy.clock,
          "createFetch()'s clock (give both the same clock)",
        );
        ok = false;
      }
      for (const kind of kindsOf(policy)) {
        const why = REFUSED[place][kind];
        if (why !== undefined) {
          check.adopt(undefined, [{ option, expected: `no ${kind}()`, value: `${kind}()`, problem: why }]);
          ok = false;
        }
      }
    });
    if (ok && list.length > 0) composed[place] = list.length === 1 ? (list[0] as Policy) : pipeline(...list);
  }
  return ok ? Object.freeze(composed) : EMPTY;
}

function expectResponse(place: Place): (value: unknown) => Response {
  return (value) => {
    if (value instanceof Response) return value;
    throw new TypeError(
      `createFetch(): a policy in policies.${place} answered ${String(value)}, not a Response`,
    );
  };
}

const CHECKED = { call: expectResponse('call'), attempt: expectResponse('attempt') } as const;

/**
 * Runs `fn` under `policy` (composed from `policies[place]`) as a promise of
 * a Response: a synchronous throw becomes a rejection, and anything else a
 * policy answers with (an `injectOutcome()` value, a fallback's) a TypeError.
 */
export function runUnder(
  place: Place,
  policy: Policy,
  fn: Operation<Response>,
  ctx: ExecutionContext,
): Promise<Response> {
  let result: unknown;
  try {
    result = policy.run(fn, ctx);
  } catch (error) {
    return Promise.reject(error);
  }
  return Promise.resolve(result).then(CHECKED[place]);
}

/**
 * `policies.call` or `policies.attempt`, composed, as one policy of the
 * fetch's pipeline whose answer must be a `Response` (see {@link runUnder}).
 */
export class PlacedPolicies extends BasePolicy {
  readonly #place: Place;
  readonly #inner: Policy;
  constructor(place: Place, inner: Policy) {
    super(inner.clock);
    this.#place = place;
    this.#inner = inner;
  }
  run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    return runUnder(this.#place, this.#inner, fn as Operation<Response>, ctx) as Promise<T>;
  }
}
