import type { Clock, Timer } from '@bulwark/clock';
import {
  type Disposable,
  type ExecuteOptions,
  type ExecutionContext,
  isBulwarkError,
  type Listener,
  type Operation,
} from '@bulwark/core';
import {
  asPromise,
  BasePolicy,
  EventHub,
  joinRace,
  metricsRegistered,
  type OptionHints,
  OptionsChecker,
  optionKeys,
  rootContext,
  type SettleObserver,
  type UpDownLevel,
} from '@bulwark/core/authoring';
import { BulkheadRejectedError, type BulkheadRejectReason } from './errors.ts';
import { FixedLimit, type LimitSource } from './limits.ts';
import { activeCounter, queuedCounter, rejectionsCounter } from './telemetry.ts';

const BULKHEAD_KEYS = optionKeys<BulkheadOptions>({
  maxConcurrent: true,
  maxQueue: true,
  queueTimeoutMs: true,
  name: true,
  clock: true,
  refusalStacks: true,
});

const BULKHEAD_OPTION_HINTS: OptionHints = {
  capacity: "use maxConcurrent (opossum's capacity)",
  limit: "use maxConcurrent (cockatiel's bulkhead(limit, queue))",
  concurrency: 'use maxConcurrent',
  PermitLimit: "use maxConcurrent (Polly's PermitLimit)",
  maxConcurrentCalls: "use maxConcurrent (resilience4j's maxConcurrentCalls)",
  queue: "use maxQueue (cockatiel's bulkhead(limit, queue))",
  QueueLimit: "use maxQueue (Polly's QueueLimit)",
  maxWaitDuration: "use queueTimeoutMs (resilience4j's maxWaitDuration)",
  timeout: 'use queueTimeoutMs for the wait in the queue, or timeout(ms) from @bulwark/deadline for the call',
};

/** Options for {@link bulkhead}. */
export interface BulkheadOptions {
  /** Calls allowed to run at once: an integer >= 1, or an adaptive limit from `adaptiveLimit()`. */
  readonly maxConcurrent: number | LimitSource;
  /** Calls allowed to wait for a slot, in FIFO order. Default: 0 (shed at once when full). */
  readonly maxQueue?: number | undefined;
  /** The longest a call may wait in the queue, in milliseconds. Default: no limit (the caller's signal and deadline still apply). */
  readonly queueTimeoutMs?: number | undefined;
  /** A name for telemetry and error messages. */
  readonly name?: string | undefined;
  /** The clock for queue timeouts and adaptive samples. Default: the system clock. */
  readonly clock?: Clock | undefined;
  /**
   * When false, a refused call's `BulkheadRejectedError` is built without a
   * stack trace (`stack` holds only the name and the message), about three
   * times cheaper: a full bulkhead sheds most under overload. Its code,
   * reason and message are the same. Default: true.
   */
  readonly refusalStacks?: boolean | undefined;
}

/** The defaults of {@link bulkhead}. */
export const BULKHEAD_DEFAULTS = Object.freeze({
  maxQueue: 0,
  queueTimeoutMs: Number.POSITIVE_INFINITY,
  refusalStacks: true,
});

/** Bulkhead options checked and resolved by {@link checkBulkheadOptions}: every default filled in, frozen. */
export interface ResolvedBulkheadOptions {
  readonly maxConcurrent: number | LimitSource;
  readonly maxQueue: number;
  readonly queueTimeoutMs: number;
  readonly name: string | undefined;
  readonly clock: Clock | undefined;
  readonly refusalStacks: boolean;
}

/** The resolved options objects made here: the constructor takes them as they are. */
const RESOLVED = new WeakSet<object>();

/**
 * Checks bulkhead options and resolves them into a frozen object that
 * {@link BulkheadPolicy}'s constructor takes without checking again, so that
 * something holding many bulkheads (one per origin, per tenant) checks its
 * options once, up front. Throws one `InvalidOptionsError` (a `RangeError`)
 * named after `component` that lists every violation with its value, those
 * `more` records too (the holder's own options). `known`: the keys allowed in
 * `options` (default: the bulkhead's own).
 *
 * A `LimitSource` in `maxConcurrent` is kept as it is: every bulkhead built
 * from the resolved object shares it.
 *
 * @throws InvalidOptionsError listing every invalid option.
 */
export function checkBulkheadOptions(
  component: string,
  options: BulkheadOptions,
  known: ReadonlySet<string> = BULKHEAD_KEYS,
  more?: (check: OptionsChecker) => void,
): ResolvedBulkheadOptions {
  const check = new OptionsChecker(component);
  check.knownKeys(options, known, BULKHEAD_OPTION_HINTS);
  more?.(check);
  const max = options?.maxConcurrent;
  if (typeof max === 'number' || max === undefined) {
    check.number('maxConcurrent', max, { integer: true, min: 1, required: true });
  } else {
    check.expect(
      typeof max === 'object' &&
        max !== null &&
        typeof max.onSample === 'function' &&
        typeof max.limit === 'number',
      'maxConcurrent',
      max,
      'an integer >= 1 or a limit source from adaptiveLimit()',
    );
  }
  check.number('maxQueue', options?.maxQueue, { integer: true, min: 0 });
  check.number('queueTimeoutMs', options?.queueTimeoutMs, { min: 0, infinite: true });
  check.clock('clock', options?.clock, true);
  check.boolean('refusalStacks', options?.refusalStacks);
  check.done();
  const resolved: ResolvedBulkheadOptions = Object.freeze({
    maxConcurrent: max!,
    maxQueue: options.maxQueue ?? BULKHEAD_DEFAULTS.maxQueue,
    queueTimeoutMs: options.queueTimeoutMs ?? BULKHEAD_DEFAULTS.queueTimeoutMs,
    name: options.name,
    clock: options.clock,
    refusalStacks: options.refusalStacks ?? BULKHEAD_DEFAULTS.refusalStacks,
  });
  RESOLVED.add(resolved);
  return resolved;
}

/** Options for `acquire`. */
export interface AcquireOptions {
  /** Leaves the queue at once when it aborts, rejecting with its reason. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * One slot of a bulkhead. Release it exactly once when the call is done; with
 * an adaptive limit, say how it went so the limit can learn: `success()`,
 * `failure(error?)`, `dropped()` (a timeout or shed: a sign of overload), or
 * `release()` (no sample). Any later call is a no-op and emits `onWarning`.
 *
 * Given the error, `failure(error)` judges it as the policy judges a call it
 * runs: a `DeadlineExceededError` or a `BulkheadRejectedError` from further
 * down is a drop, and a failure after the signal given to `acquire()` aborted
 * (the caller gave up) is released without a sample.
 */
export interface BulkheadPermit {
  success(): void;
  failure(error?: unknown): void;
  dropped(): void;
  release(): void;
}

/** Payload of `onReject`. */
export interface BulkheadRejectEvent {
  readonly reason: BulkheadRejectReason;
  readonly name: string | undefined;
}

/** Payload of `onWarning`. */
export interface BulkheadWarningEvent {
  readonly message: string;
  readonly name: string | undefined;
}

/** What `stats()` returns. */
export interface BulkheadStats {
  readonly limit: number;
  readonly active: number;
  readonly queued: number;
  readonly admitted: number;
  readonly rejected: number;
  readonly queueTimeouts: number;
}

type Attrs = Readonly<Record<string, string>>;

const SUCCESS = 0;
const FAILURE = 1;
const DROPPED = 2;
const NONE = 3;

/** Where a permit reads the caller's signal from, only when a failure needs it. */
interface SignalSource {
  readonly signal?: AbortSignal | undefined;
}

class Permit implements BulkheadPermit {
  readonly #bulkhead: BulkheadPolicy;
  readonly #startedAt: number;
  readonly #inflight: number;
  readonly #source: SignalSource | undefined;
  #released = false;
  constructor(
    bulkhead: BulkheadPolicy,
    startedAt: number,
    inflight: number,
    source: SignalSource | undefined,
  ) {
    this.#bulkhead = bulkhead;
    this.#startedAt = startedAt;
    this.#inflight = inflight;
    this.#source = source;
  }
  #done(kind: number): void {
    if (this.#released) {
      this.#bulkhead._warnTwice();
      return;
    }
    this.#released = true;
    this.#bulkhead._release(kind, this.#startedAt, this.#inflight);
  }
  success(): void {
    this.#done(SUCCESS);
  }
  failure(error?: unknown): void {
    this.#done(failureKind(error, this.#source));
  }
  dropped(): void {
    this.#done(DROPPED);
  }
  release(): void {
    this.#done(NONE);
  }
}

/**
 * How a failed call counts for an adaptive limit: a timeout or a shed further
 * down is a sign of overload (a drop); the caller's own abort says nothing (no
 * sample); anything else is a failure.
 */
function failureKind(error: unknown, source: SignalSource | undefined): number {
  if (isBulwarkError(error, 'ERR_DEADLINE_EXCEEDED') || isBulwarkError(error, 'ERR_BULKHEAD_FULL'))
    return DROPPED;
  return source?.signal?.aborted ? NONE : FAILURE;
}

/** A queued call: a node of the FIFO, removable in O(1) when its caller gives up. */
class Waiter {
  prev: Waiter | undefined;
  next: Waiter | undefined;
  readonly resolve: (permit: BulkheadPermit) => void;
  readonly reject: (error: unknown) => void;
  readonly enqueuedAt: number;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  timer: Timer | undefined;
  /** Where the permit it is handed reads the caller's signal from. */
  readonly source: SignalSource | undefined;
  constructor(
    resolve: (p: BulkheadPermit) => void,
    reject: (e: unknown) => void,
    enqueuedAt: number,
    source: SignalSource | undefined,
  ) {
    this.resolve = resolve;
    this.reject = reject;
    this.enqueuedAt = enqueuedAt;
    this.source = source;
  }
}

/**
 * A bulkhead: at most `limit` calls at once, up to `maxQueue` more waiting in
 * FIFO order. A queued call leaves the queue the moment its signal aborts, or
 * when `queueTimeoutMs` passes. No timer exists unless a call is queued with a
 * queue timeout.
 */
export class BulkheadPolicy extends BasePolicy {
  readonly name: string | undefined;
  readonly maxQueue: number;
  readonly queueTimeoutMs: number;
  /** Where the limit comes from (a fixed limit, or an adaptive one). */
  readonly limitSource: LimitSource;
  readonly #adaptive: boolean;
  /** What every refusal is built with: no stack when `refusalStacks` is false. */
  readonly #errorOptions: { readonly stack: false } | undefined;
  readonly #fixed: number;
  #active = 0;
  #queued = 0;
  #head: Waiter | undefined;
  #tail: Waiter | undefined;
  #admitted = 0;
  #rejected = 0;
  #queueTimeouts = 0;
  readonly #attrs: { readonly full: Attrs; readonly timeout: Attrs; readonly base: Attrs };
  readonly #activeLevel: UpDownLevel;
  readonly #queuedLevel: UpDownLevel;
  #onReject: EventHub<BulkheadRejectEvent> | undefined;
  #onWarning: EventHub<BulkheadWarningEvent> | undefined;

  /**
   * @param options Options, or the frozen object {@link checkBulkheadOptions}
   * resolved them into (taken as it is, without checking again).
   * @throws InvalidOptionsError listing every invalid option.
   */
  constructor(options: BulkheadOptions | ResolvedBulkheadOptions) {
    const resolved = RESOLVED.has(options)
      ? (options as ResolvedBulkheadOptions)
      : checkBulkheadOptions('bulkhead()', options);
    super(resolved.clock);
    const max = resolved.maxConcurrent;
    this.name = resolved.name;
    this.limitSource = typeof max === 'number' ? new FixedLimit(max) : max;
    this.#adaptive = this.limitSource.adaptive;
    this.#fixed = typeof max === 'number' ? max : 0;
    this.maxQueue = resolved.maxQueue;
    this.queueTimeoutMs = resolved.queueTimeoutMs;
    this.#errorOptions = resolved.refusalStacks ? undefined : { stack: false };
    const bulkheadName = this.name ?? 'unnamed';
    this.#attrs = Object.freeze({
      base: Object.freeze({ bulkhead: bulkheadName }),
      full: Object.freeze({ bulkhead: bulkheadName, reason: 'queue-full' }),
      timeout: Object.freeze({ bulkhead: bulkheadName, reason: 'queue-timeout' }),
    });
    this.#activeLevel = activeCounter.level(this.#attrs.base);
    this.#queuedLevel = queuedCounter.level(this.#attrs.base);
  }

  /** The current limit. */
  get limit(): number {
    return this.#adaptive ? this.limitSource.limit : this.#fixed;
  }
  /** Calls running now. */
  get active(): number {
    return this.#active;
  }
  /** Calls waiting now. */
  get queued(): number {
    return this.#queued;
  }

  stats(): BulkheadStats {
    return {
      limit: this.limit,
      active: this.#active,
      queued: this.#queued,
      admitted: this.#admitted,
      rejected: this.#rejected,
      queueTimeouts: this.#queueTimeouts,
    };
  }

  /** Called for every refused call. */
  onReject(listener: Listener<BulkheadRejectEvent>): Disposable {
    this.#onReject ??= new EventHub('bulkhead.onReject');
    return this.#onReject.subscribe(listener);
  }

  /** Called when a permit is released more than once (a bug in the caller; it frees nothing). */
  onWarning(listener: Listener<BulkheadWarningEvent>): Disposable {
    this.#onWarning ??= new EventHub('bulkhead.onWarning');
    return this.#onWarning.subscribe(listener);
  }

  /**
   * A slot now, or undefined when none is free (or others are already waiting
   * for one). Never queues. Server plugins use it to shed load.
   */
  tryAcquire(options?: AcquireOptions): BulkheadPermit | undefined {
    if (this.#active >= this.limit || this.#head !== undefined) return undefined;
    return this.#grant(options);
  }

  /**
   * A slot, waiting in the FIFO queue when none is free. Rejects with a
   * `BulkheadRejectedError` when the queue is full or the wait passes
   * `queueTimeoutMs`, and with the signal's reason, unchanged, when it aborts.
   */
  acquire(options?: AcquireOptions): Promise<BulkheadPermit> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#active < this.limit && this.#head === undefined) return Promise.resolve(this.#grant(options));
    if (this.#queued >= this.maxQueue) return Promise.reject(this.#reject('queue-full', 0));
    return new Promise<BulkheadPermit>((resolve, reject) => this.#enqueue(resolve, reject, options));
  }

  /**
   * Acquires a slot (`tryAcquire()`, else `acquire()` in the queue), runs `fn`,
   * and reports through the permit, which judges the outcome. With a fixed
   * limit and a free slot, the primitive's fast path: the slot is taken as
   * `tryAcquire()` takes it, and released by handlers made once per bulkhead
   * (a fixed limit learns nothing from the outcome), so no permit object and
   * no closure per call.
   */
  run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    if (this.#active < this.limit && this.#head === undefined) {
      if (this.#adaptive) return this.#runHolding(this.#grant(ctx), fn, ctx);
      this.#take();
      return this.#runInSlot(fn, ctx);
    }
    return this.#runQueued(fn, ctx);
  }

  /**
   * `execute()` as every policy has it, with the free slot of a fixed limit
   * taken here: the same `#runInSlot()` as `run()`, reached without the
   * dispatch every policy's `execute()` shares.
   */
  override execute<T>(fn: Operation<T>, options?: ExecuteOptions): Promise<T> {
    if (options === undefined && !this.#adaptive && this.#active < this.limit && this.#head === undefined) {
      this.#take();
      return this.#runInSlot(fn, rootContext(this.clock));
    }
    return super.execute(fn, options);
  }

  /**
   * `run()` without a free slot: `acquire()` in the queue, then the call. A
   * method of its own because its handler closes over `fn` and `ctx`: in
   * `run()`, that closure would make `run()` allocate its context at every
   * call, one with a free slot included.
   */
  #runQueued<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    return this.acquire(ctx).then((permit) => {
      // The caller may have left between the hand-off and now: give the slot back unused.
      if (ctx.signal.aborted) {
        permit.release();
        throw ctx.signal.reason;
      }
      return this.#runHolding(permit, fn, ctx);
    });
  }

  /** A fixed limit needs nothing per call to release a slot: the handlers are made once. */
  readonly #releaseOnValue = <T>(value: T): T => {
    this._release(NONE, 0, 0);
    return value;
  };
  readonly #releaseOnError = (error: unknown): never => {
    this._release(NONE, 0, 0);
    throw error;
  };
  /** The same, told by the call's own race when the call is a bounded one (no promise of ours). */
  readonly #slotObserver: SettleObserver<unknown> = {
    settled: () => this._release(NONE, 0, 0),
    failed: () => this._release(NONE, 0, 0),
  };

  /**
   * Runs `fn` in a slot `#take()` counted out, and releases it as the call
   * ends. Kept apart from {@link #runHolding}, whose handlers close over their
   * permit (a function with such closures allocates their context at every
   * call, whichever branch it then takes), so that this path allocates none.
   */
  #runInSlot<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    let result: T | PromiseLike<T>;
    try {
      result = fn(ctx);
    } catch (error) {
      this._release(NONE, 0, 0);
      return Promise.reject(error);
    }
    const race = joinRace(result);
    if (race !== undefined) {
      race.observe(this.#slotObserver as SettleObserver<T>);
      return result as Promise<T>;
    }
    return asPromise(result).then(this.#releaseOnValue, this.#releaseOnError);
  }

  /** Runs `fn` holding `permit`, and reports through it. */
  #runHolding<T>(permit: BulkheadPermit, fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    let result: T | PromiseLike<T>;
    try {
      result = fn(ctx);
    } catch (error) {
      permit.failure(error);
      return Promise.reject(error);
    }
    return asPromise(result).then(
      (value) => {
        permit.success();
        return value;
      },
      (error: unknown) => {
        permit.failure(error);
        throw error;
      },
    );
  }

  /** Takes a slot: the one place a slot is counted out. Returns the calls in flight, itself included. */
  #take(): number {
    const inflight = ++this.#active;
    this.#admitted++;
    if (metricsRegistered()) this.#activeLevel.set(this.#active);
    return inflight;
  }

  #grant(source: SignalSource | undefined): BulkheadPermit {
    const inflight = this.#take();
    return new Permit(this, this.#adaptive ? this.clock.now() : 0, inflight, source);
  }

  #enqueue(
    resolve: (p: BulkheadPermit) => void,
    reject: (e: unknown) => void,
    source: SignalSource | undefined,
  ): void {
    const signal = source?.signal;
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const waiter = new Waiter(resolve, reject, this.clock.now(), source);
    if (this.#tail === undefined) this.#head = waiter;
    else {
      this.#tail.next = waiter;
      waiter.prev = this.#tail;
    }
    this.#tail = waiter;
    this.#queued++;
    this.#queuedLevel.set(this.#queued);
    if (signal !== undefined) {
      const onAbort = (): void => {
        this.#unlink(waiter);
        reject(signal.reason);
      };
      waiter.signal = signal;
      waiter.onAbort = onAbort;
      signal.addEventListener('abort', onAbort, { once: true });
    }
    if (this.queueTimeoutMs !== Number.POSITIVE_INFINITY) {
      waiter.timer = this.clock.setTimeout(() => {
        waiter.timer = undefined;
        this.#unlink(waiter);
        this.#queueTimeouts++;
        reject(this.#reject('queue-timeout', this.clock.now() - waiter.enqueuedAt));
      }, this.queueTimeoutMs);
    }
  }

  /** Takes a waiter out of the queue and drops its listener and timer. */
  #unlink(waiter: Waiter): void {
    if (waiter.prev !== undefined) waiter.prev.next = waiter.next;
    else this.#head = waiter.next;
    if (waiter.next !== undefined) waiter.next.prev = waiter.prev;
    else this.#tail = waiter.prev;
    waiter.prev = undefined;
    waiter.next = undefined;
    this.#queued--;
    this.#queuedLevel.set(this.#queued);
    if (waiter.onAbort !== undefined) waiter.signal!.removeEventListener('abort', waiter.onAbort);
    waiter.timer?.clear();
  }

  #reject(reason: BulkheadRejectReason, waitedMs: number): BulkheadRejectedError {
    this.#rejected++;
    rejectionsCounter.add(1, reason === 'queue-full' ? this.#attrs.full : this.#attrs.timeout);
    if (this.#onReject?.listening) this.#onReject.emit({ reason, name: this.name });
    return new BulkheadRejectedError(
      reason,
      { limit: this.limit, maxQueue: this.maxQueue, waitedMs },
      this.name,
      this.#errorOptions,
    );
  }

  /** @internal A permit was released for the first time. */
  _release(kind: number, startedAt: number, inflight: number): void {
    this.#active--;
    if (metricsRegistered()) this.#activeLevel.set(this.#active);
    if (this.#adaptive && kind !== NONE) {
      this.limitSource.onSample({
        rttMs: this.clock.now() - startedAt,
        startedAt,
        inflight,
        dropped: kind === DROPPED,
      });
    }
    // Hand freed slots to waiters, oldest first.
    while (this.#head !== undefined && this.#active < this.limit) {
      const waiter = this.#head;
      this.#unlink(waiter);
      waiter.resolve(this.#grant(waiter.source));
    }
  }

  /** @internal A permit was released again. */
  _warnTwice(): void {
    const message = 'a bulkhead permit was released more than once; the extra release freed nothing';
    if (this.#onWarning?.listening) this.#onWarning.emit({ message, name: this.name });
    else process.emitWarning(message, { code: 'BULWARK_PERMIT_RELEASED_TWICE' });
  }
}

/**
 * A bulkhead policy. `maxConcurrent` is required (there is no safe default
 * for a dependency's capacity); `maxQueue` defaults to 0, so a full bulkhead
 * sheds at once.
 */
export function bulkhead(options: BulkheadOptions): BulkheadPolicy {
  return new BulkheadPolicy(options);
}
