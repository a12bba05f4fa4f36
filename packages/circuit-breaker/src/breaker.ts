import type { Random, Timer } from '@bulwark/clock';
import {
  type Backoff,
  CallbackError,
  type Disposable,
  type ExecutionContext,
  isBulwarkError,
  type Listener,
  type Operation,
} from '@bulwark/core';
import {
  asPromise,
  BasePolicy,
  checkedDelayMs,
  disposable,
  EventHub,
  joinRace,
  metricsRegistered,
  type SettleObserver,
} from '@bulwark/core/authoring';
import { BrokenCircuitError, CircuitClosedError, type CircuitState } from './errors.ts';
import {
  BREAKER_KEYS,
  type CallOutcome,
  CIRCUIT_BREAKER_DEFAULTS,
  type CircuitBreakerOptions,
  checkBreakerOptions,
  isResolved,
  type ResolvedBreakerOptions,
  withStoreKey,
} from './options.ts';
import { adoptedOpenMs, checkSnapshot, snapshotOf } from './persistence.ts';
import {
  admitProbe,
  type BreakerState,
  type ClosedState,
  closedState,
  expireProbes,
  type HalfOpenState,
  halfOpenState,
  isolatedState,
  openState,
  probeRetryAfterMs,
} from './state.ts';
import type { BreakerSnapshot, BreakerStateStore } from './store.ts';
import {
  type BreakerAttributes,
  breakerAttributes,
  callsCounter,
  countState,
  type RideThroughOutcome,
  recordOpened,
  recordRideThrough,
  recordTransition,
  refusalsCounter,
} from './telemetry.ts';
import type { Trip, TripState } from './trips.ts';

/** The error options of a refusal built without a stack trace. */
const NO_STACK = Object.freeze({ stack: false as const });

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
   * with `ignore()`. (A result from an older generation, or a failure from a
   * probe past `probeTimeoutMs`, is counted by its outcome but changes no state.)
   */
  readonly ignored: number;
  readonly refused: number;
  /** Probes in flight (half-open), not counting those past `probeTimeoutMs`. */
  readonly probes: number;
  /** Milliseconds until an open breaker lets a probe through; 0 otherwise. */
  readonly openRemainingMs: number;
  /** Trips since the breaker last closed. */
  readonly trips: number;
  /**
   * Failures that did not count toward a trip because the call was admitted
   * before the latest success (they are included in `failures`).
   */
  readonly staleFailures: number;
  /** Calls waiting for a probe's verdict (ride-through). */
  readonly waiting: number;
}

/** Options for `tryAcquire`. */
export interface CircuitAcquireOptions {
  /**
   * The caller's signal. A permit reported with `failure()` after it aborted
   * (for any reason but a deadline of ours) counts neither way, as a call run
   * by the policy does: a caller that gives up says nothing about the dependency.
   */
  readonly signal?: AbortSignal | undefined;
}

/** Options for `acquire`. */
export interface CircuitWaitOptions extends CircuitAcquireOptions {
  /**
   * The instant, on the breaker's clock, by which the caller must be done (as
   * `ExecutionContext.deadline`). Ride-through waits only when it leaves room
   * for the probe and for the call. Default: none (`maxWaitMs` bounds the wait).
   */
  readonly deadline?: number | undefined;
}

/**
 * Permission to make one call, from `tryAcquire()`. Report how it went exactly
 * once: `success`, `failure`, or `ignore` (the caller gave up; it counts
 * neither way). Later reports are ignored. A report is judged exactly as the
 * policy judges a call it runs: `failureOn` sees the value or the error, a
 * failure after the caller's signal aborted counts neither way, and a duration
 * left out is measured from the permit's admission when a trip needs it.
 */
export interface CircuitPermit {
  /** The state generation the call was admitted in. */
  readonly generation: number;
  /** True for a half-open probe. */
  readonly probe: boolean;
  /**
   * The call succeeded (`failureOn`, when given, sees `{ ok: true, value }`).
   * `durationMs`: how long it took; measured by the permit when left out.
   */
  success(durationMs?: number, value?: unknown): void;
  /** The call failed (`failureOn`, when given, sees `{ ok: false, error }`). */
  failure(error: unknown, durationMs?: number): void;
  ignore(): void;
}

/** Where a permit reads the caller's signal from, only when a failure needs it. */
interface SignalSource {
  readonly signal?: AbortSignal | undefined;
}

/**
 * A permit, as `tryAcquire()` hands it out, and as `run()` holds it when the
 * call is a bounded one (a deadline or timeout inside the breaker): the call's
 * own race then tells it how the call ended ({@link SettleObserver}), so the
 * policy reports through the permit, with no promise of its own.
 */
class Permit implements CircuitPermit, SettleObserver<unknown> {
  readonly breaker: CircuitBreakerPolicy;
  readonly generation: number;
  /** The probe's id (half-open), 0 otherwise. */
  readonly probeId: number;
  /** When it was admitted, when the breaker needs durations; 0 otherwise. */
  readonly startedAt: number;
  /** Its admission number (see `_settle`). */
  readonly seq: number;
  readonly source: SignalSource | undefined;
  done = false;
  constructor(
    breaker: CircuitBreakerPolicy,
    generation: number,
    probeId: number,
    startedAt: number,
    seq: number,
    source: SignalSource | undefined,
  ) {
    this.breaker = breaker;
    this.generation = generation;
    this.probeId = probeId;
    this.startedAt = startedAt;
    this.seq = seq;
    this.source = source;
  }
  get probe(): boolean {
    return this.probeId !== 0;
  }
  success(durationMs?: number, value?: unknown): void {
    this.#report(false, value, durationMs);
  }
  failure(error: unknown, durationMs?: number): void {
    this.#report(true, error, durationMs);
  }
  /** Reports once: the first success or failure counts, later ones do nothing. */
  #report(failed: boolean, outcome: unknown, durationMs: number | undefined): void {
    if (this.done) return;
    this.done = true;
    this.breaker._report(
      this.generation,
      this.probeId,
      this.startedAt,
      this.seq,
      this.source,
      failed,
      outcome,
      durationMs,
    );
  }
  ignore(): void {
    if (this.done) return;
    this.done = true;
    this.breaker._settle(this.generation, this.probeId, this.seq, IGNORED, 0);
  }
  /** The bounded call it watches resolved with `value`. */
  settled(value: unknown): void {
    this.#report(false, value, undefined);
  }
  /** The bounded call it watches rejected with `error`. */
  failed(error: unknown): void {
    this.#report(true, error, undefined);
  }
}

/** What a waiter is handed when it is admitted. */
interface Admission {
  readonly generation: number;
  readonly probeId: number;
  readonly seq: number;
}

/** A call waiting for a probe's verdict: a node of the FIFO, removable in O(1). */
class Waiter {
  readonly resolve: (admission: Admission) => void;
  readonly reject: (error: unknown) => void;
  /** When it gives up, refused, if no verdict has come. */
  readonly giveUpAt: number;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  prev: Waiter | undefined;
  next: Waiter | undefined;
  constructor(
    resolve: (admission: Admission) => void,
    reject: (error: unknown) => void,
    giveUpAt: number,
    signal: AbortSignal | undefined,
  ) {
    this.resolve = resolve;
    this.reject = reject;
    this.giveUpAt = giveUpAt;
    this.signal = signal;
  }
}

const SUCCESS = 0;
const FAILURE = 1;
const IGNORED = 2;
type Verdict = typeof SUCCESS | typeof FAILURE | typeof IGNORED;

/** @internal A breaker from resolved options, under `storeKey` when it has a store. */
export function breakerFromResolved(
  resolved: ResolvedBreakerOptions,
  storeKey: string | undefined,
): CircuitBreakerPolicy {
  return new CircuitBreakerPolicy(withStoreKey(resolved, storeKey) as unknown as CircuitBreakerOptions);
}

/**
 * A circuit breaker. It holds no timer: open → half-open is decided when the
 * next call (or a read of `state`) arrives, from monotonic timestamps. An idle
 * breaker holds no timer and no reference to the functions it wrapped.
 *
 * `run()` is `tryAcquire()`, the call, and a report through the permit: the
 * policy and the permit judge every outcome the same way.
 */
export class CircuitBreakerPolicy extends BasePolicy {
  readonly name: string | undefined;
  readonly trips: readonly Trip[];
  readonly openMs: number | Backoff;
  readonly maxProbes: number;
  readonly successThreshold: number;
  readonly probeTimeoutMs: number;
  /** Ride-through settings, frozen; undefined when off. */
  readonly rideThrough:
    | { readonly maxWaiters: number; readonly maxWaitMs: number; readonly probeEstimateMs: number }
    | undefined;
  readonly #failureOn: ((outcome: CallOutcome) => boolean) | undefined;
  readonly #random: Random;
  readonly #timed: boolean;
  readonly #store: BreakerStateStore | undefined;
  readonly #storeKey: string | undefined;
  /** The store's `syncIntervalMs`: how often a closed breaker taking calls reads the fleet's view. */
  readonly #syncMs: number | undefined;
  /** What every refusal is built with: no stack when `refusalStacks` is false. */
  readonly #errorOptions: { readonly stack: false } | undefined;
  #nextSyncAt = 0;
  #syncing = false;
  #state: BreakerState = closedState();
  #generation = 0;
  /** Trips since the breaker last closed. */
  #tripCount = 0;
  /** The last open duration (a backoff `openMs` grows from it). */
  #lastOpenMs = 0;
  #admitted = 0;
  #successes = 0;
  #failures = 0;
  #ignored = 0;
  #refused = 0;
  #stale = 0;
  /** The last probe's measured duration (ride-through's estimate), or -1. */
  #probeMs = -1;
  #head: Waiter | undefined;
  #tail: Waiter | undefined;
  #waiting = 0;
  /** The one timer ride-through holds while calls wait, and the instant it is armed for. */
  #timer: Timer | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  readonly #attrs: BreakerAttributes;
  #onStateChange: EventHub<StateChangeEvent> | undefined;
  #onError: EventHub<BreakerErrorEvent> | undefined;
  /** Left its registry: no longer counted in the state gauge. */
  #detached = false;

  constructor(options?: CircuitBreakerOptions) {
    const resolved = isResolved(options)
      ? (options as unknown as ResolvedBreakerOptions)
      : checkBreakerOptions('circuitBreaker()', options, BREAKER_KEYS, false);
    const initial = resolved.initialState;
    super(resolved.clock);
    this.name = resolved.name;
    this.trips = resolved.trips;
    this.openMs = resolved.openMs;
    this.maxProbes = resolved.maxProbes;
    this.successThreshold = resolved.successThreshold;
    this.probeTimeoutMs = resolved.probeTimeoutMs;
    this.rideThrough = resolved.rideThrough;
    this.#failureOn = resolved.failureOn;
    this.#random = resolved.random;
    this.#timed = resolved.timed;
    this.#store = resolved.store;
    this.#storeKey = resolved.storeKey;
    this.#syncMs = resolved.syncMs;
    this.#errorOptions = resolved.refusalStacks ? undefined : NO_STACK;
    this.#attrs = breakerAttributes(this.name ?? 'unnamed');
    if (this.name !== undefined) countState(this.name, undefined, 'closed');
    if (initial !== undefined) this.#restore(initial);
  }

  /** The current state. Reading it applies a due open → half-open change. */
  get state(): CircuitState {
    const state = this.#state;
    if (state.kind === 'open' && this.clock.now() >= state.until)
      this.#transition(halfOpenState(), 'open-elapsed');
    return this.#state.kind;
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
   * the policy acts on; HTTP plugins and streams use it directly. Pass the
   * caller's `signal` so that a failure after it aborted counts neither way.
   */
  tryAcquire(options?: CircuitAcquireOptions): CircuitPermit | undefined {
    const probeId = this.#admit();
    if (probeId < 0) {
      this.#refuse();
      return undefined;
    }
    return this.#permit({ generation: this.#generation, probeId, seq: this.#admitted }, options);
  }

  /**
   * Asks to make one call, waiting for the next probe's verdict when the
   * breaker refuses and ride-through lets this caller wait (see
   * `rideThrough`): a permit, or a rejection with the open-circuit error
   * (`BrokenCircuitError`, with `retryAfterMs`). When `signal` aborts, it
   * rejects with the signal's reason, unchanged. Without ride-through it is
   * `tryAcquire()` as a promise.
   */
  acquire(options?: CircuitWaitOptions): Promise<CircuitPermit> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const probeId = this.#admit();
    if (probeId >= 0)
      return Promise.resolve(
        this.#permit({ generation: this.#generation, probeId, seq: this.#admitted }, options),
      );
    const waiting = this.#wait(signal, options?.deadline);
    if (waiting === undefined) {
      this.#refuse();
      return Promise.reject(this.refusal());
    }
    return waiting.then((admission) => this.#permit(admission, options));
  }

  #permit(admission: Admission, source: SignalSource | undefined): Permit {
    const { generation, probeId, seq } = admission;
    return new Permit(
      this,
      generation,
      probeId,
      this.#timed || probeId !== 0 ? this.clock.now() : 0,
      seq,
      source,
    );
  }

  /**
   * Admits a call in the current generation: the probe id (half-open), 0 for
   * a call while closed, or -1 when refused (the caller counts the refusal, or
   * waits). Every admission goes through here or through `#drain()`, and
   * numbers the call: `#admitted` after it is the call's admission number.
   */
  #admit(): number {
    const state = this.#state;
    let probeId = 0;
    if (state.kind !== 'closed') {
      // Open and due: half-open now, and this call may be its first probe.
      if (state.kind === 'open') {
        if (this.clock.now() < state.until) return -1;
        this.#transition(halfOpenState(), 'open-elapsed');
      }
      const current = this.#state;
      // Calls that wait go first: a newcomer does not take a probe slot from them.
      if (current.kind !== 'half-open' || this.#waiting > 0) return -1;
      probeId = admitProbe(current, this.maxProbes, this.probeTimeoutMs, this.clock.now());
      if (probeId === 0) return -1;
    } else if (this.#syncMs !== undefined) this.#syncLazily(this.#syncMs);
    this.#admitted++;
    return probeId;
  }

  /**
   * The error a refused call gets now. Throws {@link CircuitClosedError} when the
   * breaker is closed: call it after `tryAcquire()` returned undefined.
   */
  refusal(): BrokenCircuitError {
    this.state; // applies a due open → half-open change
    return this.#refusalOf(this.#state);
  }

  #refusalOf(state: BreakerState): BrokenCircuitError {
    if (state.kind === 'closed') throw new CircuitClosedError(this.name);
    const now = this.clock.now();
    const retryAfterMs =
      state.kind === 'open'
        ? Math.max(0, state.until - now)
        : state.kind === 'half-open'
          ? probeRetryAfterMs(state, this.maxProbes, this.probeTimeoutMs, now)
          : undefined;
    return new BrokenCircuitError(state.kind, retryAfterMs, this.name, this.#errorOptions);
  }

  /**
   * Acquires a permit, runs `fn`, and reports through the permit: the same
   * admission and the same judgment as `tryAcquire()`. Around a bounded call
   * (a deadline or timeout inside the breaker) the permit itself is what the
   * call's race tells how it ended. Otherwise the permit is held as its fields
   * (generation, probe, start, the context's signal) rather than as an
   * object, so the happy path allocates one closure and one promise.
   */
  run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    const probeId = this.#admit();
    if (probeId >= 0) return this.#runAdmitted(fn, ctx, this.#generation, probeId, this.#admitted);
    const waiting = this.rideThrough === undefined ? undefined : this.#wait(ctx.signal, ctx.deadline);
    if (waiting === undefined) {
      this.#refuse();
      return Promise.reject(this.refusal());
    }
    return this.#runAfterWait(waiting, fn, ctx);
  }

  /**
   * `run()` after a ride-through wait. A method of its own because its handler
   * closes over `fn` and `ctx`: in `run()`, that closure would make `run()`
   * allocate its context at every call, an admitted one included.
   */
  #runAfterWait<T>(waiting: Promise<Admission>, fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    return waiting.then((admission) => {
      // The caller may have left between the hand-off and now: the call counts neither way.
      if (ctx.signal.aborted) {
        this._settle(admission.generation, admission.probeId, admission.seq, IGNORED, 0);
        throw ctx.signal.reason;
      }
      return this.#runAdmitted(fn, ctx, admission.generation, admission.probeId, admission.seq);
    });
  }

  #runAdmitted<T>(
    fn: Operation<T>,
    ctx: ExecutionContext,
    generation: number,
    probeId: number,
    seq: number,
  ): Promise<T> {
    const startedAt = this.#timed || probeId !== 0 ? this.clock.now() : 0;
    let result: T | PromiseLike<T>;
    try {
      result = fn(ctx);
    } catch (error) {
      this._report(generation, probeId, startedAt, seq, ctx, true, error, undefined);
      return Promise.reject(error);
    }
    const race = joinRace(result);
    if (race !== undefined) {
      race.observe(new Permit(this, generation, probeId, startedAt, seq, ctx));
      return result as Promise<T>;
    }
    return asPromise(result).then(
      (value: T): T => {
        this._report(generation, probeId, startedAt, seq, ctx, false, value, undefined);
        return value;
      },
      (error: unknown): never => {
        this._report(generation, probeId, startedAt, seq, ctx, true, error, undefined);
        throw error;
      },
    );
  }

  /**
   * Holds the breaker open by hand until the returned handle is disposed (with
   * several handles, until the last one is). Then it closes.
   */
  isolate(): Disposable {
    const handle = {};
    const current = this.#state;
    const state = current.kind === 'isolated' ? current : isolatedState(new Set());
    state.handles.add(handle);
    if (state !== current) this.#transition(state, 'isolate');
    return disposable(() => {
      // A handle from before a reset() (or from an isolation that ended) holds nothing.
      if (!state.handles.delete(handle) || state !== this.#state) return;
      if (state.handles.size === 0) this.#close('release');
    });
  }

  /** Closes the breaker and forgets its history, isolation included. */
  reset(): void {
    this.#close('reset');
  }

  stats(): BreakerStats {
    const kind = this.state;
    const state = this.#state;
    const now = this.clock.now();
    let probes = 0;
    if (state.kind === 'half-open') {
      expireProbes(state, this.probeTimeoutMs, now);
      probes = state.probes.size;
    }
    return {
      state: kind,
      generation: this.#generation,
      admitted: this.#admitted,
      successes: this.#successes,
      failures: this.#failures,
      ignored: this.#ignored,
      refused: this.#refused,
      probes,
      openRemainingMs: state.kind === 'open' ? Math.max(0, state.until - now) : 0,
      trips: this.#tripCount,
      staleFailures: this.#stale,
      waiting: this.#waiting,
    };
  }

  /** The state to save (with relative durations); pass it back as `initialState`. */
  toJSON(): BreakerSnapshot {
    this.state; // applies a due open → half-open change
    return snapshotOf(this.#state, this.#tripCount, this.clock.now());
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
    const trips = Math.max(this.#tripCount, snapshot.trips);
    // Isolated elsewhere: open here for this breaker's own open duration, then probe.
    const ms = adoptedOpenMs(snapshot, this.state, () => this.#openDurationMs(trips + 1));
    if (ms === undefined) return;
    this.#tripCount = trips;
    this.#openFor(ms, 'store', false);
  }

  /** Starts a background read of the fleet's view when the last one is `syncMs` old. */
  #syncLazily(syncMs: number): void {
    const now = this.clock.now();
    if (this.#syncing || now < this.#nextSyncAt) return;
    this.#nextSyncAt = now + syncMs;
    this.#syncing = true;
    void this.syncFromStore().finally(() => {
      this.#syncing = false;
    });
  }

  /** @internal Calls admitted and not yet reported (for registries: a busy breaker is not idle). */
  _inFlight(): number {
    return this.#admitted - this.#successes - this.#failures - this.#ignored;
  }

  #refuse(): void {
    this.#refused++;
    refusalsCounter.add(1, this.#attrs.refused[this.#state.kind]);
  }

  /**
   * @internal A permit's first report: the one place an outcome is judged,
   * for permits and the policy alike.
   */
  _report(
    generation: number,
    probeId: number,
    startedAt: number,
    seq: number,
    source: SignalSource | undefined,
    failed: boolean,
    result: unknown,
    durationMs: number | undefined,
  ): void {
    let verdict: Verdict;
    if (failed) {
      // The caller's own abort says nothing about the dependency. Our deadline firing does.
      const signal = source?.signal;
      if (signal?.aborted && !isBulwarkError(signal.reason, 'ERR_DEADLINE_EXCEEDED')) verdict = IGNORED;
      else verdict = this.#failureOn === undefined ? FAILURE : this.#judge({ ok: false, error: result });
    } else {
      verdict = this.#failureOn === undefined ? SUCCESS : this.#judge({ ok: true, value: result });
    }
    const duration = durationMs ?? (this.#timed || probeId !== 0 ? this.clock.now() - startedAt : 0);
    this._settle(generation, probeId, seq, verdict, duration);
  }

  #judge(outcome: CallOutcome): Verdict {
    try {
      return this.#failureOn!(outcome) ? FAILURE : SUCCESS;
    } catch (error) {
      this.#reportError(new CallbackError('failureOn', error));
      return FAILURE;
    }
  }

  /** @internal Records a settled call. */
  _settle(generation: number, probeId: number, seq: number, verdict: Verdict, durationMs: number): void {
    if (metricsRegistered()) callsCounter.add(1, this.#attrs.outcome[verdict]);
    if (verdict === SUCCESS) this.#successes++;
    else if (verdict === FAILURE) this.#failures++;
    else this.#ignored++;
    if (generation !== this.#generation) return; // admitted before a transition: it changes nothing
    const state = this.#state;
    if (probeId !== 0) this.#settleProbe(state as HalfOpenState, probeId, verdict, durationMs);
    else if (state.kind === 'closed' && verdict !== IGNORED) this.#record(state, seq, verdict, durationMs);
  }

  /**
   * A probe's verdict. Kept out of `_settle()`, as {@link #record} is, so that
   * `_settle()` stays small enough for the optimizer to inline into the
   * handlers that call it.
   */
  #settleProbe(half: HalfOpenState, probeId: number, verdict: Verdict, durationMs: number): void {
    // A probe past probeTimeoutMs already gave its permit back, and another
    // call has probed since: its late failure or abort changes nothing. Its
    // late success still counts, since the dependency did answer; otherwise a
    // dependency slower than probeTimeoutMs could never close the breaker.
    if (!half.probes.delete(probeId) && verdict !== SUCCESS) return;
    if (verdict !== IGNORED) this.#probeMs = durationMs;
    if (verdict === FAILURE) this.#open('probe-failure');
    else if (verdict === SUCCESS && ++half.successes >= this.successThreshold) this.#close('probe-success');
    // A slot is free and the breaker is still half-open: a waiting call takes it.
    else if (this.#waiting > 0) this.#drain();
  }

  /** A success or failure of a call admitted while closed, in the current generation: the trips count it. */
  #record(state: ClosedState, seq: number, verdict: Verdict, durationMs: number): void {
    if (verdict === SUCCESS) {
      if (seq > state.lastSuccessSeq) state.lastSuccessSeq = seq;
    } else if (seq < state.lastSuccessSeq) {
      // Admitted before a call that has since succeeded: it tells of the
      // dependency as it was, not as it is, and does not count toward a trip.
      this.#stale++;
      return;
    }
    const trips = state.trips ?? this.#createTrips(state);
    const failure = verdict === FAILURE;
    let open = false;
    for (let i = 0; i < trips.length; i++) {
      const t = trips[i]!;
      t.record(failure, durationMs);
      // Judged after every call, a success included: with [F, F, F, ok] and
      // minimumCalls 4 the window's rate first becomes known at the success.
      if (t.shouldOpen()) open = true;
    }
    if (open) this.#open('trip');
  }

  /**
   * The trips' running state, made at the first recorded call. Its own
   * method: the closure it maps with would make {@link #record} allocate
   * a context at every call.
   */
  #createTrips(state: ClosedState): TripState[] {
    state.trips = this.trips.map((t) => t.create(this.clock));
    return state.trips;
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
      return checkedDelayMs(openMs, trip, this.#lastOpenMs, this.#random, 'the openMs backoff');
    } catch (error) {
      this.#reportError(new CallbackError('openMs backoff', error));
      return this.#lastOpenMs > 0 ? this.#lastOpenMs : CIRCUIT_BREAKER_DEFAULTS.openMs;
    }
  }

  #openFor(ms: number, reason: TransitionReason, trip: boolean): void {
    this.#lastOpenMs = ms;
    this.#transition(openState(this.clock.now() + ms), reason);
    if (trip) recordOpened(this.name, reason, ms);
  }

  #close(reason: TransitionReason): void {
    this.#tripCount = 0;
    this.#transition(closedState(), reason);
  }

  #transition(to: BreakerState, reason: TransitionReason): void {
    const from = this.#state.kind;
    this.#state = to;
    this.#generation++;
    const name = this.name;
    recordTransition(name, !this.#detached, from, to.kind);
    if (this.#onStateChange?.listening) this.#onStateChange.emit({ from, to: to.kind, reason, name });
    if (this.#store !== undefined && reason !== 'store') this.#publish();
    if (this.#waiting > 0) this.#settleWaiters();
  }

  // ---- ride-through ----------------------------------------------------------

  /** The expected duration of one call: the last probe's, else the configured estimate. */
  #estimateMs(): number {
    return this.#probeMs >= 0 ? this.#probeMs : this.rideThrough!.probeEstimateMs;
  }

  /**
   * Queues a refused call to wait for the next probe's verdict, or returns
   * undefined when it may not wait (ride-through off, isolated, too many
   * waiters, or a deadline that leaves no room for the probe and the call);
   * the caller then counts the refusal.
   */
  #wait(signal: AbortSignal | undefined, deadline: number | undefined): Promise<Admission> | undefined {
    const ride = this.rideThrough;
    if (ride === undefined) return undefined;
    const state = this.#state;
    const now = this.clock.now();
    let outcome: RideThroughOutcome | undefined;
    let verdictAt = now;
    const estimate = this.#estimateMs();
    if (state.kind === 'open') verdictAt = state.until + estimate;
    else if (state.kind === 'half-open') {
      // The oldest probe in flight, or (a free slot kept for earlier waiters) a probe that starts now.
      let start = now;
      for (const admitted of state.probes.values()) {
        start = admitted;
        break;
      }
      verdictAt = Math.max(now, start + estimate);
    } else outcome = 'no-time'; // isolated: nobody knows when it ends
    // It must be able to make its own call after the verdict, before its deadline.
    const giveUpAt = Math.min(now + ride.maxWaitMs, (deadline ?? Number.POSITIVE_INFINITY) - estimate);
    if (outcome === undefined && this.#waiting >= ride.maxWaiters) outcome = 'full';
    else if (outcome === undefined && giveUpAt < verdictAt) outcome = 'no-time';
    if (outcome !== undefined) {
      recordRideThrough(this.#attrs, outcome);
      return undefined;
    }
    return new Promise<Admission>((resolve, reject) => {
      const waiter = new Waiter(resolve, reject, giveUpAt, signal);
      if (this.#tail === undefined) this.#head = waiter;
      else {
        this.#tail.next = waiter;
        waiter.prev = this.#tail;
      }
      this.#tail = waiter;
      this.#waiting++;
      if (signal !== undefined) {
        waiter.onAbort = () => {
          this.#unlink(waiter);
          recordRideThrough(this.#attrs, 'aborted');
          reject(signal.reason);
          this.#arm();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#arm();
    });
  }

  /** Takes a waiter out of the queue and drops its listener. */
  #unlink(waiter: Waiter): void {
    if (waiter.prev !== undefined) waiter.prev.next = waiter.next;
    else this.#head = waiter.next;
    if (waiter.next !== undefined) waiter.next.prev = waiter.prev;
    else this.#tail = waiter.prev;
    waiter.prev = undefined;
    waiter.next = undefined;
    this.#waiting--;
    if (waiter.onAbort !== undefined) waiter.signal!.removeEventListener('abort', waiter.onAbort);
    waiter.onAbort = undefined;
  }

  /** Hands the first waiter an admission. */
  #admitWaiter(waiter: Waiter, probeId: number): void {
    this.#unlink(waiter);
    this.#admitted++;
    recordRideThrough(this.#attrs, 'admitted');
    waiter.resolve({ generation: this.#generation, probeId, seq: this.#admitted });
  }

  /** Refuses a waiter with the open-circuit error of `state`. */
  #refuseWaiter(waiter: Waiter, outcome: RideThroughOutcome, error: BrokenCircuitError): void {
    this.#unlink(waiter);
    this.#refuse();
    recordRideThrough(this.#attrs, outcome);
    waiter.reject(error);
  }

  /** The state changed while calls wait: admit them, hand them probe slots, or refuse them. */
  #settleWaiters(): void {
    const state = this.#state;
    if (state.kind === 'closed') {
      // Closed admits every call: the waiters (at most maxWaiters) go first, all at once.
      while (this.#head !== undefined) this.#admitWaiter(this.#head, 0);
    } else if (state.kind === 'half-open') {
      this.#drain();
    } else {
      // Opened again (the probe failed) or isolated: the verdict is in, and it
      // is no. A waiter whose deadline outlives the next probe as well keeps
      // waiting for that one (no call of its own reaches the dependency until
      // a probe succeeds); the others are refused now, as is everyone when
      // isolated (nobody knows when that ends).
      const error = this.#refusalOf(state);
      const verdictAt = state.kind === 'open' ? state.until + this.#estimateMs() : Number.POSITIVE_INFINITY;
      for (let w = this.#head; w !== undefined; ) {
        const next = w.next;
        if (w.giveUpAt < verdictAt) this.#refuseWaiter(w, 'refused', error);
        w = next;
      }
    }
    this.#arm();
  }

  /**
   * Half-open: waiters take the free probe slots, the one with the most time
   * left first. A probe's verdict should be about the dependency: the oldest
   * waiter may have only its own call's estimate left, and its deadline ending
   * during the probe would reopen the breaker on the caller's clock, not the
   * dependency's answer.
   */
  #drain(): void {
    const state = this.#state;
    if (state.kind !== 'half-open') return;
    while (this.#head !== undefined) {
      const probeId = admitProbe(state, this.maxProbes, this.probeTimeoutMs, this.clock.now());
      if (probeId === 0) break;
      let chosen = this.#head;
      for (let w = chosen.next; w !== undefined; w = w.next) if (w.giveUpAt > chosen.giveUpAt) chosen = w;
      this.#admitWaiter(chosen, probeId);
    }
    this.#arm();
  }

  /**
   * Keeps the one timer armed for the next instant something is due while
   * calls wait: the open state ending, a hung probe giving its slot back, or a
   * waiter giving up. No waiter, no timer.
   */
  #arm(): void {
    let at = Number.POSITIVE_INFINITY;
    if (this.#waiting > 0) {
      const state = this.#state;
      if (state.kind === 'open') at = state.until;
      else if (state.kind === 'half-open') {
        for (const admitted of state.probes.values()) {
          at = admitted + this.probeTimeoutMs;
          break;
        }
      }
      for (let w = this.#head; w !== undefined; w = w.next) if (w.giveUpAt < at) at = w.giveUpAt;
    }
    if (at === this.#timerAt) return;
    this.#timer?.clear();
    this.#timer = undefined;
    this.#timerAt = at;
    if (at === Number.POSITIVE_INFINITY) return;
    this.#timer = this.clock.setTimeout(() => this.#onTimer(), at - this.clock.now());
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = this.clock.now();
    // Waiters out of time leave, refused as the breaker refuses now.
    let error: BrokenCircuitError | undefined;
    for (let w = this.#head; w !== undefined; ) {
      const next = w.next;
      if (w.giveUpAt <= now) {
        error ??= this.#refusalOf(this.#state);
        this.#refuseWaiter(w, 'timed-out', error);
      }
      w = next;
    }
    // Applies a due open → half-open change (whose transition hands out the probe slots).
    if (this.state === 'half-open') this.#drain();
    this.#arm();
  }

  #publish(): void {
    try {
      // The snapshot as of now, without applying a due transition (we are in one).
      const snapshot = snapshotOf(this.#state, this.#tripCount, this.clock.now());
      const pending = this.#store!.publish(this.#storeKey!, snapshot);
      if (pending !== undefined) pending.catch((error: unknown) => this.#reportError(error));
    } catch (error) {
      this.#reportError(error);
    }
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
        this.#transition(halfOpenState(), 'store');
        break;
      case 'isolated':
        // A saved isolation holds until reset(): nobody holds its handle any more.
        this.#transition(isolatedState(new Set([{}])), 'store');
        break;
      default:
        break;
    }
  }

  /** @internal For registries: forget this breaker in the state gauge. */
  _detach(): void {
    if (this.name !== undefined && !this.#detached) countState(this.name, this.#state.kind, undefined);
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
