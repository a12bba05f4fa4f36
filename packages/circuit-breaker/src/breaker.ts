import { type Clock, defaultRandom, type Random } from '@bulwark/clock';
import {
  type Backoff,
  BasePolicy,
  CallbackError,
  type Disposable,
  disposable,
  EventHub,
  type ExecutionContext,
  InvalidOptionsError,
  isBulwarkError,
  type Listener,
  type Operation,
  OptionsChecker,
} from '@bulwark/core';
import { BrokenCircuitError, CircuitClosedError, type CircuitState } from './errors.ts';
import { type BreakerSnapshot, type BreakerStateStore, SNAPSHOT_VERSION } from './store.ts';
import {
  type BreakerAttributes,
  breakerAttributes,
  callsCounter,
  countState,
  refusalsCounter,
  telemetry,
  transitionsCounter,
} from './telemetry.ts';
import { consecutive, type Trip, type TripState } from './trips.ts';

/** What a call produced, as `failureOn` sees it. */
export type CallOutcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: unknown };

/** Half-open tuning. */
export interface HalfOpenOptions {
  /** Probe calls admitted at once while half-open. Default: 1. */
  readonly maxProbes?: number | undefined;
  /** Probe successes that close the breaker. Default: 1. Any probe failure reopens it. */
  readonly successThreshold?: number | undefined;
  /**
   * A probe that has not settled after this many milliseconds gives its permit
   * back: its slot goes to the next call, and its late result is ignored. So
   * the breaker can never be stuck half-open. Default: 10,000.
   */
  readonly probeTimeoutMs?: number | undefined;
}

/** Options for {@link circuitBreaker}. */
export interface CircuitBreakerOptions {
  /** A name for telemetry and error messages. */
  readonly name?: string | undefined;
  /** When to open: one trip or several (any one opens it). Default: `consecutive(5)`. */
  readonly trip?: Trip | readonly Trip[] | undefined;
  /**
   * How long the breaker stays open before it lets a probe through, in
   * milliseconds, or a backoff (from @bulwark/retry) called with the number of
   * trips since it last closed, so repeated trips wait longer. Default: 10,000.
   */
  readonly openMs?: number | Backoff | undefined;
  readonly halfOpen?: HalfOpenOptions | undefined;
  /**
   * Which outcomes count as failures. Default: every error. The caller's own
   * abort never reaches it: a caller that gives up does not count against the
   * dependency. A `failureOn` that throws counts the call as a failure and
   * reports the error through `onError`.
   */
  readonly failureOn?: ((outcome: CallOutcome) => boolean) | undefined;
  /** A saved state to start from (see `toJSON()`). */
  readonly initialState?: BreakerSnapshot | undefined;
  /** Where to publish transitions, and read the fleet's view from (`syncFromStore()`). */
  readonly store?: BreakerStateStore | undefined;
  /** The key in `store`. Default: `name`. */
  readonly storeKey?: string | undefined;
  /** The clock. Default: the system clock. */
  readonly clock?: Clock | undefined;
  /** The random source a backoff `openMs` uses. Default: `Math.random`. */
  readonly random?: Random | undefined;
}

/** The defaults of {@link circuitBreaker}. */
export const CIRCUIT_BREAKER_DEFAULTS = Object.freeze({
  openMs: 10_000,
  maxProbes: 1,
  successThreshold: 1,
  probeTimeoutMs: 10_000,
  consecutiveFailures: 5,
});

/** Why a breaker changed state. */
export type TransitionReason =
  | 'trip'
  | 'open-elapsed'
  | 'probe-success'
  | 'probe-failure'
  | 'isolate'
  | 'release'
  | 'reset'
  | 'store';

/** Payload of `onStateChange`. */
export interface StateChangeEvent {
  readonly from: CircuitState;
  readonly to: CircuitState;
  readonly reason: TransitionReason;
  readonly name: string | undefined;
}

/** Payload of `onError`: a `failureOn` that threw, or a store that failed. */
export interface BreakerErrorEvent {
  readonly error: unknown;
  readonly name: string | undefined;
}

/** What `stats()` returns. */
export interface BreakerStats {
  readonly state: CircuitState;
  /** Increases at every transition; a result from an older generation changes nothing. */
  readonly generation: number;
  readonly admitted: number;
  readonly successes: number;
  readonly failures: number;
  /**
   * Calls judged neither way: the caller aborted, or the permit was reported
   * with `ignore()`. (A result from an older generation, or from a probe past
   * `probeTimeoutMs`, is counted by its outcome but changes no state.)
   */
  readonly ignored: number;
  readonly refused: number;
  /** Probes in flight (half-open), not counting those past `probeTimeoutMs`. */
  readonly probes: number;
  /** Milliseconds until an open breaker lets a probe through; 0 otherwise. */
  readonly openRemainingMs: number;
  /** Trips since the breaker last closed. */
  readonly trips: number;
}

/**
 * Permission to make one call, from `tryAcquire()`. Report how it went exactly
 * once: `success`, `failure`, or `ignore` (the caller gave up; it counts
 * neither way). Later reports are ignored.
 */
export interface CircuitPermit {
  /** The state generation the call was admitted in. */
  readonly generation: number;
  /** True for a half-open probe. */
  readonly probe: boolean;
  success(durationMs?: number): void;
  failure(error: unknown, durationMs?: number): void;
  ignore(): void;
}

class Permit implements CircuitPermit {
  readonly #breaker: CircuitBreakerPolicy;
  readonly generation: number;
  readonly probe: boolean;
  /** The probe's id (half-open), 0 otherwise. */
  readonly #probeId: number;
  #done = false;
  constructor(breaker: CircuitBreakerPolicy, generation: number, probe: boolean, probeId: number) {
    this.#breaker = breaker;
    this.generation = generation;
    this.probe = probe;
    this.#probeId = probeId;
  }
  success(durationMs = 0): void {
    if (this.#done) return;
    this.#done = true;
    this.#breaker._settle(this.generation, this.probe, this.#probeId, SUCCESS, durationMs);
  }
  failure(_error: unknown, durationMs = 0): void {
    if (this.#done) return;
    this.#done = true;
    this.#breaker._settle(this.generation, this.probe, this.#probeId, FAILURE, durationMs);
  }
  ignore(): void {
    if (this.#done) return;
    this.#done = true;
    this.#breaker._settle(this.generation, this.probe, this.#probeId, IGNORED, 0);
  }
}

const DEFAULT_TRIPS: readonly Trip[] = Object.freeze([
  consecutive(CIRCUIT_BREAKER_DEFAULTS.consecutiveFailures),
]);

const SUCCESS = 0;
const FAILURE = 1;
const IGNORED = 2;
type Verdict = typeof SUCCESS | typeof FAILURE | typeof IGNORED;
const STATES: readonly CircuitState[] = ['closed', 'open', 'half-open', 'isolated'];

/** Checks a saved state; throws a RangeError that says what is wrong with it. */
export function checkSnapshot(snapshot: unknown, where = 'initialState'): BreakerSnapshot {
  const s = snapshot as Partial<BreakerSnapshot> | null;
  if (typeof s !== 'object' || s === null) {
    throw new InvalidOptionsError('circuitBreaker()', [
      { option: where, expected: 'a snapshot from breaker.toJSON()', value: snapshot },
    ]);
  }
  if (s.version !== SNAPSHOT_VERSION) {
    throw new InvalidOptionsError('circuitBreaker()', [
      {
        option: `${where}.version`,
        expected: `${SNAPSHOT_VERSION} (a snapshot from this version of @bulwark/circuit-breaker)`,
        value: s.version,
      },
    ]);
  }
  const check = new OptionsChecker('circuitBreaker()');
  check.oneOf(`${where}.state`, s.state, STATES, true);
  check.number(`${where}.openRemainingMs`, s.openRemainingMs, { min: 0, required: true });
  check.number(`${where}.trips`, s.trips, { integer: true, min: 0, required: true });
  check.done();
  return Object.freeze({
    version: SNAPSHOT_VERSION,
    state: s.state!,
    openRemainingMs: s.openRemainingMs!,
    trips: s.trips!,
  });
}

/**
 * A circuit breaker. It holds no timer: open → half-open is decided when the
 * next call (or a read of `state`) arrives, from monotonic timestamps. An idle
 * breaker holds no timer and no reference to the functions it wrapped.
 */
export class CircuitBreakerPolicy extends BasePolicy {
  readonly name: string | undefined;
  readonly trips: readonly Trip[];
  readonly openMs: number | Backoff;
  readonly maxProbes: number;
  readonly successThreshold: number;
  readonly probeTimeoutMs: number;
  readonly #failureOn: ((outcome: CallOutcome) => boolean) | undefined;
  readonly #random: Random;
  readonly #timed: boolean;
  readonly #store: BreakerStateStore | undefined;
  readonly #storeKey: string | undefined;
  #tripStates: TripState[] | undefined;
  #state: CircuitState = 'closed';
  #generation = 0;
  #openUntil = 0;
  #tripCount = 0;
  #lastOpenMs = 0;
  /** Probes in flight while half-open: id → admission time. Made at the first half-open. */
  #probeStarts: Map<number, number> | undefined;
  #probeSeq = 0;
  #probeSuccesses = 0;
  /** The live isolate() handles; reset() drops them all, so an older handle releases nothing. */
  #isolations: Set<object> | undefined;
  #admitted = 0;
  #successes = 0;
  #failures = 0;
  #ignored = 0;
  #refused = 0;
  readonly #attrs: BreakerAttributes;
  #onStateChange: EventHub<StateChangeEvent> | undefined;
  #onError: EventHub<BreakerErrorEvent> | undefined;
  /** Left its registry: no longer counted in the state gauge. */
  #detached = false;

  constructor(options?: CircuitBreakerOptions) {
    const check = new OptionsChecker('circuitBreaker()');
    const trip = options?.trip;
    const trips: readonly Trip[] =
      trip === undefined ? DEFAULT_TRIPS : Array.isArray(trip) ? trip : [trip as Trip];
    check.expect(
      trips.length > 0 &&
        trips.every((t) => typeof t === 'object' && t !== null && typeof t.create === 'function'),
      'trip',
      trip,
      'a trip (consecutive(), failureRate(), slowCallRate()) or a non-empty array of them',
    );
    const openMs = options?.openMs ?? CIRCUIT_BREAKER_DEFAULTS.openMs;
    if (typeof openMs === 'number') check.number('openMs', openMs, { min: 0 });
    else
      check.expect(
        typeof openMs === 'object' && openMs !== null && typeof openMs.delayMs === 'function',
        'openMs',
        openMs,
        'a number of milliseconds >= 0 or a backoff',
      );
    const half = options?.halfOpen;
    check.number('halfOpen.maxProbes', half?.maxProbes, { integer: true, min: 1, max: 1_000_000 });
    check.number('halfOpen.successThreshold', half?.successThreshold, { integer: true, min: 1 });
    check.number('halfOpen.probeTimeoutMs', half?.probeTimeoutMs, { above: 0 });
    check.func('failureOn', options?.failureOn);
    check.func('random', options?.random);
    check.expect(
      options?.store === undefined ||
        (typeof options.store.publish === 'function' && typeof options.store.read === 'function'),
      'store',
      options?.store,
      'a BreakerStateStore (publish and read)',
    );
    check.expect(
      options?.store === undefined || (options.storeKey ?? options.name) !== undefined,
      'storeKey',
      options?.storeKey,
      'a key (or a name) when a store is given',
    );
    check.done();
    const initial = options?.initialState === undefined ? undefined : checkSnapshot(options.initialState);
    super(options?.clock);
    this.name = options?.name;
    // A frozen array (a registry passes one) is shared rather than copied per breaker.
    this.trips = Object.isFrozen(trips) ? trips : Object.freeze([...trips]);
    this.openMs = openMs;
    this.maxProbes = half?.maxProbes ?? CIRCUIT_BREAKER_DEFAULTS.maxProbes;
    this.successThreshold = half?.successThreshold ?? CIRCUIT_BREAKER_DEFAULTS.successThreshold;
    this.probeTimeoutMs = half?.probeTimeoutMs ?? CIRCUIT_BREAKER_DEFAULTS.probeTimeoutMs;
    this.#failureOn = options?.failureOn;
    this.#random = options?.random ?? defaultRandom;
    this.#timed = trips.some((t) => t.timed);
    this.#store = options?.store;
    this.#storeKey = options?.storeKey ?? options?.name;
    this.#attrs = breakerAttributes(this.name ?? 'unnamed');
    if (this.name !== undefined) countState(this.name, undefined, 'closed');
    if (initial !== undefined) this.#restore(initial);
  }

  /** The current state. Reading it applies a due open → half-open change. */
  get state(): CircuitState {
    if (this.#state === 'open' && this.clock.now() >= this.#openUntil)
      this.#transition('half-open', 'open-elapsed');
    return this.#state;
  }

  /** Called at every state change. */
  onStateChange(listener: Listener<StateChangeEvent>): Disposable {
    this.#onStateChange ??= new EventHub('circuitBreaker.onStateChange');
    return this.#onStateChange.subscribe(listener);
  }

  /** Called when `failureOn` throws or the store fails. The breaker carries on. */
  onError(listener: Listener<BreakerErrorEvent>): Disposable {
    this.#onError ??= new EventHub('circuitBreaker.onError');
    return this.#onError.subscribe(listener);
  }

  /**
   * Asks to make one call: a permit, or undefined when the breaker refuses
   * (open, isolated, or half-open with every probe slot taken). The primitive
   * the policy acts on; HTTP plugins and streams use it directly.
   */
  tryAcquire(): CircuitPermit | undefined {
    const generation = this.#admit();
    if (generation < 0) return undefined;
    const probe = this.#state === 'half-open';
    return new Permit(this, generation, probe, probe ? this.#probeSeq : 0);
  }

  /**
   * The error a refused call gets now. Throws {@link CircuitClosedError} when the
   * breaker is closed: call it after `tryAcquire()` returned undefined.
   */
  refusal(): BrokenCircuitError {
    const state = this.state;
    if (state === 'closed') throw new CircuitClosedError(this.name);
    const now = this.clock.now();
    const retryAfterMs =
      state === 'open'
        ? Math.max(0, this.#openUntil - now)
        : state === 'half-open'
          ? this.#probeRetryAfterMs(now)
          : undefined;
    return new BrokenCircuitError(state, retryAfterMs, this.name);
  }

  run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    if (this.#state === 'closed' && !this.#timed) return this.#runClosed(fn, ctx);
    const generation = this.#admit();
    if (generation < 0) return Promise.reject(this.refusal());
    const probe = this.#state === 'half-open';
    const probeId = probe ? this.#probeSeq : 0;
    const timed = this.#timed || probe;
    const start = timed ? this.clock.now() : 0;
    let result: T | PromiseLike<T>;
    try {
      result = fn(ctx);
    } catch (error) {
      this._settle(
        generation,
        probe,
        probeId,
        this.#judgeError(error, ctx),
        timed ? this.clock.now() - start : 0,
      );
      return Promise.reject(error);
    }
    const promise = result instanceof Promise ? (result as Promise<T>) : Promise.resolve(result);
    const onRejected = (error: unknown): never => {
      this._settle(
        generation,
        probe,
        probeId,
        this.#judgeError(error, ctx),
        timed ? this.clock.now() - start : 0,
      );
      throw error;
    };
    if (!timed) return promise.then(this.#fulfilledFor(generation) as (value: T) => T, onRejected);
    return promise.then((value) => {
      const verdict = this.#failureOn === undefined ? SUCCESS : this.#judge({ ok: true, value });
      this._settle(generation, probe, probeId, verdict, this.clock.now() - start);
      return value;
    }, onRejected);
  }

  /** The happy path: closed, with no trip that needs durations. */
  #runClosed<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    this.#admitted++;
    const generation = this.#generation;
    let result: T | PromiseLike<T>;
    try {
      result = fn(ctx);
    } catch (error) {
      this._settle(generation, false, 0, this.#judgeError(error, ctx), 0);
      return Promise.reject(error);
    }
    const promise = result instanceof Promise ? (result as Promise<T>) : Promise.resolve(result);
    return promise.then(this.#fulfilledFor(generation) as (value: T) => T, (error: unknown): never => {
      this._settle(generation, false, 0, this.#judgeError(error, ctx), 0);
      throw error;
    });
  }

  #fulfilled: ((value: unknown) => unknown) | undefined;
  #fulfilledGeneration = -1;

  /**
   * The success handler for untimed calls admitted in `generation`, made once
   * per generation rather than once per call.
   */
  #fulfilledFor(generation: number): (value: unknown) => unknown {
    if (this.#fulfilledGeneration !== generation || this.#fulfilled === undefined) {
      this.#fulfilledGeneration = generation;
      this.#fulfilled = (value) => {
        if (this.#failureOn === undefined && generation === this.#generation && this.#state === 'closed') {
          // A success while closed, inline: count it and feed the trips.
          this.#successes++;
          callsCounter.add(1, this.#attrs.outcome[SUCCESS]);
          const states = this.#states();
          let open = false;
          for (let i = 0; i < states.length; i++) {
            const s = states[i]!;
            s.record(false, 0);
            if (s.shouldOpen()) open = true;
          }
          if (open) this.#open('trip');
          return value;
        }
        const verdict = this.#failureOn === undefined ? SUCCESS : this.#judge({ ok: true, value });
        this._settle(generation, false, 0, verdict, 0);
        return value;
      };
    }
    return this.#fulfilled;
  }

  /**
   * Holds the breaker open by hand until the returned handle is disposed (with
   * several handles, until the last one is). Then it closes.
   */
  isolate(): Disposable {
    const handle = {};
    this.#isolations ??= new Set();
    const handles = this.#isolations;
    handles.add(handle);
    if (this.#state !== 'isolated') this.#transition('isolated', 'isolate');
    return disposable(() => {
      // A handle from before a reset() no longer holds anything.
      if (!handles.delete(handle) || handles !== this.#isolations) return;
      if (handles.size === 0 && this.#state === 'isolated') this.#close('release');
    });
  }

  /** Closes the breaker and forgets its history, isolation included. */
  reset(): void {
    this.#isolations = undefined;
    this.#tripCount = 0;
    this.#close('reset');
  }

  stats(): BreakerStats {
    const state = this.state;
    let probes = 0;
    if (state === 'half-open' && this.#probeStarts !== undefined) {
      this.#expireProbes(this.clock.now());
      probes = this.#probeStarts.size;
    }
    return {
      state,
      generation: this.#generation,
      admitted: this.#admitted,
      successes: this.#successes,
      failures: this.#failures,
      ignored: this.#ignored,
      refused: this.#refused,
      probes,
      openRemainingMs: state === 'open' ? Math.max(0, this.#openUntil - this.clock.now()) : 0,
      trips: this.#tripCount,
    };
  }

  /** The state to save (with relative durations); pass it back as `initialState`. */
  toJSON(): BreakerSnapshot {
    const state = this.state;
    return {
      version: SNAPSHOT_VERSION,
      state,
      openRemainingMs: state === 'open' ? Math.max(0, this.#openUntil - this.clock.now()) : 0,
      trips: this.#tripCount,
    };
  }

  /**
   * Reads the fleet's view from the store and adopts an open or isolated state
   * published there (it never closes a breaker that is open here). Resolves
   * even when the store fails; the failure goes to `onError`.
   */
  async syncFromStore(): Promise<void> {
    const store = this.#store;
    if (store === undefined) return;
    let snapshot: BreakerSnapshot | undefined;
    try {
      const read = await store.read(this.#storeKey!);
      snapshot = read === undefined ? undefined : checkSnapshot(read, 'store snapshot');
    } catch (error) {
      this.#reportError(error);
      return;
    }
    if (snapshot === undefined) return;
    const local = this.state;
    if (
      (snapshot.state === 'open' || snapshot.state === 'isolated') &&
      local !== 'open' &&
      local !== 'isolated'
    ) {
      if (snapshot.openRemainingMs <= 0 && snapshot.state === 'open') return;
      this.#tripCount = Math.max(this.#tripCount, snapshot.trips);
      // Isolated elsewhere: open here for this breaker's own open duration (it
      // cannot know when the fleet's isolation ends), then probe.
      this.#openFor(
        snapshot.state === 'isolated' ? this.#openDurationMs(this.#tripCount + 1) : snapshot.openRemainingMs,
        'store',
        false,
      );
    }
  }

  /** Admits a call: its generation, or -1 when refused. */
  #admit(): number {
    switch (this.#state) {
      case 'closed':
        this.#admitted++;
        return this.#generation;
      case 'open': {
        if (this.clock.now() < this.#openUntil) return this.#refuse();
        this.#transition('half-open', 'open-elapsed');
        return this.#admitProbe();
      }
      case 'half-open':
        return this.#admitProbe();
      default:
        return this.#refuse();
    }
  }

  /** The trips' running state, created on the first recorded call. */
  #states(): TripState[] {
    if (this.#tripStates === undefined) this.#tripStates = this.trips.map((t) => t.create(this.clock));
    return this.#tripStates;
  }

  #admitProbe(): number {
    const now = this.clock.now();
    this.#probeStarts ??= new Map();
    this.#expireProbes(now);
    if (this.#probeStarts.size >= this.maxProbes) return this.#refuse();
    this.#probeStarts.set(++this.#probeSeq, now);
    this.#admitted++;
    return this.#generation;
  }

  /**
   * Takes back the permits of probes admitted `probeTimeoutMs` or more ago: a
   * probe that never settles must not hold its slot forever. Their late
   * results are ignored.
   */
  #expireProbes(now: number): void {
    const starts = this.#probeStarts!;
    // Admission order is time order: stop at the first probe still within its time.
    for (const [id, start] of starts) {
      if (start + this.probeTimeoutMs > now) break;
      starts.delete(id);
    }
  }

  /** Half-open: milliseconds until a probe slot is free (0 when one is free now). */
  #probeRetryAfterMs(now: number): number {
    const starts = this.#probeStarts;
    if (starts === undefined) return 0;
    this.#expireProbes(now);
    if (starts.size < this.maxProbes) return 0;
    // Every slot is taken: the oldest probe gives its permit back first.
    for (const start of starts.values()) return Math.max(0, start + this.probeTimeoutMs - now);
    return 0;
  }

  /** @internal Calls admitted and not yet reported (for registries: a busy breaker is not idle). */
  _inFlight(): number {
    return this.#admitted - this.#successes - this.#failures - this.#ignored;
  }

  #refuse(): number {
    this.#refused++;
    refusalsCounter.add(1, this.#attrs.refused[this.#state]);
    return -1;
  }

  #judgeError(error: unknown, ctx: ExecutionContext): Verdict {
    // The caller's own abort says nothing about the dependency. Our deadline firing does.
    if (ctx.signal.aborted && !isBulwarkError(ctx.signal.reason, 'ERR_DEADLINE_EXCEEDED')) return IGNORED;
    return this.#failureOn === undefined ? FAILURE : this.#judge({ ok: false, error });
  }

  #judge(outcome: CallOutcome): Verdict {
    try {
      return this.#failureOn!(outcome) ? FAILURE : SUCCESS;
    } catch (error) {
      this.#reportError(new CallbackError('failureOn', error));
      return FAILURE;
    }
  }

  /** @internal Records a settled call admitted in `generation`. */
  _settle(generation: number, probe: boolean, probeId: number, verdict: Verdict, durationMs: number): void {
    callsCounter.add(1, this.#attrs.outcome[verdict]);
    if (verdict === SUCCESS) this.#successes++;
    else if (verdict === FAILURE) this.#failures++;
    else this.#ignored++;
    if (generation !== this.#generation) return; // admitted before a transition: it changes nothing
    if (probe) {
      // A probe past probeTimeoutMs already gave its permit back: its result changes nothing.
      if (!this.#probeStarts!.delete(probeId)) return;
      if (verdict === IGNORED) return;
      if (verdict === FAILURE) this.#open('probe-failure');
      else if (++this.#probeSuccesses >= this.successThreshold) this.#close('probe-success');
      return;
    }
    if (this.#state !== 'closed' || verdict === IGNORED) return;
    const states = this.#states();
    const failure = verdict === FAILURE;
    let open = false;
    for (let i = 0; i < states.length; i++) {
      const s = states[i]!;
      s.record(failure, durationMs);
      // Judged after every call, a success included: with [F, F, F, ok] and
      // minimumCalls 4 the window's rate first becomes known at the success.
      if (s.shouldOpen()) open = true;
    }
    if (open) this.#open('trip');
  }

  #open(reason: TransitionReason): void {
    this.#tripCount++;
    this.#openFor(this.#openDurationMs(this.#tripCount), reason, true);
  }

  /** How long to stay open after the `trip`-th trip since the breaker last closed. */
  #openDurationMs(trip: number): number {
    const openMs = this.openMs;
    if (typeof openMs === 'number') return openMs;
    try {
      const ms = openMs.delayMs(trip, this.#lastOpenMs, this.#random);
      if (!(ms >= 0) || ms === Number.POSITIVE_INFINITY)
        throw new RangeError(`the openMs backoff returned ${ms}`);
      return ms;
    } catch (error) {
      this.#reportError(new CallbackError('openMs backoff', error));
      return this.#lastOpenMs > 0 ? this.#lastOpenMs : CIRCUIT_BREAKER_DEFAULTS.openMs;
    }
  }

  #openFor(ms: number, reason: TransitionReason, trip: boolean): void {
    this.#lastOpenMs = ms;
    this.#openUntil = this.clock.now() + ms;
    this.#transition('open', reason);
    if (trip) {
      const name = this.name;
      telemetry.spanEvent('bulwark.circuit.opened', () => ({
        breaker: name ?? 'unnamed',
        reason,
        open_ms: ms,
      }));
    }
  }

  #close(reason: TransitionReason): void {
    for (const s of this.#tripStates ?? []) s.reset();
    this.#tripCount = 0;
    this.#transition('closed', reason);
  }

  #transition(to: CircuitState, reason: TransitionReason): void {
    const from = this.#state;
    this.#state = to;
    this.#generation++;
    this.#probeSuccesses = 0;
    this.#probeStarts?.clear();
    const name = this.name;
    if (name !== undefined && !this.#detached) countState(name, from, to);
    transitionsCounter.add(1, { breaker: name ?? 'unnamed', from, to });
    if (this.#onStateChange?.listening) this.#onStateChange.emit({ from, to, reason, name });
    if (this.#store !== undefined && reason !== 'store') this.#publish();
  }

  #publish(): void {
    try {
      const pending = this.#store!.publish(this.#storeKey!, this.#snapshotNow());
      if (pending !== undefined) pending.catch((error: unknown) => this.#reportError(error));
    } catch (error) {
      this.#reportError(error);
    }
  }

  /** The snapshot without applying a due transition (used while transitioning). */
  #snapshotNow(): BreakerSnapshot {
    return {
      version: SNAPSHOT_VERSION,
      state: this.#state,
      openRemainingMs: this.#state === 'open' ? Math.max(0, this.#openUntil - this.clock.now()) : 0,
      trips: this.#tripCount,
    };
  }

  #reportError(error: unknown): void {
    if (this.#onError?.listening) this.#onError.emit({ error, name: this.name });
    else
      process.emitWarning(`circuit breaker ${this.name ?? ''}: ${String(error)}`, {
        code: 'BULWARK_BREAKER_ERROR',
      });
  }

  #restore(snapshot: BreakerSnapshot): void {
    this.#tripCount = snapshot.trips;
    switch (snapshot.state) {
      case 'open':
        this.#openFor(snapshot.openRemainingMs, 'store', false);
        break;
      case 'half-open':
        this.#transition('half-open', 'store');
        break;
      case 'isolated':
        // A saved isolation holds until reset(): nobody holds its handle any more.
        this.#isolations = new Set([{}]);
        this.#transition('isolated', 'store');
        break;
      default:
        break;
    }
  }

  /** @internal For registries: forget this breaker in the state gauge. */
  _detach(): void {
    if (this.name !== undefined && !this.#detached) countState(this.name, this.#state, undefined);
    this.#detached = true;
  }
}

/**
 * A circuit breaker policy. Defaults: opens after 5 consecutive failures,
 * stays open 10 s, then admits 1 probe; 1 probe success closes it; a probe
 * that has not settled after 10 s gives its slot to the next call. Every error counts as a failure
 * except the caller's own abort.
 */
export function circuitBreaker(options?: CircuitBreakerOptions): CircuitBreakerPolicy {
  return new CircuitBreakerPolicy(options);
}
