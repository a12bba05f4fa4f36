import { randomUUID } from 'node:crypto';
import { type Clock, Ticker } from '@bulwark/clock';
import { type ExecutionContext, type LeaseLossReason, LeaseLostError, type Operation } from '@bulwark/core';
import {
  BasePolicy,
  bounded,
  OptionsChecker,
  optionKeys,
  ScopedContext,
  type UpDownLevel,
} from '@bulwark/core/authoring';
import { BulkheadRejectedError } from './errors.ts';
import { distributedRejectionsCounter, heldCounter, leaseLossesCounter } from './telemetry.ts';

/** A permit holder as a semaphore store reports it: its id and how often it has renewed. */
export interface SemaphoreHolder {
  readonly holder: string;
  readonly renewals: number;
}

/** What a {@link SemaphoreStore} answers to an acquire. */
export type SemaphoreAcquireResult =
  | { readonly acquired: true }
  | { readonly acquired: false; readonly holders: readonly SemaphoreHolder[] };

/**
 * Where a {@link distributedBulkhead} keeps its permits: a set of holders per
 * key, each with a renewal counter. Whether a holder is alive is judged by the
 * bulkhead from the counters, on its own monotonic clock; the store's clock
 * decides nothing.
 */
export interface SemaphoreStore {
  /**
   * Drops each of `suspects` whose renewal count is still the one given, then
   * adds `holder` (with count 0) when fewer than `limit` holders remain; else
   * answers with every holder and its count.
   */
  acquire(
    key: string,
    holder: string,
    limit: number,
    suspects: readonly SemaphoreHolder[],
  ): Promise<SemaphoreAcquireResult>;
  /** Adds 1 to `holder`'s count; false when it holds no permit any more (it was dropped). */
  renew(key: string, holder: string): Promise<boolean>;
  /** Removes `holder` (and only it); false when it held no permit. */
  release(key: string, holder: string): Promise<boolean>;
}

/** Options for {@link distributedBulkhead}. */
export interface DistributedBulkheadOptions {
  /** How many calls may run at once across every process sharing `key`. An integer >= 1. Required. */
  readonly maxConcurrent: number;
  /**
   * The lease interval, in milliseconds: a holder renews every `leaseMs / 3`;
   * a holder not seen renewing for `leaseMs` (on a contender's clock) loses its
   * permit, and a holder that could not renew for `leaseMs` (on its own clock)
   * is told through its signal. Default: 10,000.
   */
  readonly leaseMs?: number | undefined;
  /** Where permits are kept (`redisSemaphoreStore(client)` from `@bulwark/redis`). Required. */
  readonly store: SemaphoreStore;
  /** The key of this limit in the store. Default: `name`, else `"default"`. */
  readonly key?: string | undefined;
  /** A name for errors and telemetry. */
  readonly name?: string | undefined;
  /** The monotonic clock for leases and renewals. Default: `systemClock`. */
  readonly clock?: Clock | undefined;
  /**
   * When false, a refused call's `BulkheadRejectedError` is built without a
   * stack trace (`stack` holds only the name and the message). Default: true.
   */
  readonly refusalStacks?: boolean | undefined;
}

const DISTRIBUTED_BULKHEAD_KEYS = optionKeys<DistributedBulkheadOptions>({
  maxConcurrent: true,
  leaseMs: true,
  store: true,
  key: true,
  name: true,
  clock: true,
  refusalStacks: true,
});

/** The defaults of {@link DistributedBulkheadOptions}. */
export const DISTRIBUTED_BULKHEAD_DEFAULTS = Object.freeze({ leaseMs: 10_000, refusalStacks: true });

/**
 * A distributed permit was lost: another process dropped it after not seeing
 * it renewed for a lease interval (`taken-over`), or this process could not
 * renew it for a lease interval (`unconfirmed`). The work holding it should
 * stop: the slot may already be someone else's. A core `LeaseLostError`
 * (`ERR_LEASE_LOST`) whose `key` is the bulkhead's.
 */
export class PermitLostError extends LeaseLostError {
  constructor(key: string, reason: LeaseLossReason, cause?: unknown) {
    super(
      key,
      reason,
      cause,
      reason === 'taken-over'
        ? `the permit of distributed bulkhead "${key}" was taken away (it was not renewed for a lease interval); stop the work it guarded`
        : `the permit of distributed bulkhead "${key}" could not be renewed for a lease interval; another process may hold its slot`,
    );
  }
}

/** A permit of a {@link DistributedBulkheadPolicy}. */
export interface DistributedPermit extends AsyncDisposable {
  /** Aborts with a {@link PermitLostError} when the permit is lost while held. */
  readonly signal: AbortSignal;
  /** Gives the permit back (only this holder's; a lost permit frees nothing). Settles once. */
  release(): Promise<void>;
}

class Holder implements DistributedPermit {
  readonly #policy: DistributedBulkheadPolicy;
  readonly #store: SemaphoreStore;
  readonly #key: string;
  readonly id: string;
  readonly #controller = new AbortController();
  /** Renews the permit every `leaseMs / 3`, the first one `leaseMs / 3` after the acquire. */
  readonly #renewals: Ticker;
  /** When the last renewal that succeeded was sent (or the acquire, at first). */
  #confirmedAt: number;
  #released: Promise<void> | undefined;
  #counted = true;

  constructor(
    policy: DistributedBulkheadPolicy,
    store: SemaphoreStore,
    key: string,
    id: string,
    sentAt: number,
  ) {
    this.#policy = policy;
    this.#store = store;
    this.#key = key;
    this.id = id;
    this.#confirmedAt = sentAt;
    this.#renewals = new Ticker(() => void this.#renew(), {
      intervalMs: policy.leaseMs / 3,
      clock: policy.clock,
      tickOnStart: false,
    }).start();
    policy._held(1);
  }

  /** Stops counting this permit as held (once): it was lost or released. */
  #uncount(): void {
    if (this.#counted) {
      this.#counted = false;
      this.#policy._held(-1);
    }
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  async #renew(): Promise<void> {
    if (this.#released !== undefined) return;
    const clock = this.#policy.clock;
    const sentAt = clock.now();
    if (sentAt - this.#confirmedAt >= this.#policy.leaseMs) return this.#lose('unconfirmed');
    // The next renewal is due whatever this one does (the ticker does not wait
    // for it): a renewal that hangs cannot keep the holder from noticing that
    // it lost its permit.
    let held: boolean | undefined;
    try {
      held = await this.#store.renew(this.#key, this.id);
    } catch {
      // Unknown: try again; after leaseMs without a confirmation the permit counts as lost.
      if (clock.now() - this.#confirmedAt >= this.#policy.leaseMs) return this.#lose('unconfirmed');
    }
    if (this.#released !== undefined) return;
    if (held === false) return this.#lose('taken-over');
    if (held === true) this.#confirmedAt = Math.max(this.#confirmedAt, sentAt);
  }

  #lose(reason: LeaseLossReason): void {
    this.#renewals.stop();
    if (this.#controller.signal.aborted) return;
    this.#uncount();
    this.#policy._lost(reason);
    this.#controller.abort(new PermitLostError(this.#key, reason));
  }

  release(): Promise<void> {
    this.#released ??= (async () => {
      this.#renewals.stop();
      this.#uncount();
      try {
        await this.#store.release(this.#key, this.id);
      } catch {
        // Not given back: other processes drop it after a lease interval without renewals.
      }
    })();
    return this.#released;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}

/**
 * A concurrency limit shared by every process that uses the same store and
 * key. Permits are leases: a holder renews its permit every `leaseMs / 3`; a
 * process that dies stops renewing, and the next process that finds the limit
 * full and sees the same renewal count `leaseMs` later (on its own clock)
 * drops it. A paused holder whose permit was dropped is fenced: its renewal
 * and release touch only its own id, and its work learns it through the
 * permit's signal (and the call's `ctx.signal`). A store failure fails closed:
 * the call is refused with the store's error. The acquire of a call is bounded
 * by the caller's signal (and so by its deadline): a permit granted after the
 * caller has gone is released without running the call.
 */
export class DistributedBulkheadPolicy extends BasePolicy {
  readonly maxConcurrent: number;
  readonly leaseMs: number;
  readonly key: string;
  readonly name: string | undefined;
  readonly #store: SemaphoreStore;
  /** Holders seen when the limit was full: their count, and since when (on our clock) it has not changed. */
  readonly #seen = new Map<string, { renewals: number; since: number }>();
  readonly #attrs: Readonly<
    Record<'full' | 'store' | 'takenOver' | 'unconfirmed', Readonly<Record<string, string>>>
  >;
  readonly #heldLevel: UpDownLevel;
  /** What every refusal is built with: no stack when `refusalStacks` is false. */
  readonly #errorOptions: { readonly stack: false } | undefined;
  /** Permits this process holds now (not lost, not released). */
  #holding = 0;

  constructor(options: DistributedBulkheadOptions) {
    const check = new OptionsChecker('distributedBulkhead()');
    check.knownKeys(options, DISTRIBUTED_BULKHEAD_KEYS);
    check.number('maxConcurrent', options?.maxConcurrent, { integer: true, min: 1, required: true });
    check.number('leaseMs', options?.leaseMs, { above: 0 });
    const store = options?.store;
    check.expect(
      typeof store === 'object' &&
        store !== null &&
        typeof store.acquire === 'function' &&
        typeof store.renew === 'function' &&
        typeof store.release === 'function',
      'store',
      store,
      'a SemaphoreStore (acquire, renew, release)',
    );
    check.expect(
      options?.key === undefined || (typeof options.key === 'string' && options.key !== ''),
      'key',
      options?.key,
      'a non-empty string',
    );
    check.clock('clock', options?.clock, true);
    check.boolean('refusalStacks', options?.refusalStacks);
    check.done();
    super(options.clock);
    this.maxConcurrent = options.maxConcurrent;
    this.leaseMs = options.leaseMs ?? DISTRIBUTED_BULKHEAD_DEFAULTS.leaseMs;
    this.name = options.name;
    this.#errorOptions =
      (options.refusalStacks ?? DISTRIBUTED_BULKHEAD_DEFAULTS.refusalStacks) ? undefined : { stack: false };
    this.key = options.key ?? options.name ?? 'default';
    this.#store = store;
    const bulkhead = this.name ?? this.key;
    this.#attrs = Object.freeze({
      full: Object.freeze({ bulkhead, reason: 'full' }),
      store: Object.freeze({ bulkhead, reason: 'store-unavailable' }),
      takenOver: Object.freeze({ bulkhead, reason: 'taken-over' }),
      unconfirmed: Object.freeze({ bulkhead, reason: 'unconfirmed' }),
    });
    this.#heldLevel = heldCounter.level(Object.freeze({ bulkhead }));
  }

  /** Permits this process holds now: acquired, neither lost nor released. */
  get held(): number {
    return this.#holding;
  }

  /** @internal A permit of this policy started or stopped being held. */
  _held(delta: 1 | -1): void {
    this.#holding += delta;
    this.#heldLevel.set(this.#holding);
  }

  /** @internal A permit of this policy was lost while held. */
  _lost(reason: LeaseLossReason): void {
    leaseLossesCounter.add(1, reason === 'taken-over' ? this.#attrs.takenOver : this.#attrs.unconfirmed);
  }

  /**
   * Asks the store for a permit (one round trip): the permit, or undefined
   * when `maxConcurrent` live holders have it. Rejects with the store's error
   * when the store fails (fail closed), after sending a release for the
   * permit in case the store granted it before its answer was lost.
   */
  async tryAcquire(): Promise<DistributedPermit | undefined> {
    const now = this.clock.now();
    const suspects: { holder: string; renewals: number }[] = [];
    for (const [holder, seen] of this.#seen) {
      if (now - seen.since >= this.leaseMs) suspects.push({ holder, renewals: seen.renewals });
    }
    const id = randomUUID();
    let result: SemaphoreAcquireResult;
    try {
      result = await this.#store.acquire(this.key, id, this.maxConcurrent, suspects);
    } catch (error) {
      // The store may have granted the permit before its answer was lost (a
      // timeout, a reset connection): give it back, best effort, so that the
      // slot does not stay taken for a lease interval by nobody.
      this.#giveBack(id);
      distributedRejectionsCounter.add(1, this.#attrs.store);
      throw error;
    }
    const answeredAt = this.clock.now();
    if (result.acquired) {
      for (const s of suspects) this.#seen.delete(s.holder);
      return new Holder(this, this.#store, this.key, id, now);
    }
    const current = new Set<string>();
    for (const { holder, renewals } of result.holders) {
      current.add(holder);
      const seen = this.#seen.get(holder);
      if (seen === undefined || seen.renewals !== renewals)
        this.#seen.set(holder, { renewals, since: answeredAt });
    }
    for (const holder of this.#seen.keys()) if (!current.has(holder)) this.#seen.delete(holder);
    distributedRejectionsCounter.add(1, this.#attrs.full);
    return undefined;
  }

  #giveBack(id: string): void {
    const store = this.#store;
    Promise.resolve()
      .then(() => store.release(this.key, id))
      .catch(() => {
        // Unreachable still: contenders drop the permit after a lease interval.
      });
  }

  async run<T>(fn: Operation<T>, ctx: ExecutionContext): Promise<T> {
    const signal = ctx.signal;
    if (signal.aborted) throw signal.reason;
    // The acquire is bounded by the caller's signal (which its deadline aborts):
    // a caller that has gone gets its answer at once, and a permit granted
    // after that is given back without running `fn`.
    const acquiring = this.tryAcquire();
    let permit: DistributedPermit | undefined;
    try {
      permit = await bounded(() => acquiring, { clock: this.clock, signal });
    } catch (error) {
      acquiring.then(
        (late) => late?.release(),
        () => {},
      );
      throw error;
    }
    if (permit === undefined) {
      throw new BulkheadRejectedError(
        'queue-full',
        { limit: this.maxConcurrent, maxQueue: 0 },
        this.name,
        this.#errorOptions,
      );
    }
    const scoped = new ScopedContext(ctx, ctx.deadline);
    const onLost = () => scoped.abort(permit.signal.reason);
    permit.signal.addEventListener('abort', onLost, { once: true });
    try {
      return await fn(scoped);
    } finally {
      permit.signal.removeEventListener('abort', onLost);
      scoped.release();
      // The answer waits for the release (so a process that ends after its
      // last call has sent it), but never past the caller's deadline or
      // signal: a slow or hung store then finishes the release behind the
      // answer, or a lease later the permit expires. The outcome of `fn`
      // stands either way.
      const releasing = permit.release();
      const at = ctx.deadline;
      if (at === undefined && !signal.aborted) await releasing;
      else await bounded(() => releasing, { at, clock: this.clock, signal }).catch(() => {});
    }
  }
}

/**
 * A concurrency limit shared across processes through a {@link SemaphoreStore}.
 * Defaults: `leaseMs` 10 s; no queue (a full limit refuses at once with
 * `BulkheadRejectedError`).
 */
export function distributedBulkhead(options: DistributedBulkheadOptions): DistributedBulkheadPolicy {
  return new DistributedBulkheadPolicy(options);
}
