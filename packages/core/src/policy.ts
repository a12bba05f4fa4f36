import { type Clock, systemClock } from '@bulwark/clock';
import { type ExecuteOptions, type ExecutionContext, type Operation, rootContext } from './context.ts';

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

function settleWithSignal<T>(work: PromiseLike<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
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
    if (signal === undefined) return Promise.resolve(result);
    return settleWithSignal(Promise.resolve(result), signal);
  }
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
 */
export function pipeline(...policies: ReadonlyArray<Policy | ExecuteOnlyPolicy>): Policy {
  const list = policies.map(asPolicy);
  if (list.length === 0) return noopPolicy;
  const clock = list.find((p) => p.clock !== systemClock)?.clock ?? systemClock;
  return new PipelinePolicy(Object.freeze(list), clock);
}
