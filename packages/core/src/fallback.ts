import type { Clock } from '@bulwark/clock';
import type { ExecutionContext, Operation } from './context.ts';
import { CallbackError } from './errors.ts';
import { type Disposable, EventHub, type Listener } from './events.ts';
import { OptionsChecker, optionKeys } from './options.ts';
import type { Outcome } from './outcome.ts';
import { BasePolicy } from './policy.ts';
import { Telemetry } from './telemetry.ts';

const FALLBACK_KEYS = optionKeys<FallbackOptions>({ on: true, clock: true, name: true });

/**
 * What the wrapped call produced: a value or an error. The one {@link Outcome}
 * every classifier sees (`retry()`'s `retryOn`, a breaker's `failureOn`).
 */
export type FallbackOutcome<T = unknown> = Outcome<T>;

/** Selects the outcomes the fallback replaces: `true` means "use the handler". */
export type FallbackOn = (outcome: FallbackOutcome, ctx: ExecutionContext) => boolean;

/**
 * Produces the replacement: a value to return, or a promise of one. It may
 * throw (for example to map the error to one of your own); what it throws
 * propagates unchanged. `ctx` is the context the call ran in.
 */
export type FallbackHandler<R = unknown> = (
  outcome: FallbackOutcome,
  ctx: ExecutionContext,
) => R | PromiseLike<R>;

/** Options for {@link fallback}. */
export interface FallbackOptions {
  /**
   * Which outcomes the handler replaces. Default: every error (results pass
   * through). Whatever it says, an error that arrives after the caller's
   * signal (`ctx.signal`) aborted is passed through: nobody is waiting for a
   * replacement.
   */
  readonly on?: FallbackOn | undefined;
  /** The clock for contexts this policy creates. Default: the system clock. */
  readonly clock?: Clock | undefined;
  /** A name for events and telemetry. Default: none. */
  readonly name?: string | undefined;
}

/** Payload of `onFallback`. */
export interface FallbackEvent {
  /** The outcome that was replaced. */
  readonly outcome: FallbackOutcome;
  readonly name: string | undefined;
  readonly operation: string | undefined;
}

const telemetry = new Telemetry('@bulwark/core', '0.1.0');
const fallbacksCounter = telemetry.counter('bulwark.fallback.used', {
  description: 'Outcomes a fallback policy replaced with its handler, by kind of outcome (error or result)',
  unit: '{call}',
});
const ERROR = Object.freeze({ outcome: 'error' });
const RESULT = Object.freeze({ outcome: 'result' });

/**
 * Replaces selected outcomes of a call with the handler's. See {@link fallback}.
 *
 * The handler's value stands in for the call's result, so it should have the
 * type the operation returns: in a pipeline TypeScript cannot check that.
 */
export class FallbackPolicy<R = unknown> extends BasePolicy {
  readonly name: string | undefined;
  readonly #handler: FallbackHandler<R>;
  readonly #on: FallbackOn | undefined;
  readonly #onFallback = new EventHub<FallbackEvent>('fallback.onFallback');

  constructor(handler: FallbackHandler<R>, options?: FallbackOptions) {
    const check = new OptionsChecker('fallback()');
    check.knownKeys(options, FALLBACK_KEYS);
    check.func('handler', handler, true);
    check.func('on', options?.on);
    check.clock('clock', options?.clock);
    check.string('name', options?.name);
    check.done();
    super(options?.clock);
    this.#handler = handler;
    this.#on = options?.on;
    this.name = options?.name;
  }

  /** Called when the handler replaces an outcome, before it runs. */
  onFallback(listener: Listener<FallbackEvent>): Disposable {
    return this.#onFallback.subscribe(listener);
  }

  /**
   * Whether `outcome` is one the handler replaces: the primitive the policy
   * acts on. Throws a `CallbackError` when `on` throws or returns a non-boolean.
   */
  selects(outcome: FallbackOutcome, ctx: ExecutionContext): boolean {
    if (!outcome.ok && ctx.signal.aborted) return false;
    const on = this.#on;
    if (on === undefined) return !outcome.ok;
    let verdict: unknown;
    try {
      verdict = on(outcome, ctx);
    } catch (error) {
      throw new CallbackError('on', error);
    }
    if (typeof verdict !== 'boolean')
      throw new CallbackError('on', new TypeError(`on must return a boolean, got ${String(verdict)}`));
    return verdict;
  }

  run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    let result: T | PromiseLike<T>;
    try {
      result = fn(ctx);
    } catch (error) {
      return this.#settle<T>({ ok: false, error }, ctx);
    }
    if (this.#on === undefined)
      return Promise.resolve(result).then(undefined, (error: unknown) =>
        this.#settle<T>({ ok: false, error }, ctx),
      );
    return Promise.resolve(result).then(
      (value) => this.#settle<T>({ ok: true, value }, ctx),
      (error: unknown) => this.#settle<T>({ ok: false, error }, ctx),
    );
  }

  async #settle<T>(outcome: FallbackOutcome, ctx: ExecutionContext): Promise<T> {
    if (!this.selects(outcome, ctx)) {
      if (outcome.ok) return outcome.value as T;
      throw outcome.error;
    }
    fallbacksCounter.add(1, outcome.ok ? RESULT : ERROR);
    if (this.#onFallback.listening)
      this.#onFallback.emit({ outcome, name: this.name, operation: ctx.operation });
    return (await this.#handler(outcome, ctx)) as unknown as T;
  }
}

/**
 * A fallback: when the call ends with an outcome `on` selects (by default any
 * error), the handler's value is returned instead. The handler sees the
 * outcome and the context (`handler(outcome, ctx)`).
 *
 * Put it outermost to replace every failure of the pipeline inside it
 * (including an open breaker's refusal or a `timeout()`), or inside a
 * `deadline()` to give up on the fallback too when the deadline fires. An
 * error that arrives after the caller aborted is never replaced.
 */
export function fallback<R>(handler: FallbackHandler<R>, options?: FallbackOptions): FallbackPolicy<R> {
  return new FallbackPolicy(handler, options);
}
