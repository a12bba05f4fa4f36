import { type Clock, defaultRandom, type Random, sleep } from '@bulwark/clock';
import {
  BulwarkError,
  CallbackError,
  type Disposable,
  type ExecutionContext,
  type Listener,
  type Operation,
  type Outcome,
} from '@bulwark/core';
import { BasePolicy, EventHub, OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import { injectionsCounter } from './telemetry.ts';

const OUTCOME_KEYS = optionKeys<InjectOutcomeOptions<unknown>>({
  rate: true,
  enabled: true,
  random: true,
  clock: true,
  name: true,
  outcome: true,
});

const LATENCY_KEYS = optionKeys<InjectLatencyOptions>({
  rate: true,
  enabled: true,
  random: true,
  clock: true,
  name: true,
  latencyMs: true,
});

const FAULT_KEYS = optionKeys<InjectFaultOptions>({
  rate: true,
  enabled: true,
  random: true,
  clock: true,
  name: true,
  error: true,
});

/** The kinds of chaos policy. */
export type ChaosKind = 'fault' | 'latency' | 'outcome';

/** Options every chaos policy takes. */
export interface ChaosOptions {
  /** The share of calls to inject into, in [0, 1]. Default: 0.1. Change it later with `policy.rate = …`. */
  readonly rate?: number | undefined;
  /**
   * Whether the policy injects at all: a boolean (change it later with
   * `policy.enabled = …`) or a function read on every call (a feature flag).
   * Default: true.
   */
  readonly enabled?: (boolean | (() => boolean)) | undefined;
  /** The random source calls are sampled with; give a seeded one for repeatable runs. Default: `Math.random`. */
  readonly random?: Random | undefined;
  /** The clock for latency waits and for contexts this policy creates. Default: the system clock. */
  readonly clock?: Clock | undefined;
  /** A name for events and telemetry. Default: none. */
  readonly name?: string | undefined;
}

/** The defaults every chaos policy shares. */
export const CHAOS_DEFAULTS = Object.freeze({ rate: 0.1, enabled: true });

/** Payload of `onInject`. */
export interface InjectEvent {
  readonly kind: ChaosKind;
  readonly name: string | undefined;
  readonly operation: string | undefined;
  /** For latency: the injected delay, in milliseconds. */
  readonly delayMs?: number | undefined;
}

/**
 * The error `injectFault()` throws by default. Its code, `ERR_INJECTED_FAULT`,
 * tells a rehearsal's failures from real ones in logs and dashboards.
 */
export class InjectedFaultError extends BulwarkError<'ERR_INJECTED_FAULT'> {
  constructor(name?: string) {
    super(
      'ERR_INJECTED_FAULT',
      `fault injected by ${name === undefined ? 'injectFault()' : `chaos policy "${name}"`}`,
    );
  }
}

function checkCommon(check: OptionsChecker, o: ChaosOptions): void {
  check.number('rate', o.rate, { min: 0, max: 1 });
  check.expect(
    o.enabled === undefined || typeof o.enabled === 'boolean' || typeof o.enabled === 'function',
    'enabled',
    o.enabled,
    'a boolean or a function returning one',
  );
  check.func('random', o.random);
  check.clock('clock', o.clock, true);
  check.string('name', o.name);
}

/**
 * What every chaos policy shares: a rate, a run-time switch and a seeded
 * sample. {@link sample} is the primitive: it decides whether this call is
 * injected into.
 */
export abstract class ChaosPolicy extends BasePolicy {
  abstract readonly kind: ChaosKind;
  readonly random: Random;
  readonly name: string | undefined;
  #rate: number;
  #enabled: boolean | (() => boolean);
  readonly #component: string;
  /** @internal */
  readonly _onInject: EventHub<InjectEvent>;

  constructor(component: string, o: ChaosOptions) {
    super(o.clock);
    this.#component = component;
    this.#rate = o.rate ?? CHAOS_DEFAULTS.rate;
    this.#enabled = o.enabled ?? CHAOS_DEFAULTS.enabled;
    this.random = o.random ?? defaultRandom;
    this.name = o.name;
    this._onInject = new EventHub<InjectEvent>(`${component}.onInject`);
  }

  /** The share of calls injected into, in [0, 1]. Setting it checks the value. */
  get rate(): number {
    return this.#rate;
  }
  set rate(value: number) {
    const check = new OptionsChecker(`${this.#component}.rate`);
    check.number('rate', value, { min: 0, max: 1, required: true });
    check.done();
    this.#rate = value;
  }

  /** Whether the policy injects now. Set a boolean or a function to switch it at run time. */
  get enabled(): boolean {
    const e = this.#enabled;
    return typeof e === 'function' ? e() === true : e;
  }
  set enabled(value: boolean | (() => boolean)) {
    const check = new OptionsChecker(`${this.#component}.enabled`);
    check.expect(
      typeof value === 'boolean' || typeof value === 'function',
      'enabled',
      value,
      'a boolean or a function returning one',
    );
    check.done();
    this.#enabled = value;
  }

  /** Called each time the policy injects. */
  onInject(listener: Listener<InjectEvent>): Disposable {
    return this._onInject.subscribe(listener);
  }

  /**
   * Whether to inject into this call: enabled, and a draw from `random` below
   * `rate`. Draws nothing when disabled or at rate 0, so a disabled policy
   * does not move a seeded sequence.
   */
  sample(): boolean {
    const rate = this.#rate;
    if (rate === 0 || !this.enabled) return false;
    return this.random() < rate;
  }

  /** @internal */
  _injected(ctx: ExecutionContext, delayMs?: number): void {
    injectionsCounter.add(1, KIND[this.kind]);
    if (this._onInject.listening)
      this._onInject.emit({
        kind: this.kind,
        name: this.name,
        operation: ctx.operation,
        ...(delayMs === undefined ? {} : { delayMs }),
      });
  }
}

const KIND = Object.freeze({
  fault: Object.freeze({ kind: 'fault' }),
  latency: Object.freeze({ kind: 'latency' }),
  outcome: Object.freeze({ kind: 'outcome' }),
});

/** Options for {@link injectFault}. */
export interface InjectFaultOptions extends ChaosOptions {
  /**
   * The error to throw: a value, or a function of the context that returns
   * one (a fresh error per call keeps stack traces apart). Default: a new
   * {@link InjectedFaultError}.
   */
  readonly error?: ((ctx: ExecutionContext) => unknown) | Error | object | string | undefined;
}

/** Throws an error instead of making the call. See {@link injectFault}. */
export class InjectFaultPolicy extends ChaosPolicy {
  readonly kind = 'fault' as const;
  readonly #error: unknown;

  constructor(options?: InjectFaultOptions) {
    const o = options ?? {};
    const check = new OptionsChecker('injectFault()');
    check.knownKeys(options, FAULT_KEYS);
    checkCommon(check, o);
    check.done();
    super('injectFault()', o);
    this.#error = o.error;
  }

  run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
    if (!this.sample()) return fn(ctx);
    this._injected(ctx);
    const source = this.#error;
    if (source === undefined) throw new InjectedFaultError(this.name);
    if (typeof source !== 'function') throw source;
    let error: unknown;
    try {
      error = (source as (ctx: ExecutionContext) => unknown)(ctx);
    } catch (thrown) {
      throw new CallbackError('error', thrown);
    }
    throw error;
  }
}

/** Options for {@link injectLatency}. */
export interface InjectLatencyOptions extends ChaosOptions {
  /**
   * The delay before the call, in milliseconds: a number >= 0, or a function
   * of the context and the random source (for a distribution). Required.
   */
  readonly latencyMs: number | ((ctx: ExecutionContext, random: Random) => number);
}

/** Waits before making the call. See {@link injectLatency}. */
export class InjectLatencyPolicy extends ChaosPolicy {
  readonly kind = 'latency' as const;
  readonly #latency: number | ((ctx: ExecutionContext, random: Random) => number);

  constructor(options: InjectLatencyOptions) {
    const o = options ?? ({} as InjectLatencyOptions);
    const check = new OptionsChecker('injectLatency()');
    check.knownKeys(options, LATENCY_KEYS);
    checkCommon(check, o);
    const latency = o.latencyMs;
    check.expect(
      typeof latency === 'function' ||
        (typeof latency === 'number' && latency >= 0 && Number.isFinite(latency)),
      'latencyMs',
      latency,
      'a finite number >= 0 or a function returning one',
    );
    check.done();
    super('injectLatency()', o);
    this.#latency = latency;
  }

  run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
    if (!this.sample()) return fn(ctx);
    const source = this.#latency;
    let delayMs: number;
    if (typeof source === 'number') delayMs = source;
    else {
      try {
        delayMs = source(ctx, this.random);
      } catch (thrown) {
        throw new CallbackError('latencyMs', thrown);
      }
      if (!(typeof delayMs === 'number' && delayMs >= 0 && Number.isFinite(delayMs)))
        throw new CallbackError(
          'latencyMs',
          new RangeError(`latencyMs returned ${String(delayMs)}; it must be a finite number >= 0`),
        );
    }
    this._injected(ctx, delayMs);
    // The wait ends at once, with the signal's reason, when the caller aborts
    // or an enclosing deadline fires.
    return sleep(delayMs, { clock: ctx.clock, signal: ctx.signal }).then(() => fn(ctx));
  }
}

/** An outcome `injectOutcome()` returns instead of the call's: core's `Outcome`. */
export type InjectedOutcome<T = unknown> = Outcome<T>;

/** Options for {@link injectOutcome}. */
export interface InjectOutcomeOptions<T = unknown> extends ChaosOptions {
  /**
   * The outcome to produce instead of making the call: `{ ok: true, value }`
   * or `{ ok: false, error }`, or a function of the context that returns one.
   * Required.
   */
  readonly outcome: InjectedOutcome<T> | ((ctx: ExecutionContext) => InjectedOutcome<T>);
}

/**
 * Answers with a given outcome (a result, such as an HTTP 503 response, or an
 * error) instead of making the call. See {@link injectOutcome}.
 */
export class InjectOutcomePolicy<R = unknown> extends ChaosPolicy {
  readonly kind = 'outcome' as const;
  readonly #outcome: InjectedOutcome<R> | ((ctx: ExecutionContext) => InjectedOutcome<R>);

  constructor(options: InjectOutcomeOptions<R>) {
    const o = options ?? ({} as InjectOutcomeOptions<R>);
    const check = new OptionsChecker('injectOutcome()');
    check.knownKeys(options, OUTCOME_KEYS);
    checkCommon(check, o);
    check.expect(
      typeof o.outcome === 'function' || isOutcome(o.outcome),
      'outcome',
      o.outcome,
      '{ ok: true, value } or { ok: false, error }, or a function returning one',
    );
    check.done();
    super('injectOutcome()', o);
    this.#outcome = o.outcome;
  }

  run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
    if (!this.sample()) return fn(ctx);
    const source = this.#outcome;
    let outcome: unknown;
    if (typeof source === 'function') {
      try {
        outcome = source(ctx);
      } catch (thrown) {
        throw new CallbackError('outcome', thrown);
      }
      if (!isOutcome(outcome))
        throw new CallbackError(
          'outcome',
          new TypeError(
            `outcome must return { ok: true, value } or { ok: false, error }, got ${String(outcome)}`,
          ),
        );
    } else outcome = source;
    this._injected(ctx);
    const o = outcome as InjectedOutcome<R>;
    if (o.ok) return o.value as unknown as T;
    throw o.error;
  }
}

function isOutcome(value: unknown): value is InjectedOutcome {
  return (
    typeof value === 'object' &&
    value !== null &&
    (((value as { ok?: unknown }).ok === true && 'value' in value) ||
      ((value as { ok?: unknown }).ok === false && 'error' in value))
  );
}

/**
 * Throws an error instead of making the call, for a `rate` share of calls
 * (default 10%): by default an {@link InjectedFaultError}
 * (`ERR_INJECTED_FAULT`). Drop it into a pipeline where the real failure would
 * arise (usually innermost) to rehearse how the policies outside it react.
 */
export function injectFault(options?: InjectFaultOptions): InjectFaultPolicy {
  return new InjectFaultPolicy(options);
}

/**
 * Waits `latencyMs` before making the call, for a `rate` share of calls
 * (default 10%). The wait is on the policy's clock and ends at once with the
 * signal's reason when the caller aborts or a deadline around it fires.
 */
export function injectLatency(options: InjectLatencyOptions): InjectLatencyPolicy {
  return new InjectLatencyPolicy(options);
}

/**
 * Produces `outcome` (a result or an error) instead of making the call, for a
 * `rate` share of calls (default 10%).
 */
export function injectOutcome<R>(options: InjectOutcomeOptions<R>): InjectOutcomePolicy<R> {
  return new InjectOutcomePolicy(options);
}

declare module '@bulwark/core' {
  /** This package's error codes, for `isBulwarkError(e, code)` to narrow by. */
  interface BulwarkErrorMap {
    ERR_INJECTED_FAULT: InjectedFaultError;
  }
}
