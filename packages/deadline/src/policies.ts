import type { Clock } from '@bulwark/clock';
import {
  DeadlineExceededError,
  type DeadlineSource,
  type Disposable,
  type ExecutionContext,
  type Listener,
  type Operation,
} from '@bulwark/core';
import {
  BasePolicy,
  type BoundedOptions,
  bounded,
  EventHub,
  type OptionHints,
  OptionsChecker,
  optionKeys,
  policyKind,
  runWithDeadline,
  ScopedContext,
  type TelemetrySpan,
} from '@bulwark/core/authoring';
import { telemetry } from './telemetry.ts';

/** Options for {@link deadline} and {@link timeout}. */
export interface DeadlinePolicyOptions {
  /** The clock for contexts this policy creates itself. Default: the system clock. */
  readonly clock?: Clock | undefined;
  /**
   * Also put the deadline in scope (as `withDeadline` does) while the function
   * runs, so that bulwark calls it makes without being handed the context see
   * it too. The function itself always gets it as `ctx.deadline`. Costs one
   * AsyncLocalStorage frame per call (a few hundred nanoseconds). Default: false.
   */
  readonly propagate?: boolean | undefined;
}

const DEADLINE_POLICY_KEYS = optionKeys<DeadlinePolicyOptions>({ clock: true, propagate: true });
const DEADLINE_POLICY_HINTS: OptionHints = {
  timeout: 'the limit is the first argument, in milliseconds',
  ms: 'the limit is the first argument, in milliseconds',
  milliseconds: 'the limit is the first argument, in milliseconds',
};

/** Payload of `onExpired`. */
export interface DeadlineExpiredEvent {
  /** `'deadline'` for an overall budget, `'timeout'` for a per-attempt one. */
  readonly source: DeadlineSource;
  /** The budget that ran out, in milliseconds. */
  readonly budgetMs: number;
  readonly attempt: number;
  readonly operation: string | undefined;
}

/** Checks `deadline()`'s or `timeout()`'s arguments; returns whether to propagate. */
function checkedLimit(kind: DeadlineSource, ms: number, options: DeadlinePolicyOptions | undefined): boolean {
  const check = new OptionsChecker(`${kind}()`);
  check.number('ms', ms, { min: 0, infinite: true, required: true });
  check.knownKeys(options, DEADLINE_POLICY_KEYS, DEADLINE_POLICY_HINTS);
  check.clock('clock', options?.clock, true);
  check.done();
  return options?.propagate === true;
}

const expiredCounter = telemetry.counter('bulwark.deadline.exceeded', {
  description: 'Calls ended by a bulwark deadline or attempt timeout',
  unit: '{call}',
});

/**
 * What the time-limit policies share: the race of a call against a limit (or
 * an earlier enclosing deadline), the expiry event and its telemetry. Not
 * exported from the package.
 */
export abstract class TimeLimitPolicy extends BasePolicy {
  readonly #expired: EventHub<DeadlineExpiredEvent>;
  readonly #kind: DeadlineSource;
  readonly #propagate: boolean;

  constructor(kind: DeadlineSource, clock: Clock | undefined, propagate: boolean, component: string) {
    super(clock);
    this.#kind = kind;
    this.#propagate = propagate;
    this.#expired = new EventHub(`${component}.onExpired`);
  }

  /** Subscribes to expiries. */
  onExpired(listener: Listener<DeadlineExpiredEvent>): Disposable {
    return this.#expired.subscribe(listener);
  }

  /**
   * Runs `fn` with a limit of `ms` milliseconds from now, or the enclosing
   * deadline when that comes first. `onOwnExpiry` is called when this limit,
   * not the enclosing deadline nor an abort, ended the call.
   */
  protected runWithin<T>(
    ms: number,
    fn: Operation<T>,
    parent: ExecutionContext,
    onOwnExpiry?: () => void,
  ): Promise<T> {
    const clock = parent.clock;
    const now = clock.now();
    const own = now + ms;
    const outer = parent.deadline;
    // Under a tighter enclosing deadline, running out is that deadline's doing.
    const bound = outer !== undefined && outer <= own;
    const at = bound ? outer : own;
    const source: DeadlineSource = bound ? 'deadline' : this.#kind;
    const budgetMs = bound ? Math.max(0, outer - now) : ms;
    if (at <= now) return Promise.reject(this.#expire(source, budgetMs, parent, telemetry.activeSpan()));
    const call = new TimeLimitCall(this, parent, at, source, budgetMs, bound ? undefined : onOwnExpiry);
    const scope = call.scope;
    return bounded(
      this.#propagate ? () => runWithDeadline(at, clock, () => fn(scope)) : () => fn(scope),
      call,
    );
  }

  /**
   * @internal Reports an expiry and gives the error to reject with. `span` is
   * the span that was active when the call began: the expiry runs in a
   * callback of the shared deadline timer, whose async context is whichever
   * call's armed it.
   */
  _expire(
    source: DeadlineSource,
    budgetMs: number,
    ctx: ExecutionContext,
    span: TelemetrySpan | undefined,
  ): DeadlineExceededError {
    return this.#expire(source, budgetMs, ctx, span);
  }

  #expire(
    source: DeadlineSource,
    budgetMs: number,
    ctx: ExecutionContext,
    span: TelemetrySpan | undefined,
  ): DeadlineExceededError {
    const error = new DeadlineExceededError(source, budgetMs);
    expiredCounter.add(1, { source, ...(ctx.operation === undefined ? {} : { operation: ctx.operation }) });
    telemetry.spanEventOn(span, 'bulwark.deadline.exceeded', () => ({
      source,
      budget_ms: budgetMs,
      attempt: ctx.attempt,
    }));
    if (this.#expired.listening) {
      this.#expired.emit({ source, budgetMs, attempt: ctx.attempt, operation: ctx.operation });
    }
    return error;
  }
}

/**
 * One call under a deadline or timeout: the options of its bounded race, with
 * the hooks as methods rather than closures made per call.
 */
class TimeLimitCall implements BoundedOptions {
  readonly at: number;
  readonly clock: Clock;
  readonly scope: ScopedContext;
  readonly #policy: TimeLimitPolicy;
  readonly #parent: ExecutionContext;
  readonly #source: DeadlineSource;
  readonly #budgetMs: number;
  /** Called when this limit itself (not an enclosing deadline) ended the call. */
  readonly #onOwnExpiry: (() => void) | undefined;
  /** The span active when the call began, for the expiry's span event (see `_expire()`). */
  readonly #span: TelemetrySpan | undefined;

  constructor(
    policy: TimeLimitPolicy,
    parent: ExecutionContext,
    at: number,
    source: DeadlineSource,
    budgetMs: number,
    onOwnExpiry: (() => void) | undefined,
  ) {
    this.at = at;
    this.clock = parent.clock;
    this.scope = new ScopedContext(parent, at);
    this.#policy = policy;
    this.#parent = parent;
    this.#source = source;
    this.#budgetMs = budgetMs;
    this.#onOwnExpiry = onOwnExpiry;
    this.#span = telemetry.activeSpan();
  }

  // The enclosing context's signal is raced by whoever made it (execute(), an
  // enclosing deadline); here it is only consulted when our deadline fires. If
  // the caller (or an enclosing policy) gave up first and the function ignored
  // it, that abort, not this deadline, ended the call: pass its reason on and
  // do not report an expiry.
  expired(): unknown {
    const outer = this.#parent.signal;
    if (outer.aborted) return outer.reason;
    this.#onOwnExpiry?.();
    return this.#policy._expire(this.#source, this.#budgetMs, this.#parent, this.#span);
  }

  onEarly(reason: unknown): void {
    this.scope.abort(reason);
  }

  onSettle(): void {
    this.scope.release();
  }
}

/**
 * An overall budget for everything inside it, every retry included. When it
 * runs out, the context's signal aborts and the call rejects with
 * `DeadlineExceededError` (`source: 'deadline'`). An enclosing, earlier
 * deadline still wins.
 */
export class DeadlinePolicy extends TimeLimitPolicy {
  /** What `pipeline()` checks the order of. */
  readonly [policyKind] = 'deadline' as const;
  /** The limit, in milliseconds. */
  readonly ms: number;
  constructor(ms: number, options?: DeadlinePolicyOptions) {
    super('deadline', options?.clock, checkedLimit('deadline', ms, options), 'deadline');
    this.ms = ms;
  }

  run<T>(fn: Operation<T>, parent: ExecutionContext): Promise<T> {
    return this.runWithin(this.ms, fn, parent);
  }
}

/**
 * A per-attempt limit: min(`ms`, the time left on the deadline). Put it inside
 * a retry. When it runs out, the attempt's signal aborts and the attempt rejects
 * with `DeadlineExceededError` (`source: 'timeout'`, retryable, or
 * `'deadline'` when it was the enclosing deadline that ran out).
 */
export class TimeoutPolicy extends TimeLimitPolicy {
  /** What `pipeline()` checks the order of. */
  readonly [policyKind] = 'timeout' as const;
  /** The limit, in milliseconds. */
  readonly ms: number;
  constructor(ms: number, options?: DeadlinePolicyOptions) {
    super('timeout', options?.clock, checkedLimit('timeout', ms, options), 'timeout');
    this.ms = ms;
  }

  run<T>(fn: Operation<T>, parent: ExecutionContext): Promise<T> {
    return this.runWithin(this.ms, fn, parent);
  }
}

/** An overall deadline of `ms` milliseconds. See {@link DeadlinePolicy}. */
export function deadline(ms: number, options?: DeadlinePolicyOptions): DeadlinePolicy {
  return new DeadlinePolicy(ms, options);
}

/** A per-attempt timeout of `ms` milliseconds. See {@link TimeoutPolicy}. */
export function timeout(ms: number, options?: DeadlinePolicyOptions): TimeoutPolicy {
  return new TimeoutPolicy(ms, options);
}
