import { randomUUID } from 'node:crypto';
import { type Clock, systemClock, type Timer } from '@bulwark/clock';
import { CallbackError, type Disposable, EventHub, isBulwarkError, OptionsChecker } from '@bulwark/core';
import { LeaseLostError, LeaseSettledError, StoreUnavailableError } from './errors.ts';
import { defaultFingerprint } from './fingerprint.ts';
import { assertIdempotencyKey } from './header.ts';
import { encodeScope } from './scope.ts';
import type { BeginOutcome, IdempotencyStore, LeaseObservation } from './store.ts';
import { completionsCounter, requestsCounter, telemetry } from './telemetry.ts';

/** Turns stored results into text and back. */
export interface ResultCodec {
  encode(value: unknown): string;
  decode(text: string): unknown;
}

/**
 * The default codec: JSON inside a one-element array, and `[]` for `undefined`,
 * so a void result is stored explicitly and replays as `undefined`.
 */
export const jsonResultCodec: ResultCodec = Object.freeze({
  encode(value: unknown): string {
    return value === undefined ? '[]' : JSON.stringify([value]);
  },
  decode(text: string): unknown {
    const array = JSON.parse(text) as unknown[];
    return array.length === 0 ? undefined : array[0];
  },
});

/** Defaults of {@link IdempotencyOptions}. */
export const IDEMPOTENCY_DEFAULTS = Object.freeze({
  /** 24 hours. */
  ttlMs: 86_400_000,
  /** 60 seconds. */
  leaseMs: 60_000,
});

/**
 * The shortest time an IN_PROGRESS record is kept on the store without a
 * renewal (24 hours; longer when `ttlMs` is). It is garbage collection on the
 * store's clock, never what frees a key: a store clock step smaller than it
 * changes nothing.
 */
export const IN_PROGRESS_RETAIN_MIN_MS = 86_400_000;

/** How many in-progress keys a guard remembers having seen (oldest forgotten first). */
const MAX_OBSERVED_KEYS = 10_000;

/** What a guard saw of another owner's lease, and when (on its own clock, after the reply). */
interface Sighting extends LeaseObservation {
  readonly seenAt: number;
}

/** Options for {@link idempotency}. */
export interface IdempotencyOptions<T = unknown> {
  /** Where records live: `memoryStore()`, `redisIdempotencyStore()`, `postgresIdempotencyStore()`. */
  readonly store: IdempotencyStore;
  /** How long a completed result is kept for replay, in milliseconds. Default: 86,400,000 (24 h). */
  readonly ttlMs?: number | undefined;
  /**
   * The lease interval, in milliseconds. While `fn` runs, the owner renews its
   * record every `leaseMs / 3`. A contender takes the key over only after it
   * has seen the record unrenewed (same owner, same renewal count) for a whole
   * `leaseMs` on its own monotonic clock: the owner crashed, or was paused or
   * cut off from the store for longer than that. A live owner keeps the key
   * however long `fn` takes. Default: 60,000.
   */
  readonly leaseMs?: number | undefined;
  /** Turns a request into its fingerprint. Default: {@link defaultFingerprint}. */
  readonly fingerprint?: ((input: unknown) => string) | undefined;
  /**
   * Whether a result is kept for replay. When false the key is released, so the
   * next request with it executes again. Default: every result is kept.
   */
  readonly storeOutcome?: ((value: T) => boolean) | undefined;
  /** How results are stored. Default: {@link jsonResultCodec}. */
  readonly codec?: ResultCodec | undefined;
  /**
   * The longest one store command may take, in milliseconds. Past it, `begin`
   * fails closed with `StoreUnavailableError` (`fn` does not run), `complete`
   * reports `'store-error'`, and a release gives up (renewals stop, so a retry
   * takes the key over after `leaseMs`). It guards against a store that hangs rather than failing, such as a
   * silently dropped connection, whatever the client's own timeouts. A begin
   * that timed out here may still have taken the key on the server; nobody
   * renews it, so a retry takes it over after `leaseMs`. Default: no limit (the client's timeouts apply).
   */
  readonly storeTimeoutMs?: number | undefined;
  /**
   * The monotonic clock for renewals, for judging other owners' leases,
   * `storeTimeoutMs` and the durations reported in events. Default: systemClock.
   */
  readonly clock?: Clock | undefined;
}

/** What became of an executed request's record. */
export type CompletionResult =
  /** The result is stored for replay. */
  | 'stored'
  /** `storeOutcome` declined the result; the key was released. */
  | 'released'
  /** Another owner took the key over (this one stopped renewing for a lease interval): the result was not stored. */
  | 'lease-lost'
  /** The store failed while completing: the record stays IN_PROGRESS, unrenewed, until a retry takes it over. */
  | 'store-error';

/** The result of {@link IdempotencyGuard.run}. */
export type IdempotentResult<T> =
  | { readonly kind: 'executed'; readonly value: T; readonly completion: CompletionResult }
  | { readonly kind: 'replayed'; readonly value: T }
  | { readonly kind: 'in-progress'; readonly retryAfterMs: number }
  | { readonly kind: 'mismatch' };

/** The key, held by this process while the operation runs. */
export interface IdempotencyLease<T> {
  /** The key as stored (with its scope, when one was given). */
  readonly key: string;
  /** The owner token (a fencing token). */
  readonly token: string;
  /**
   * Aborts with a `LeaseLostError` when this owner can no longer count on the
   * key: a renewal found it taken over, or no renewal reached the store for a
   * whole lease interval. Pass it to the work so that it stops; the lease is
   * still settled with `complete` or `release` as usual.
   */
  readonly signal: AbortSignal;
  /**
   * Stores `value` for replay (or releases the key, when `storeOutcome` declines
   * it). A store failure resolves `'store-error'`; it rejects only with a
   * `CallbackError` from `storeOutcome` or the codec (after releasing the key),
   * or with `LeaseSettledError` (`ERR_LEASE_SETTLED`) when the lease was already
   * completed or released.
   */
  complete(value: T): Promise<CompletionResult>;
  /** Releases the key if this lease still owns it, so a retry can execute. Never rejects. */
  release(): Promise<boolean>;
}

/** The result of {@link IdempotencyGuard.begin}. */
export type BeginDecision<T> =
  | { readonly kind: 'acquired'; readonly lease: IdempotencyLease<T> }
  | { readonly kind: 'replayed'; readonly value: T }
  | { readonly kind: 'in-progress'; readonly retryAfterMs: number }
  | { readonly kind: 'mismatch' };

/** Options for {@link IdempotencyGuard.run} and {@link IdempotencyGuard.begin}. */
export interface GuardCallOptions {
  /**
   * A namespace for the key, such as the authenticated principal: the same key
   * under two scopes names two records. The record is stored under the
   * URL-encoded scope, a colon, and the key. Use scopes consistently for one store.
   */
  readonly scope?: string | undefined;
}

/** The key a record is stored under: `key`, or the URL-encoded scope, a colon and `key`. */
function storeKey(key: string, options: GuardCallOptions | undefined): string {
  const scope = options?.scope;
  return scope === undefined ? key : `${encodeScope(scope)}:${key}`;
}

/** The outcome attribute of `bulwark.idempotency.requests`. */
export type RequestOutcome = 'executed' | 'replayed' | 'in-progress' | 'mismatch' | 'store-error';

/** Payload of {@link IdempotencyGuard.onOutcome}. */
export interface OutcomeEvent {
  readonly key: string;
  readonly outcome: RequestOutcome;
  /** Milliseconds from the start of `begin` to the decision, on the guard's clock. */
  readonly durationMs: number;
}

/** Payload of {@link IdempotencyGuard.onCompletion}. */
export interface CompletionEvent {
  readonly key: string;
  readonly result: CompletionResult;
  readonly error: unknown;
}

const OUTCOME_ATTRS: Readonly<Record<RequestOutcome, { outcome: RequestOutcome }>> = {
  executed: { outcome: 'executed' },
  replayed: { outcome: 'replayed' },
  'in-progress': { outcome: 'in-progress' },
  mismatch: { outcome: 'mismatch' },
  'store-error': { outcome: 'store-error' },
};
const COMPLETION_ATTRS: Readonly<Record<CompletionResult, { result: CompletionResult }>> = {
  stored: { result: 'stored' },
  released: { result: 'released' },
  'lease-lost': { result: 'lease-lost' },
  'store-error': { result: 'store-error' },
};

/**
 * Runs an operation once per idempotency key and replays its stored result to
 * every later request with the same key. Built by {@link idempotency}.
 */
export class IdempotencyGuard<T = unknown> {
  readonly store: IdempotencyStore;
  readonly ttlMs: number;
  readonly leaseMs: number;
  /** See {@link IdempotencyOptions.storeTimeoutMs}; undefined when there is no limit. */
  readonly storeTimeoutMs: number | undefined;
  readonly clock: Clock;
  readonly #fingerprint: (input: unknown) => string;
  readonly #storeOutcome: ((value: T) => boolean) | undefined;
  readonly #codec: ResultCodec;
  readonly #outcomes = new EventHub<OutcomeEvent>('idempotency.onOutcome');
  readonly #completions = new EventHub<CompletionEvent>('idempotency.onCompletion');
  /** How long IN_PROGRESS records are kept on the store without a renewal (garbage collection). */
  readonly #retainMs: number;
  /** Other owners' leases this guard has seen, by stored key, oldest sighting first. */
  readonly #sightings = new Map<string, Sighting>();
  /**
   * When a store command of this guard last failed, on its clock. An owner may
   * have failed to renew in the same outage, so sightings older than it cannot
   * prove the owner gone.
   */
  #lastStoreFailureAt = Number.NEGATIVE_INFINITY;

  constructor(options: IdempotencyOptions<T>) {
    const check = new OptionsChecker('idempotency()');
    const store = options?.store as Partial<IdempotencyStore> | undefined;
    check.expect(
      typeof store?.begin === 'function' &&
        typeof store.renew === 'function' &&
        typeof store.complete === 'function' &&
        typeof store.release === 'function',
      'store',
      options?.store,
      'an IdempotencyStore (begin, renew, complete, release)',
    );
    check.number('ttlMs', options?.ttlMs, { integer: true, min: 1 });
    check.number('leaseMs', options?.leaseMs, { integer: true, min: 1 });
    check.number('storeTimeoutMs', options?.storeTimeoutMs, { above: 0 });
    check.func('fingerprint', options?.fingerprint);
    check.func('storeOutcome', options?.storeOutcome);
    check.expect(
      options?.codec === undefined ||
        (typeof options.codec.encode === 'function' && typeof options.codec.decode === 'function'),
      'codec',
      options?.codec,
      'an object with encode and decode functions',
    );
    check.done();
    this.store = options.store;
    this.ttlMs = options.ttlMs ?? IDEMPOTENCY_DEFAULTS.ttlMs;
    this.leaseMs = options.leaseMs ?? IDEMPOTENCY_DEFAULTS.leaseMs;
    this.storeTimeoutMs = options.storeTimeoutMs;
    this.clock = options.clock ?? systemClock;
    this.#fingerprint = options.fingerprint ?? defaultFingerprint;
    this.#storeOutcome = options.storeOutcome;
    this.#codec = options.codec ?? jsonResultCodec;
    this.#retainMs = Math.max(this.ttlMs, IN_PROGRESS_RETAIN_MIN_MS);
  }

  /** Listens to every request's outcome. */
  onOutcome(listener: (event: OutcomeEvent) => void): Disposable {
    return this.#outcomes.subscribe(listener);
  }

  /** Listens to what became of each executed request's record. */
  onCompletion(listener: (event: CompletionEvent) => void): Disposable {
    return this.#completions.subscribe(listener);
  }

  /** The fingerprint of `input`, through the `fingerprint` option. */
  fingerprintOf(input: unknown): string {
    try {
      return this.#fingerprint(input);
    } catch (error) {
      if (isBulwarkError(error, 'ERR_UNFINGERPRINTABLE')) throw error;
      throw new CallbackError('fingerprint', error);
    }
  }

  /**
   * Runs `fn` once for `key`:
   * - `executed`: `fn` ran and its result was stored (see `completion`);
   * - `replayed`: a stored result, `fn` did not run;
   * - `in-progress`: another owner holds a live lease on the key;
   * - `mismatch`: the key was used with a different request.
   *
   * When `fn` throws, the key is released (if this call still owns it) and the
   * error is rethrown, so a retry can execute. While `fn` runs the lease is
   * renewed; `fn` receives the lease's `signal`, which aborts when the lease can
   * no longer be counted on (see {@link IdempotencyLease.signal}).
   *
   * @param request the request, turned into a fingerprint by the `fingerprint` option.
   * @throws StoreUnavailableError when the store cannot be reached; `fn` did not run.
   * @throws InvalidIdempotencyKeyError when `key` is empty, too long or not printable ASCII.
   */
  async run(
    key: string,
    request: unknown,
    fn: (signal: AbortSignal) => T | PromiseLike<T>,
    options?: GuardCallOptions,
  ): Promise<IdempotentResult<T>> {
    const decision = await this.begin(key, this.fingerprintOf(request), options);
    if (decision.kind !== 'acquired') return decision;
    const lease = decision.lease;
    let value: T;
    try {
      value = await fn(lease.signal);
    } catch (error) {
      await lease.release();
      throw error;
    }
    const completion = await lease.complete(value);
    return { kind: 'executed', value, completion };
  }

  /**
   * The first half of {@link run}, for callers that cannot hand over a function
   * (an HTTP framework that writes the response itself). When the result is
   * `acquired`, call `lease.complete(value)` or `lease.release()` exactly once:
   * the lease renews itself until then (or until it becomes unreachable).
   *
   * @param fingerprint the request's fingerprint, already computed.
   * @throws StoreUnavailableError when the store cannot be reached.
   */
  async begin(key: string, fingerprint: string, options?: GuardCallOptions): Promise<BeginDecision<T>> {
    assertIdempotencyKey(key);
    const scoped = storeKey(key, options);
    const started = this.#outcomes.listening ? this.clock.now() : 0;
    const token = randomUUID();
    const sentAt = this.clock.now();
    const takeover = this.#takeoverCandidate(scoped, sentAt);
    let decision: BeginDecision<T>;
    try {
      const outcome = await this.#bounded(
        'begin',
        this.store.begin({ key: scoped, fingerprint, token, retainMs: this.#retainMs, takeover }),
      );
      switch (outcome.status) {
        case 'acquired':
          this.#sightings.delete(scoped);
          decision = { kind: 'acquired', lease: new Lease(this, scoped, token, sentAt) };
          break;
        case 'completed':
          this.#sightings.delete(scoped);
          decision = { kind: 'replayed', value: this.#decode(outcome.payload) };
          break;
        case 'in-progress':
          decision = { kind: 'in-progress', retryAfterMs: this.#sighted(scoped, outcome) };
          break;
        case 'mismatch':
          decision = { kind: 'mismatch' };
          break;
        default:
          throw new TypeError(
            `unknown begin status ${JSON.stringify((outcome as { status: unknown }).status)}`,
          );
      }
    } catch (error) {
      if (isBulwarkError(error, 'ERR_CALLBACK_FAILED')) throw error;
      this._storeFailed();
      this.#report(key, 'store-error', started);
      throw isBulwarkError(error, 'ERR_STORE_UNAVAILABLE')
        ? error
        : new StoreUnavailableError('begin', error);
    }
    this.#report(key, decision.kind === 'acquired' ? 'executed' : decision.kind, started);
    return decision;
  }

  /**
   * The lease to ask the store to take over: the one last seen on `key`, when
   * it was seen unchanged at least `leaseMs` before `now` on this guard's clock
   * and no store command failed since.
   */
  #takeoverCandidate(key: string, now: number): LeaseObservation | undefined {
    const seen = this.#sightings.get(key);
    if (seen === undefined) return undefined;
    if (now - Math.max(seen.seenAt, this.#lastStoreFailureAt) < this.leaseMs) return undefined;
    return { owner: seen.owner, renewals: seen.renewals };
  }

  /**
   * Records that `key` is held by `outcome`'s owner at its renewal count, and
   * returns how long until a retry could take it over if that owner has stopped.
   */
  #sighted(key: string, outcome: Extract<BeginOutcome, { status: 'in-progress' }>): number {
    const { owner, renewals } = outcome;
    if (typeof owner !== 'string' || typeof renewals !== 'number' || !Number.isFinite(renewals)) {
      throw new TypeError(
        `the store reported an in-progress record without an owner and renewal count: ${JSON.stringify(outcome)}`,
      );
    }
    const now = this.clock.now();
    let seen = this.#sightings.get(key);
    if (seen === undefined || seen.owner !== owner || seen.renewals !== renewals) {
      seen = { owner, renewals, seenAt: now };
      this.#sightings.delete(key);
      this.#sightings.set(key, seen);
      if (this.#sightings.size > MAX_OBSERVED_KEYS) {
        this.#sightings.delete(this.#sightings.keys().next().value!);
      }
    }
    return Math.max(0, this.leaseMs - (now - Math.max(seen.seenAt, this.#lastStoreFailureAt)));
  }

  /** @internal Notes a failed store command: sightings from before it prove nothing. */
  _storeFailed(): void {
    this.#lastStoreFailureAt = this.clock.now();
  }

  /**
   * @internal Renews `token`'s record: true when renewed, false when another
   * owner has it; rejects when the store fails or does not answer in time.
   */
  async _renew(key: string, token: string): Promise<boolean> {
    try {
      return await this.#bounded('renew', this.store.renew(key, token, this.#retainMs));
    } catch (error) {
      this._storeFailed();
      throw error;
    }
  }

  #decode(payload: string): T {
    try {
      return this.#codec.decode(payload) as T;
    } catch (error) {
      throw new CallbackError('codec.decode', error);
    }
  }

  #report(key: string, outcome: RequestOutcome, started: number): void {
    requestsCounter.add(1, OUTCOME_ATTRS[outcome]);
    telemetry.spanEvent('bulwark.idempotency.request', () => ({ outcome }));
    if (this.#outcomes.listening) {
      this.#outcomes.emit({ key, outcome, durationMs: this.clock.now() - started });
    }
  }

  /** @internal `lost`: a renewal already found the key taken over. */
  async _complete(key: string, token: string, value: T, lost: boolean): Promise<CompletionResult> {
    let payload: string | undefined;
    try {
      payload = this.#storeOutcome === undefined || this.#keep(value) ? this.#encode(value) : undefined;
    } catch (error) {
      if (!lost) await this._release(key, token);
      throw error;
    }
    let result: CompletionResult;
    let failure: unknown;
    try {
      if (lost) {
        // The token can never own the record again: nothing to write.
        result = 'lease-lost';
      } else if (payload === undefined) {
        await this.#bounded('release', this.store.release(key, token));
        result = 'released';
      } else {
        result = (await this.#bounded('complete', this.store.complete(key, token, payload, this.ttlMs)))
          ? 'stored'
          : 'lease-lost';
      }
    } catch (error) {
      failure = error;
      result = 'store-error';
      this._storeFailed();
    }
    completionsCounter.add(1, COMPLETION_ATTRS[result]);
    if (this.#completions.listening) this.#completions.emit({ key, result, error: failure });
    return result;
  }

  /** @internal */
  async _release(key: string, token: string): Promise<boolean> {
    try {
      return await this.#bounded('release', this.store.release(key, token));
    } catch (error) {
      // A contender takes the unrenewed record over; the caller's own error matters more.
      this._storeFailed();
      if (this.#completions.listening) this.#completions.emit({ key, result: 'store-error', error });
      return false;
    }
  }

  /** `work`, or a rejection once `storeTimeoutMs` has passed without an answer. */
  #bounded<R>(command: string, work: Promise<R>): Promise<R> {
    const limit = this.storeTimeoutMs;
    if (limit === undefined) return work;
    const pending = Promise.resolve(work); // tolerates a store that answers synchronously
    return new Promise<R>((resolve, reject) => {
      const timer = this.clock.setTimeout(
        () => reject(new Error(`the store did not answer ${command} within ${limit} ms (storeTimeoutMs)`)),
        limit,
        { unref: true },
      );
      pending.then(
        (value) => {
          timer.clear();
          resolve(value);
        },
        (error: unknown) => {
          timer.clear();
          reject(error);
        },
      );
    });
  }

  #keep(value: T): boolean {
    try {
      return this.#storeOutcome!(value);
    } catch (error) {
      throw new CallbackError('storeOutcome', error);
    }
  }

  #encode(value: T): string {
    try {
      return this.#codec.encode(value);
    } catch (error) {
      throw new CallbackError('codec.encode', error);
    }
  }
}

/**
 * Keeps one lease renewed while it is held: a timer on the guard's clock that
 * renews every `leaseMs / 3` (never two renewals at once) and aborts the lease's
 * signal once the lease cannot be counted on. It holds the lease only weakly,
 * so a lease dropped without being settled stops renewing and can be taken over.
 */
/** See Renewal's tick. */
const TIMER_TOLERANCE_MS = 1e-6;

interface RenewalHost {
  readonly clock: Clock;
  readonly leaseMs: number;
  _renew(key: string, token: string): Promise<boolean>;
}

class Renewal {
  readonly #guard: RenewalHost;
  readonly #key: string;
  readonly #token: string;
  readonly #lease: WeakRef<object>;
  readonly #everyMs: number;
  #controller: AbortController | undefined;
  #timer: Timer | undefined;
  /** When the last renewal that reached the store was sent (or the begin that took the key). */
  #confirmedAt: number;
  /** When the last renewal was sent. */
  #sentAt: number;
  #inFlight = false;
  #stopped = false;
  /** A renewal found the key owned by another token. */
  lost = false;

  constructor(guard: RenewalHost, lease: object, key: string, token: string, takenAt: number) {
    this.#guard = guard;
    this.#lease = new WeakRef(lease);
    this.#key = key;
    this.#token = token;
    this.#everyMs = Math.max(1, Math.floor(guard.leaseMs / 3));
    this.#confirmedAt = takenAt;
    this.#sentAt = takenAt;
    this.#schedule();
  }

  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }

  /** Stops renewing (the lease settled, or was lost). Idempotent. */
  stop(): void {
    this.#stopped = true;
    this.#timer?.clear();
    this.#timer = undefined;
  }

  #abort(reason: LeaseLostError): void {
    this.#controller ??= new AbortController();
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
  }

  #schedule(): void {
    if (this.#stopped) return;
    const clock = this.#guard.clock;
    // The next renewal (once none is in flight), or the moment the lease stops
    // being confirmed, even while a renewal hangs.
    let due = this.#inFlight ? Number.POSITIVE_INFINITY : this.#sentAt + this.#everyMs;
    if (this.#controller?.signal.aborted !== true)
      due = Math.min(due, this.#confirmedAt + this.#guard.leaseMs);
    this.#timer?.clear();
    this.#timer = undefined;
    if (due === Number.POSITIVE_INFINITY) return; // the renewal in flight schedules again when it settles
    this.#timer = clock.setTimeout(() => this.#tick(), due - clock.now(), { unref: true });
  }

  #tick(): void {
    this.#timer = undefined;
    if (this.#stopped) return;
    if (this.#lease.deref() === undefined) {
      this.stop();
      return;
    }
    // A timer fires at its due instant, which floating-point arithmetic may put
    // a hair before the sum it was computed from: compare with a tolerance.
    const now = this.#guard.clock.now() + TIMER_TOLERANCE_MS;
    if (now - this.#confirmedAt >= this.#guard.leaseMs) {
      this.#abort(new LeaseLostError(this.#key, 'unconfirmed'));
    }
    if (!this.#inFlight && now - this.#sentAt >= this.#everyMs) this.#renew(this.#guard.clock.now());
    this.#schedule();
  }

  #renew(sentAt: number): void {
    this.#inFlight = true;
    this.#sentAt = sentAt;
    this.#guard._renew(this.#key, this.#token).then(
      (owned) => {
        this.#inFlight = false;
        if (this.#stopped) return;
        if (owned) {
          this.#confirmedAt = Math.max(this.#confirmedAt, sentAt);
          this.#schedule();
        } else {
          this.lost = true;
          this.stop();
          this.#abort(new LeaseLostError(this.#key, 'taken-over'));
        }
      },
      (error: unknown) => {
        // The store failed: keep trying at the next tick. The lease still holds
        // until another owner takes it; the tick aborts the signal once no
        // renewal has been confirmed for a lease interval.
        this.#inFlight = false;
        if (this.#stopped) return;
        if (this.#guard.clock.now() - this.#confirmedAt >= this.#guard.leaseMs) {
          this.#abort(new LeaseLostError(this.#key, 'unconfirmed', error));
        }
        this.#schedule();
      },
    );
  }
}

class Lease<T> implements IdempotencyLease<T> {
  readonly #guard: IdempotencyGuard<T>;
  readonly key: string;
  readonly token: string;
  readonly #renewal: Renewal;
  /** How the lease settled; undefined while it is held. */
  #settledBy: 'complete' | 'release' | undefined;

  constructor(guard: IdempotencyGuard<T>, key: string, token: string, takenAt: number) {
    this.#guard = guard;
    this.key = key;
    this.token = token;
    this.#renewal = new Renewal(guard, this, key, token, takenAt);
  }

  get signal(): AbortSignal {
    return this.#renewal.signal;
  }

  complete(value: T): Promise<CompletionResult> {
    if (this.#settledBy !== undefined)
      return Promise.reject(new LeaseSettledError(this.key, this.#settledBy));
    this.#settledBy = 'complete';
    this.#renewal.stop();
    return this.#guard._complete(this.key, this.token, value, this.#renewal.lost);
  }

  release(): Promise<boolean> {
    if (this.#settledBy !== undefined) return Promise.resolve(false);
    this.#settledBy = 'release';
    this.#renewal.stop();
    if (this.#renewal.lost) return Promise.resolve(false);
    return this.#guard._release(this.key, this.token);
  }
}

/**
 * An idempotency guard: `guard.run(key, request, fn)` runs `fn` once per key
 * and replays its result afterwards. Fails closed when the store is unreachable.
 */
export function idempotency<T = unknown>(options: IdempotencyOptions<T>): IdempotencyGuard<T> {
  return new IdempotencyGuard<T>(options);
}
