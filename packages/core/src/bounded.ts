import type { Clock, Timer } from '@bulwark/clock';
import { deadlineTimers } from '@bulwark/clock/authoring';
import { DeadlineExceededError } from './errors.ts';
import { reportListenerError } from './events.ts';

/**
 * Options for {@link bounded}. The hooks (`expired`, `onEarly`, `onSettle`)
 * are called as methods of this object, so a policy can pass one object per
 * call that holds them as methods rather than a closure per hook.
 */
export interface BoundedOptions {
  /** The instant on `clock` the call must settle by. Default: none (Infinity is none too). */
  readonly at?: number | undefined;
  /** The monotonic clock `at` is an instant of. */
  readonly clock: Clock;
  /** The caller's signal: when it aborts, the call rejects with its reason, unchanged. */
  readonly signal?: AbortSignal | undefined;
  /**
   * The reason to reject with when `at` passes first. Default: a
   * `DeadlineExceededError` with `source: 'deadline'` and the budget the call
   * had. Called only when our deadline fired.
   */
  readonly expired?: (() => unknown) | undefined;
  /**
   * Called when the call ends early (the deadline passed or the signal
   * aborted before the work settled), with the reason the call rejects with
   * and whether it was our deadline: abort the work's own signal here.
   */
  readonly onEarly?: ((reason: unknown, ours: boolean) => void) | undefined;
  /** Whether the deadline's timer lets the process exit while it is pending. Default: false. */
  readonly unref?: boolean | undefined;
  /**
   * When true, the deadline gets a timer of its own on `clock` (`clock.setTimeout`),
   * cleared as soon as the call ends, instead of a slot in the clock's shared
   * `deadlineTimers()`. For rare, long bounds (a store's answer, a probe) where
   * no timer may stay armed once the call is over. Default: false.
   */
  readonly ownTimer?: boolean | undefined;
  /** Called once when the call ends, however it ends (after `onEarly`): release what the call held. */
  readonly onSettle?: (() => void) | undefined;
}

/**
 * Runs `work` bounded by a deadline instant and a signal: the returned promise
 * settles as `work` does, unless `at` passes first (it then rejects with a
 * `DeadlineExceededError`, or what `expired` gives) or `signal` aborts first
 * (it then rejects with the signal's reason, unchanged). The deadline's timer
 * and the signal's listener are removed as soon as the call ends, so a
 * long-lived signal does not collect listeners. A call that is already past
 * neither bound is not checked here: `at` in the past fires at the next timer
 * turn, and an aborted `signal` rejects at once without running `work`.
 *
 * This is the one race of a call against a deadline and a signal in bulwark:
 * the deadline and timeout policies, `execute()`'s caller signal, the
 * interop and failure-detector wrappers, the idempotency guard's store
 * calls and the PostgreSQL query wrapper's wait for a query's end all use it.
 */
export function bounded<T>(work: () => T | PromiseLike<T>, options: BoundedOptions): Promise<T> {
  const signal = options.signal;
  if (signal?.aborted) {
    options.onSettle?.();
    return Promise.reject(signal.reason);
  }
  const at = options.at;
  const timed = at !== undefined && at !== Number.POSITIVE_INFINITY;
  if (!timed && signal === undefined) return unbounded(work, options);
  const race = new Race<T>(options);
  const promise = new Promise<T>((resolve, reject) => race.run(work, resolve, reject, timed));
  if (!race.done) {
    race.promise = promise;
    lastRace = race as Race<unknown>;
  }
  return promise;
}

/**
 * Told how a call ended, as it ends: see {@link joinRace}. Called as
 * methods of the observer, so a policy can pass one object per call.
 */
export interface SettleObserver<T> {
  /** The call resolved with `value`. */
  settled(value: T): void;
  /** The call rejected with `error`. */
  failed(error: unknown): void;
}

/** The native `then`: what {@link asPromise} recognises a native promise by. */
const NATIVE_THEN = Promise.prototype.then;

/**
 * `result` as a native promise: itself when it is one, else
 * `Promise.resolve(result)` (a value, or a thenable adopted so that its
 * handlers run once). A policy that hangs `.then` handlers on the function's
 * result calls it. It recognises a native promise by its `then` being the
 * native one, which costs a property read, where `instanceof Promise` measured
 * about 3 ns more per call (docs/benchmarks.md). It never throws: a `then`
 * getter that throws gives a promise rejected with what it threw, as
 * `Promise.resolve()` does.
 */
export function asPromise<T>(result: T | PromiseLike<T>): Promise<T> {
  try {
    if ((result as { then?: unknown } | null | undefined)?.then === NATIVE_THEN) return result as Promise<T>;
  } catch {
    // A `then` getter that throws: Promise.resolve() reads it again and rejects with its error.
  }
  return Promise.resolve(result);
}

/** The race {@link bounded} returned last, while it is pending: what {@link joinRace} can join. */
let lastRace: Race<unknown> | undefined;

/** A pending bounded call that others can watch: see {@link joinRace}. */
export interface RaceJoin<T> {
  /** Has `observer` told how the call ends, as it ends. */
  observe(observer: SettleObserver<T>): void;
}

/**
 * The pending call behind `result` when `result` is the promise a
 * {@link bounded} call just returned (as a deadline or timeout policy
 * returns it), else undefined. A policy that only watches how a call ends (a
 * breaker, a bulkhead) can then have its observer called as that call
 * settles, before anyone awaiting it hears, and return `result` itself,
 * instead of a `.then` and a promise of its own per call. Observers are told
 * innermost first, as `.then` handlers would be.
 *
 * An observer should not throw: what it throws is reported as a process
 * warning (code `BULWARK_LISTENER_ERROR`), and the call settles as it would
 * have.
 */
export function joinRace<T>(result: T | PromiseLike<T>): RaceJoin<T> | undefined {
  const race = lastRace;
  if (race === undefined || race.promise !== result || race.done) return undefined;
  return race as RaceJoin<unknown> as RaceJoin<T>;
}

/**
 * One bounded call: its promise's settle functions, its timer, and the
 * listener on the caller's signal (the race itself, through `handleEvent`),
 * so that a call allocates one object rather than a closure per role.
 */
class Race<T> implements RaceJoin<T> {
  readonly options: BoundedOptions;
  resolve: ((value: T) => void) | undefined = undefined;
  reject: ((reason: unknown) => void) | undefined = undefined;
  timer: Timer | undefined = undefined;
  done = false;
  /** The promise this race settles (set once `bounded()` has it). */
  promise: Promise<T> | undefined = undefined;
  /** Who joined through {@link joinRace}, innermost first: one, or an array when several. */
  observers: SettleObserver<T> | Array<SettleObserver<T>> | undefined = undefined;
  /** When the call started, for the default expiry's budget (read only when needed). */
  start = 0;

  constructor(options: BoundedOptions) {
    this.options = options;
  }

  run(
    work: () => T | PromiseLike<T>,
    resolve: (value: T) => void,
    reject: (reason: unknown) => void,
    timed: boolean,
  ): void {
    this.resolve = resolve;
    this.reject = reject;
    const options = this.options;
    if (timed) {
      const clock = options.clock;
      if (options.expired === undefined) this.start = clock.now();
      const timerOptions = options.unref === true ? UNREF : undefined;
      this.timer =
        options.ownTimer === true
          ? clock.setTimeout(() => this.expire(), options.at! - clock.now(), timerOptions)
          : deadlineTimers(clock).schedule(options.at!, () => this.expire(), timerOptions);
    }
    options.signal?.addEventListener('abort', this);
    let result: T | PromiseLike<T>;
    try {
      result = work();
    } catch (error) {
      this.lose(error);
      return;
    }
    if (isThenable(result)) {
      result.then(
        (value) => this.win(value),
        (error: unknown) => this.lose(error),
      );
    } else this.win(result);
  }

  /** The caller's signal aborted (the race is its listener). */
  handleEvent(): void {
    this.early(this.options.signal!.reason, false);
  }

  /** Our deadline passed first. */
  expire(): void {
    const options = this.options;
    this.early(
      options.expired === undefined
        ? new DeadlineExceededError('deadline', options.at! - this.start)
        : options.expired(),
      true,
    );
  }

  early(reason: unknown, ours: boolean): void {
    if (this.done) return;
    this.options.onEarly?.(reason, ours);
    this.end();
    if (this.observers !== undefined) this.tell(false, reason);
    this.reject!(reason);
  }

  win(value: T): void {
    if (this.done) return;
    this.end();
    if (this.observers !== undefined) this.tell(true, value);
    this.resolve!(value);
  }

  lose(error: unknown): void {
    if (this.done) return;
    this.end();
    if (this.observers !== undefined) this.tell(false, error);
    this.reject!(error);
  }

  observe(observer: SettleObserver<T>): void {
    const observers = this.observers;
    if (observers === undefined) this.observers = observer;
    else if (Array.isArray(observers)) observers.push(observer);
    else this.observers = [observers, observer];
  }

  /** Tells the observers how the call ended, innermost first, as `.then` handlers would hear. */
  tell(ok: boolean, outcome: unknown): void {
    const observers = this.observers!;
    this.observers = undefined;
    if (!Array.isArray(observers)) notify(observers, ok, outcome);
    else for (const observer of observers) notify(observer, ok, outcome);
  }

  end(): void {
    this.done = true;
    if (lastRace === (this as Race<unknown>)) lastRace = undefined;
    const options = this.options;
    this.timer?.clear();
    options.signal?.removeEventListener('abort', this);
    options.onSettle?.();
  }
}

function notify<T>(observer: SettleObserver<T>, ok: boolean, outcome: unknown): void {
  try {
    if (ok) observer.settled(outcome as T);
    else observer.failed(outcome);
  } catch (error) {
    reportListenerError('race observer', error);
  }
}

const UNREF = Object.freeze({ unref: true });

function unbounded<T>(work: () => T | PromiseLike<T>, options: BoundedOptions): Promise<T> {
  let result: T | PromiseLike<T>;
  try {
    result = work();
  } catch (error) {
    options.onSettle?.();
    return Promise.reject(error);
  }
  if (options.onSettle === undefined) return Promise.resolve(result);
  if (!isThenable(result)) {
    options.onSettle();
    return Promise.resolve(result);
  }
  return Promise.resolve(result).then(
    (value) => {
      options.onSettle?.();
      return value;
    },
    (error: unknown) => {
      options.onSettle?.();
      throw error;
    },
  );
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as PromiseLike<T>).then === 'function'
  );
}
