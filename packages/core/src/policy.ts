import { type Clock, systemClock } from '@bulwark/clock';
import { bounded } from './bounded.ts';
import { type ExecuteOptions, type ExecutionContext, type Operation, rootContext } from './context.ts';
import { InvalidOptionsError, type OptionViolation } from './options.ts';

/**
 * Where a policy says what kind it is, for {@link pipeline} to check the order
 * of its policies: `'retry'`, `'timeout'` (a per-attempt limit) or `'deadline'`
 * (a limit on the whole call); and `'hedging'` (runs the call more than once
 * at a time), which `pipeline()` does not order but integrations that know
 * which calls may be sent twice (createFetch()) refuse. Shared across copies of
 * the package.
 */
export const policyKind: unique symbol = Symbol.for('bulwark.policyKind') as never;

/** The kinds a policy may declare: {@link pipeline} knows the order of `retry`, `timeout` and `deadline`. */
export type PolicyKind = 'retry' | 'timeout' | 'deadline' | 'hedging';

function kindOf(policy: unknown): PolicyKind | undefined {
  return (policy as { [policyKind]?: PolicyKind } | null)?.[policyKind];
}

/**
 * The kinds of a pipeline's policies, outermost first, nested pipelines
 * flattened, each with its position as the user wrote it (`2` or `1.0`).
 */
function kinds(policies: readonly Policy[], prefix: string): Array<{ kind: PolicyKind; at: string }> {
  return policies.flatMap((p, i) => {
    const at = `${prefix}${i}`;
    if (p instanceof PipelinePolicy) return kinds(p.policies, `${at}.`);
    const kind = kindOf(p);
    return kind === undefined ? [] : [{ kind, at }];
  });
}

/**
 * Orders that can never do what they seem to: a `timeout()` outside every
 * `retry()` bounds all the attempts together, so it is not a per-attempt limit
 * (and a timeout that fires there is never retried); a `deadline()` inside a
 * `retry()` limits each attempt, and its error is never retried, so the first
 * slow attempt ends the call.
 */
function orderViolations(policies: readonly Policy[]): OptionViolation[] {
  const list = kinds(policies, '');
  const violations: OptionViolation[] = [];
  const firstRetry = list.findIndex((k) => k.kind === 'retry');
  if (firstRetry === -1) return violations;
  for (let i = 0; i < list.length; i++) {
    const { kind, at } = list[i]!;
    if (kind === 'timeout' && i < firstRetry) {
      violations.push({
        option: `policies[${at}]`,
        expected: 'inside retry()',
        value: 'timeout()',
        problem:
          'timeout() is outside retry(), so it bounds all attempts together and a timed-out call is never retried; put it after retry() for a per-attempt limit, or use deadline() for the whole call',
      });
    }
    if (kind === 'deadline' && i > firstRetry) {
      violations.push({
        option: `policies[${at}]`,
        expected: 'outside retry()',
        value: 'deadline()',
        problem:
          'deadline() is inside retry(), so it limits each attempt and its error is never retried; use timeout() for a per-attempt limit, or put deadline() before retry()',
      });
    }
  }
  return violations;
}

/**
 * A resilience policy: something that runs a function on your behalf, adding
 * behaviour around it (retries, a deadline, a breaker, …).
 *
 * `execute` is the entry point for callers. `run` executes inside an existing
 * context; `pipeline()` and policies that nest others use it so that the
 * context (deadline, attempt, signal) flows from the outermost policy inward.
 */
export interface Policy {
  /**
   * Runs `fn` under this policy. The returned promise rejects with the caller's
   * `signal.reason`, unchanged, as soon as the signal aborts.
   */
  execute<T>(fn: Operation<T>, options?: ExecuteOptions): Promise<T>;
  /** Runs `fn` under this policy within the context `ctx` of an enclosing call. */
  run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T>;
  /** The clock this policy measures time on. */
  readonly clock: Clock;
}

/** A policy from elsewhere that has only `execute`; `pipeline()` accepts it too. */
export interface ExecuteOnlyPolicy {
  execute<T>(fn: Operation<T>, options?: ExecuteOptions): Promise<T>;
}

/**
 * A convenient base for policies: implement `run`, and `execute` comes for free.
 */
export abstract class BasePolicy implements Policy {
  readonly clock: Clock;

  constructor(clock: Clock | undefined) {
    this.clock = clock ?? systemClock;
  }

  abstract run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T>;

  execute<T>(fn: Operation<T>, options?: ExecuteOptions): Promise<T> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    let result: T | PromiseLike<T>;
    try {
      result = this.run(fn, rootContext(this.clock, options));
    } catch (error) {
      return Promise.reject(error);
    }
    // Aborted while run() ran: the listener would come too late, so the result decides.
    if (signal === undefined || signal.aborted) return Promise.resolve(result);
    return boundBySignal(result, this.clock, signal);
  }
}

/**
 * A result raced against the caller's signal. A function of its own: a
 * closure in `execute()` would make `execute()` allocate its context at every
 * call, a call without a signal included.
 */
function boundBySignal<T>(result: T | PromiseLike<T>, clock: Clock, signal: AbortSignal): Promise<T> {
  return bounded(() => result, { clock, signal });
}

/** A policy that adds nothing: it runs the function as it is. */
export class NoopPolicy extends BasePolicy {
  run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
    return fn(ctx);
  }
}

/** The shared policy that adds nothing. */
export const noopPolicy: Policy = new NoopPolicy(systemClock);

function asPolicy(p: Policy | ExecuteOnlyPolicy): Policy {
  if (typeof (p as Policy).run === 'function' && (p as Policy).clock !== undefined) return p as Policy;
  if (typeof p?.execute !== 'function') {
    throw new TypeError(`pipeline(): every argument must be a policy with execute(), got ${String(p)}`);
  }
  return new ForeignPolicy(p);
}

/** Adapts a policy that has only `execute`: the context's signal and operation are handed over. */
class ForeignPolicy extends BasePolicy {
  readonly #inner: ExecuteOnlyPolicy;
  constructor(inner: ExecuteOnlyPolicy) {
    super(systemClock);
    this.#inner = inner;
  }
  run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    // A foreign policy may hand its function a partial context (or none): use
    // it only when it is a whole one.
    const pick = (inner: unknown): ExecutionContext =>
      typeof inner === 'object' && inner !== null && 'clock' in inner && 'signal' in inner
        ? (inner as ExecutionContext)
        : ctx;
    return this.#inner.execute((inner) => fn(pick(inner)), {
      signal: ctx.signal,
      operation: ctx.operation,
      idempotencyKey: ctx.idempotencyKey,
    });
  }
}

/**
 * Policies composed into one, the first outermost:
 * `pipeline(deadline(5000), retry(), timeout(1000))` gives every attempt one
 * second, and all of them together five.
 */
export class PipelinePolicy extends BasePolicy {
  /** The composed policies, outermost first. */
  readonly policies: readonly Policy[];
  readonly #head: Link;

  constructor(policies: readonly Policy[], clock: Clock) {
    super(clock);
    this.policies = policies;
    let link: Link | undefined;
    for (let i = policies.length - 1; i >= 0; i--) link = new Link(policies[i]!, link);
    this.#head = link!;
  }

  run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
    return this.#head.run(fn, ctx);
  }
}

/** One policy of a pipeline and the rest of the chain inside it, linked once at construction. */
class Link {
  readonly policy: Policy;
  readonly next: Link | undefined;
  constructor(policy: Policy, next: Link | undefined) {
    this.policy = policy;
    this.next = next;
  }
  run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
    const next = this.next;
    if (next === undefined) return this.policy.run(fn, ctx);
    // A bound function is one allocation and calls faster than an arrow closure.
    return this.policy.run(next.run.bind(next, fn) as Operation<T>, ctx);
  }
}

/**
 * Composes policies, the first outermost (as Polly's builder and cockatiel's
 * `wrap` do). With no policy it gives {@link noopPolicy}.
 *
 * The pipeline's clock, used for the context it creates, is the first
 * non-system clock among its policies: give every policy of one pipeline the
 * same clock.
 *
 * @throws InvalidOptionsError when the order can never work: a `timeout()`
 * outside every `retry()` (it would bound all attempts together, and a timed-out
 * call would never be retried) or a `deadline()` inside a `retry()` (its error is
 * never retried, so it would end the call at the first slow attempt).
 */
export function pipeline(...policies: ReadonlyArray<Policy | ExecuteOnlyPolicy>): Policy {
  const list = policies.map(asPolicy);
  if (list.length === 0) return noopPolicy;
  const violations = orderViolations(list);
  if (violations.length > 0) throw new InvalidOptionsError('pipeline()', violations);
  const clock = list.find((p) => p.clock !== systemClock)?.clock ?? systemClock;
  return new PipelinePolicy(Object.freeze(list), clock);
}
