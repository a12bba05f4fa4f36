import type { Clock, Timer } from '@bulwark/clock';
import { deadlineTimers } from '@bulwark/clock/authoring';
import type { Outcome } from '@bulwark/core';
import {
  BulwarkError,
  CallbackError,
  type Disposable,
  type ExecutionContext,
  isRefusal,
  type Listener,
  type Operation,
  remainingMs,
} from '@bulwark/core';
import {
  BasePolicy,
  checkLatencySample,
  EventHub,
  LatencyWindow,
  OptionsChecker,
  optionKeys,
  policyKind,
  ScopedContext,
  withAttempt,
} from '@bulwark/core/authoring';
import { isRetryableError, RetryBudget } from '@bulwark/retry';
import { deniedCounter, hedgesCounter, telemetry, winsCounter } from './telemetry.ts';

const HEDGING_KEYS = optionKeys<HedgingOptions>({
  delay: true,
  delayMs: true,
  percentile: true,
  minDelayMs: true,
  maxDelayMs: true,
  sampleSize: true,
  sampleTtlMs: true,
  minSamples: true,
  maxHedgedAttempts: true,
  budget: true,
  countRequests: true,
  hedgeOn: true,
  minAttemptMs: true,
  clock: true,
  name: true,
});

/**
 * Decides whether an attempt's outcome is a failure worth hedging: `true`
 * means "not good, try another attempt" (at once, without waiting for the
 * delay). An error it returns `false` for is fatal and ends the call with that
 * error; a result it returns `false` for wins.
 */
export type HedgeOn = (outcome: Outcome, ctx: ExecutionContext) => boolean;

/** How the delay before each hedge is chosen. */
export type HedgeDelayMode = 'fixed' | 'adaptive';

/** Options for {@link hedging}. */
export interface HedgingOptions {
  /**
   * `'fixed'`: every hedge waits `delayMs`. `'adaptive'`: it waits the
   * `percentile` of the recent latency of first attempts (see
   * {@link HedgingPolicy.delayMs}). Default: `'fixed'`.
   */
  readonly delay?: HedgeDelayMode | undefined;
  /**
   * Milliseconds an attempt may run before the next hedge starts. With
   * `delay: 'adaptive'` it is the delay used until `minSamples` latencies are
   * known. Default: 1000.
   */
  readonly delayMs?: number | undefined;
  /** Adaptive: the percentile of recent latency, in (0, 1). Default: 0.9 (p90). */
  readonly percentile?: number | undefined;
  /** Adaptive: the smallest delay it may choose, in milliseconds. Default: 1. */
  readonly minDelayMs?: number | undefined;
  /** Adaptive: the largest delay it may choose, in milliseconds. Default: Infinity. */
  readonly maxDelayMs?: number | undefined;
  /** Adaptive: how many recent latencies are kept (fixed memory), 8 to 65,536. Default: 512. */
  readonly sampleSize?: number | undefined;
  /** Adaptive: a latency older than this many milliseconds is forgotten. Default: 30,000. */
  readonly sampleTtlMs?: number | undefined;
  /** Adaptive: fresh latencies needed before the percentile is used. Default: 20. */
  readonly minSamples?: number | undefined;
  /** Extra attempts beyond the first, an integer from 1 to 10. Default: 1. */
  readonly maxHedgedAttempts?: number | undefined;
  /**
   * The budget every hedge is withdrawn from (a `retryBudget()`, possibly
   * shared with retry policies). Default: a budget of this policy's own with
   * `ratio: 0.1` and `minRetriesPerSecond: 1`, so hedges add at most 10% load
   * plus one per second.
   */
  readonly budget?: RetryBudget | undefined;
  /**
   * Whether each call is counted as a request in the budget (the deposit
   * hedges are withdrawn against). Set it to false when something around this
   * policy already counts each call in the same budget: a `retry()` that
   * shares the budget and encloses this policy counts the call once, and this
   * policy, run once per attempt, would count its retries as calls too.
   * `createFetch()` sets it for the hedging it builds. Default: true.
   */
  readonly countRequests?: boolean | undefined;
  /**
   * Which outcomes are failures to hedge past. Default: errors that
   * `isRetryableError` accepts; other errors are fatal; results win.
   */
  readonly hedgeOn?: HedgeOn | undefined;
  /**
   * A hedge is not started with this many milliseconds or fewer left before
   * the deadline in the context. Default: 0 (only a passed deadline stops hedges).
   */
  readonly minAttemptMs?: number | undefined;
  /** The clock delays and latencies are measured on. Default: the system clock. */
  readonly clock?: Clock | undefined;
  /** A name for events. Default: none. */
  readonly name?: string | undefined;
}

/** The defaults of {@link hedging}. */
export const HEDGING_DEFAULTS = Object.freeze({
  delay: 'fixed' as HedgeDelayMode,
  delayMs: 1000,
  percentile: 0.9,
  minDelayMs: 1,
  maxDelayMs: Number.POSITIVE_INFINITY,
  sampleSize: 512,
  sampleTtlMs: 30_000,
  minSamples: 20,
  maxHedgedAttempts: 1,
  countRequests: true,
  minAttemptMs: 0,
  budgetRatio: 0.1,
  budgetMinPerSecond: 1,
});

/** Why a hedge was not started. */
export type HedgeDenial = 'attempts' | 'budget' | 'deadline';

/** What made a hedge start: its delay ran out, or an attempt failed. */
export type HedgeTrigger = 'delay' | 'failure';

/** The decision {@link HedgingPolicy.decide} returns. */
export type HedgeDecision =
  | { readonly hedge: true }
  | { readonly hedge: false; readonly reason: HedgeDenial };

/** Payload of `onHedge`. */
export interface HedgeEvent {
  /** The attempt number of the hedge (2 for the first hedge). */
  readonly attempt: number;
  readonly trigger: HedgeTrigger;
  /** Milliseconds since the call's first attempt started. */
  readonly elapsedMs: number;
  readonly name: string | undefined;
  readonly operation: string | undefined;
}

/** Payload of `onDenied`. */
export interface HedgeDeniedEvent {
  /** The attempt number the hedge would have had. */
  readonly attempt: number;
  readonly trigger: HedgeTrigger;
  readonly reason: Exclude<HedgeDenial, 'attempts'>;
  readonly name: string | undefined;
  readonly operation: string | undefined;
}

/**
 * The reason an attempt that lost the race is aborted with: another attempt of
 * the same hedged call produced the result. An operation that sees it on
 * `ctx.signal.reason` should stop its work; its outcome is ignored.
 */
export class HedgeLostError extends BulwarkError<'ERR_HEDGE_LOST'> {
  constructor() {
    super('ERR_HEDGE_LOST', 'aborted: another attempt of this hedged call finished first');
  }
}

const HEDGE: HedgeDecision = Object.freeze({ hedge: true });
const DENY = Object.freeze({
  attempts: Object.freeze({ hedge: false, reason: 'attempts' }),
  budget: Object.freeze({ hedge: false, reason: 'budget' }),
  deadline: Object.freeze({ hedge: false, reason: 'deadline' }),
}) as Readonly<Record<HedgeDenial, HedgeDecision>>;
const ATTR = Object.freeze({
  delay: Object.freeze({ trigger: 'delay' }),
  failure: Object.freeze({ trigger: 'failure' }),
  budget: Object.freeze({ reason: 'budget' }),
  deadline: Object.freeze({ reason: 'deadline' }),
  primary: Object.freeze({ winner: 'primary' }),
  hedge: Object.freeze({ winner: 'hedge' }),
});

/**
 * Hedged requests. See {@link hedging}.
 *
 * The primitive is {@link decide} (may hedge number n start now?) and
 * {@link delayMs} (how long to wait before the next one); `run` races the
 * attempts and acts on them.
 */
export class HedgingPolicy extends BasePolicy {
  /** What integrations read to refuse hedging where a call may not be sent twice. */
  readonly [policyKind] = 'hedging' as const;
  readonly mode: HedgeDelayMode;
  readonly maxHedgedAttempts: number;
  readonly budget: RetryBudget;
  readonly minAttemptMs: number;
  readonly countRequests: boolean;
  readonly name: string | undefined;
  readonly #fixedMs: number;
  readonly #minDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #window: LatencyWindow | undefined;
  readonly #hedgeOn: HedgeOn | undefined;
  /** @internal */
  readonly _onHedge = new EventHub<HedgeEvent>('hedging.onHedge');
  /** @internal */
  readonly _onDenied = new EventHub<HedgeDeniedEvent>('hedging.onDenied');

  constructor(options?: HedgingOptions) {
    const o = options ?? {};
    const check = new OptionsChecker('hedging()');
    check.knownKeys(options, HEDGING_KEYS);
    check.oneOf('delay', o.delay, ['fixed', 'adaptive']);
    check.number('delayMs', o.delayMs, { min: 0 });
    check.number('percentile', o.percentile, { above: 0, max: 0.999_999 });
    check.number('minDelayMs', o.minDelayMs, { min: 0 });
    check.number('maxDelayMs', o.maxDelayMs, { min: 0, infinite: true });
    check.number('sampleSize', o.sampleSize, { integer: true, min: 8, max: 65_536 });
    check.number('sampleTtlMs', o.sampleTtlMs, { above: 0 });
    check.number('minSamples', o.minSamples, { integer: true, min: 1 });
    check.number('maxHedgedAttempts', o.maxHedgedAttempts, { integer: true, min: 1, max: 10 });
    check.number('minAttemptMs', o.minAttemptMs, { min: 0 });
    check.func('hedgeOn', o.hedgeOn);
    check.expect(
      o.countRequests === undefined || typeof o.countRequests === 'boolean',
      'countRequests',
      o.countRequests,
      'a boolean',
    );
    check.clock('clock', o.clock, true);
    check.expect(
      o.budget === undefined || (typeof o.budget === 'object' && typeof o.budget?.tryWithdraw === 'function'),
      'budget',
      o.budget,
      'a retry budget from retryBudget()',
    );
    check.string('name', o.name);
    const minDelayMs = o.minDelayMs ?? HEDGING_DEFAULTS.minDelayMs;
    const maxDelayMs = o.maxDelayMs ?? HEDGING_DEFAULTS.maxDelayMs;
    check.expect(!(minDelayMs > maxDelayMs), 'minDelayMs', minDelayMs, `<= maxDelayMs (${maxDelayMs})`);
    const sampleSize = o.sampleSize ?? HEDGING_DEFAULTS.sampleSize;
    const minSamples = o.minSamples ?? HEDGING_DEFAULTS.minSamples;
    check.expect(!(minSamples > sampleSize), 'minSamples', minSamples, `<= sampleSize (${sampleSize})`);
    if (o.delay !== 'adaptive') {
      for (const key of [
        'percentile',
        'minDelayMs',
        'maxDelayMs',
        'sampleSize',
        'sampleTtlMs',
        'minSamples',
      ] as const) {
        check.expect(o[key] === undefined, key, o[key], "unset unless delay is 'adaptive'");
      }
    }
    check.done();
    super(o.clock);
    this.mode = o.delay ?? HEDGING_DEFAULTS.delay;
    this.#fixedMs = o.delayMs ?? HEDGING_DEFAULTS.delayMs;
    this.#minDelayMs = minDelayMs;
    this.#maxDelayMs = maxDelayMs;
    this.maxHedgedAttempts = o.maxHedgedAttempts ?? HEDGING_DEFAULTS.maxHedgedAttempts;
    this.minAttemptMs = o.minAttemptMs ?? HEDGING_DEFAULTS.minAttemptMs;
    this.countRequests = o.countRequests ?? HEDGING_DEFAULTS.countRequests;
    this.budget =
      o.budget ??
      new RetryBudget({
        ratio: HEDGING_DEFAULTS.budgetRatio,
        minRetriesPerSecond: HEDGING_DEFAULTS.budgetMinPerSecond,
        clock: this.clock,
      });
    this.#hedgeOn = o.hedgeOn;
    this.name = o.name;
    this.#window =
      this.mode === 'adaptive'
        ? new LatencyWindow(
            sampleSize,
            o.sampleTtlMs ?? HEDGING_DEFAULTS.sampleTtlMs,
            o.percentile ?? HEDGING_DEFAULTS.percentile,
            minSamples,
          )
        : undefined;
  }

  /** Called when a hedge starts. */
  onHedge(listener: Listener<HedgeEvent>): Disposable {
    return this._onHedge.subscribe(listener);
  }

  /** Called when a hedge was due (delay or failure) but the budget or the deadline refused it. */
  onDenied(listener: Listener<HedgeDeniedEvent>): Disposable {
    return this._onDenied.subscribe(listener);
  }

  /**
   * The delay before the next hedge, in milliseconds. Fixed: `delayMs`.
   * Adaptive: the `percentile` of the latencies of recent first attempts,
   * clamped to [`minDelayMs`, `maxDelayMs`], or `delayMs` while fewer than
   * `minSamples` are fresh. `now` is the policy clock's reading, when the
   * caller has one.
   */
  delayMs(now?: number): number {
    const window = this.#window;
    if (window === undefined) return this.#fixedMs;
    const p = window.value(now ?? this.clock.now());
    if (p === undefined) return this.#fixedMs;
    return Math.min(this.#maxDelayMs, Math.max(this.#minDelayMs, p));
  }

  /**
   * Adds the latency of a first attempt (milliseconds) to the adaptive window.
   * The policy calls it itself; a caller that races attempts without the
   * policy can feed it too. Does nothing with a fixed delay.
   * @throws RangeError when `ms` is not a number >= 0 or `now` not a finite number, naming it.
   */
  recordLatency(ms: number, now?: number): void {
    checkLatencySample('hedging().recordLatency', ms, now);
    this.#window?.record(ms, now ?? this.clock.now());
  }

  /**
   * May the next hedge start, given that `started` attempts (the first one
   * included) have started in this call? A hedge it approves has already been
   * taken from the budget. Checks, in order: `maxHedgedAttempts`, the deadline
   * in `ctx` (more than `minAttemptMs` must be left), the budget.
   */
  decide(started: number, ctx: ExecutionContext): HedgeDecision {
    if (started > this.maxHedgedAttempts) return DENY.attempts;
    if (ctx.deadline !== undefined && remainingMs(ctx) <= this.minAttemptMs) return DENY.deadline;
    if (!this.budget.tryWithdraw()) return DENY.budget;
    return HEDGE;
  }

  /** @internal whether `outcome` is a failure to hedge past. Throws CallbackError. */
  _handles(outcome: Outcome, ctx: ExecutionContext): boolean {
    const hedgeOn = this.#hedgeOn;
    if (hedgeOn === undefined) return !outcome.ok && isRetryableError(outcome.error);
    let verdict: unknown;
    try {
      verdict = hedgeOn(outcome, ctx);
    } catch (error) {
      throw new CallbackError('hedgeOn', error);
    }
    if (typeof verdict !== 'boolean')
      throw new CallbackError(
        'hedgeOn',
        new TypeError(`hedgeOn must return a boolean, got ${String(verdict)}`),
      );
    return verdict;
  }

  /** @internal */
  get _adaptive(): boolean {
    return this.#window !== undefined;
  }

  /** @internal */
  get _hasHedgeOn(): boolean {
    return this.#hedgeOn !== undefined;
  }

  run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    if (this.countRequests) this.budget.recordRequest();
    return new Promise<T>((resolve, reject) => {
      new HedgedCall(this, fn, ctx, resolve, reject).start();
    });
  }
}

/** One attempt in flight. */
interface Attempt {
  /** 0 for the first attempt, then 1, 2, … for hedges. */
  readonly index: number;
  readonly scope: ScopedContext;
  /** The context the operation was given. */
  readonly ctx: ExecutionContext;
  readonly startedAt: number;
}

/** The race of one call's attempts. */
class HedgedCall<T> {
  readonly #policy: HedgingPolicy;
  readonly #fn: Operation<T>;
  readonly #ctx: ExecutionContext;
  readonly #resolve: (value: T) => void;
  readonly #reject: (error: unknown) => void;
  readonly #live: Attempt[] = [];
  #started = 0;
  #settled = false;
  #timer: Timer | undefined;
  #firstAt = 0;

  constructor(
    policy: HedgingPolicy,
    fn: Operation<T>,
    ctx: ExecutionContext,
    resolve: (value: T) => void,
    reject: (error: unknown) => void,
  ) {
    this.#policy = policy;
    this.#fn = fn;
    this.#ctx = ctx;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  start(): void {
    // One clock reading serves the timer and the first attempt's start.
    const now = this.#ctx.clock.now();
    this.#firstAt = now;
    this.#arm(now);
    this.#launch(this.#ctx.attempt, now);
  }

  #arm(now: number): void {
    const at = now + this.#policy.delayMs(now);
    const timers = deadlineTimers(this.#ctx.clock);
    // The shared deadline timer runs its callbacks in the async context of
    // whichever call armed its platform timer, another call's as often as not.
    // A promise reaction runs in the context it was registered in: the hedge
    // is launched from one registered here, so it runs in this call's context
    // (its trace, its AsyncLocalStorage stores, its ambient deadline).
    new Promise<void>((due) => {
      this.#timer = timers.schedule(at, due);
    }).then(() => this.#onDelay());
  }

  #disarm(): void {
    this.#timer?.clear();
    this.#timer = undefined;
  }

  #launch(attempt: number, now: number): void {
    const ctx = this.#ctx;
    const scope = new ScopedContext(ctx, ctx.deadline);
    // The first attempt keeps the context's attempt number; hedge k gets that number + k.
    const attemptCtx = attempt === ctx.attempt ? scope : withAttempt(scope, attempt);
    const entry: Attempt = { index: this.#started, scope, ctx: attemptCtx, startedAt: now };
    this.#started++;
    this.#live.push(entry);
    let result: T | PromiseLike<T>;
    try {
      result = this.#fn(attemptCtx);
    } catch (error) {
      this.#failed(entry, error);
      return;
    }
    if (
      result !== null &&
      typeof result === 'object' &&
      typeof (result as PromiseLike<T>).then === 'function'
    ) {
      (result as PromiseLike<T>).then(
        (value) => this.#succeeded(entry, value),
        (error: unknown) => this.#failed(entry, error),
      );
    } else {
      this.#succeeded(entry, result as T);
    }
  }

  /** Takes a finished attempt off the live list; false when the call had already settled. */
  #finish(entry: Attempt): boolean {
    const live = this.#live;
    if (live.length === 1 && live[0] === entry) live.pop();
    else {
      const at = live.indexOf(entry);
      if (at >= 0) live.splice(at, 1);
    }
    entry.scope.release();
    return !this.#settled;
  }

  #succeeded(entry: Attempt, value: T): void {
    if (!this.#finish(entry)) return;
    // With the default classifier every result wins: no outcome to build.
    if (this.#policy._hasHedgeOn) this.#judge(entry, { ok: true, value });
    else this.#win(entry, value);
  }

  #failed(entry: Attempt, error: unknown): void {
    if (this.#finish(entry)) this.#judge(entry, { ok: false, error });
  }

  #win(entry: Attempt, value: T): void {
    const policy = this.#policy;
    if (entry.index === 0 && policy._adaptive) {
      const now = this.#ctx.clock.now();
      policy.recordLatency(now - entry.startedAt, now);
    }
    this.#settle({ ok: true, value }, entry);
  }

  #judge(entry: Attempt, outcome: Outcome<T>): void {
    const live = this.#live;
    const policy = this.#policy;
    const ctx = this.#ctx;
    if (!outcome.ok && ctx.signal.aborted) {
      // The caller gave up, or an enclosing deadline fired: pass its reason through.
      this.#settle({ ok: false, error: ctx.signal.reason }, undefined);
      return;
    }
    if (!outcome.ok && live.length > 0 && isRefusal(outcome.error)) {
      // Refused without running (a full bulkhead, an open breaker): says
      // nothing of the attempts still running, which go on racing.
      return;
    }
    let handled: boolean;
    try {
      handled = policy._handles(outcome, entry.ctx);
    } catch (error) {
      this.#settle({ ok: false, error }, undefined);
      return;
    }
    if (!handled) {
      if (outcome.ok) this.#win(entry, outcome.value);
      else this.#settle(outcome, entry);
      return;
    }
    // A failure worth hedging past: start the next attempt now rather than
    // after the delay (the delay guards against slowness, not failure).
    if (this.#started <= policy.maxHedgedAttempts) {
      if (this.#hedge('failure')) return;
    }
    if (live.length === 0) this.#settle(outcome, undefined);
  }

  #onDelay(): void {
    this.#timer = undefined;
    if (this.#settled) return;
    if (this.#ctx.signal.aborted) {
      this.#settle({ ok: false, error: this.#ctx.signal.reason }, undefined);
      return;
    }
    this.#hedge('delay');
  }

  /** Tries to start the next hedge; true when it started. */
  #hedge(trigger: HedgeTrigger): boolean {
    const policy = this.#policy;
    const ctx = this.#ctx;
    const decision = policy.decide(this.#started, ctx);
    const attempt = ctx.attempt + this.#started;
    if (!decision.hedge) {
      if (decision.reason !== 'attempts') {
        deniedCounter.add(1, ATTR[decision.reason]);
        if (policy._onDenied.listening)
          policy._onDenied.emit({
            attempt,
            trigger,
            reason: decision.reason,
            name: policy.name,
            operation: ctx.operation,
          });
      }
      return false;
    }
    this.#disarm();
    hedgesCounter.add(1, ATTR[trigger]);
    const now = ctx.clock.now();
    const elapsedMs = now - this.#firstAt;
    telemetry.spanEvent('bulwark.hedge', () => ({ attempt, trigger, elapsed_ms: elapsedMs }));
    if (policy._onHedge.listening)
      policy._onHedge.emit({ attempt, trigger, elapsedMs, name: policy.name, operation: ctx.operation });
    if (this.#started < policy.maxHedgedAttempts) this.#arm(now);
    this.#launch(attempt, now);
    return true;
  }

  #settle(outcome: Outcome<T>, winner: Attempt | undefined): void {
    this.#settled = true;
    this.#disarm();
    const live = this.#live;
    if (live.length > 0) {
      const lost = new HedgeLostError();
      for (const entry of live.splice(0)) {
        if (entry.index === 0 && this.#policy._adaptive && winner !== undefined) {
          // A first attempt beaten by a hedge ran at least this long: a
          // lower bound that still ranks above the delay, so the percentile
          // is not dragged down by the hedges it triggered.
          const now = this.#ctx.clock.now();
          this.#policy.recordLatency(now - entry.startedAt, now);
        }
        entry.scope.abort(lost);
      }
    }
    if (outcome.ok && winner !== undefined && this.#started > 1)
      winsCounter.add(1, winner.index === 0 ? ATTR.primary : ATTR.hedge);
    if (outcome.ok) this.#resolve(outcome.value);
    else this.#reject(outcome.error);
  }
}

/**
 * A hedging policy: when the first attempt has not answered within the delay,
 * a second one starts (up to `maxHedgedAttempts` extra attempts); the first
 * good result wins and the others are aborted through their `ctx.signal`
 * (reason: {@link HedgeLostError}).
 *
 * - A failed attempt (one `hedgeOn` accepts: by default a transient error)
 *   starts the next hedge at once, as Polly's hedging does; a fatal error
 *   ends the call with that error and aborts the others.
 * - An attempt refused without running (`isRefusal`: a full bulkhead, an
 *   open breaker) ends nothing while other attempts run: they go on racing.
 *   It ends the call only when no other attempt is running.
 * - When every attempt failed and no more may start, the call settles with the
 *   outcome of the attempt that finished last (an error is thrown, a result
 *   `hedgeOn` rejected is returned), as `retry()` does.
 * - Every hedge is withdrawn from a retry budget (its own by default: 10% of
 *   calls plus 1 per second), and none starts past the deadline in the context.
 * - The delay is fixed (`delayMs`, default 1 s) or adaptive (`delay:
 *   'adaptive'`: the p90 of recent first-attempt latency by default).
 *
 * Hedge only idempotent operations: several attempts may reach the server.
 */
export function hedging(options?: HedgingOptions): HedgingPolicy {
  return new HedgingPolicy(options);
}

declare module '@bulwark/core' {
  /** This package's error codes, for `isBulwarkError(e, code)` to narrow by. */
  interface BulwarkErrorMap {
    ERR_HEDGE_LOST: HedgeLostError;
  }
}
