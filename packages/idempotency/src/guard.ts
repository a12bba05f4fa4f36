import { randomUUID } from 'node:crypto';
import { type Clock, defaultRandom, type Random, systemClock, type Timer } from '@bulwark/clock';
import { CallbackError, type Disposable, isBulwarkError, type LeaseLostError } from '@bulwark/core';
import { bounded, EventHub, KeyedRegistry, OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import { LeaseSettledError, leaseLost, storeUnavailable } from './errors.ts';
import { defaultFingerprint } from './fingerprint.ts';
import { assertIdempotencyKey } from './header.ts';
import { encodeScope } from './scope.ts';
import type { BeginOutcome, IdempotencyStore, LeaseObservation } from './store.ts';
import { completionRetriesCounter, completionsCounter, requestsCounter, telemetry } from './telemetry.ts';

const GUARD_KEYS = optionKeys<IdempotencyOptions<unknown>>({
  store: true,
  ttlMs: true,
  leaseMs: true,
  fingerprint: true,
  storeOutcome: true,
  codec: true,
  storeTimeoutMs: true,
  clock: true,
  maxPendingCompletions: true,
  random: true,
});

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
  /** Leases whose completion or release a guard retries in the background at once. */
  maxPendingCompletions: 10_000,
});

/** The first pause before a failed completion is tried again: 50 to 100 milliseconds, doubling after each failure. */
const COMPLETION_RETRY_BASE_MS = 50;
/** The longest pause between two tries of a failed completion (lower for short leases: `leaseMs / 6`). */
const COMPLETION_RETRY_MAX_MS = 5_000;

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
   * fails closed with `StoreUnavailableError` (`fn` does not run), and a
   * completion or release that timed out is tried again in the background
   * (`complete` reports `'store-error'` meanwhile). It guards against a store
   * that hangs rather than failing, such as a silently dropped connection,
   * whatever the client's own timeouts. A begin that timed out here may still
   * have taken the key on the server; nobody renews it, so a retry takes it
   * over after `leaseMs`. Default: no limit for `begin` (the client's timeouts
   * apply); renewals, completions and releases are never waited for longer
   * than `leaseMs / 3`.
   */
  readonly storeTimeoutMs?: number | undefined;
  /**
   * How many leases, at most, this guard keeps retrying the completion (or
   * release) of in the background after the store failed. Past it, the oldest
   * gives up: it stops renewing, its completion event reports `'gave-up'`, and
   * a retry takes the key over after `leaseMs` and executes again. 0 turns
   * background retries off. Default: 10,000.
   */
  readonly maxPendingCompletions?: number | undefined;
  /** The random source that jitters the pauses between background completion tries. Default: `Math.random`. */
  readonly random?: Random | undefined;
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
  /** `storeOutcome` declined the result (or `fn` threw); the key was released. */
  | 'released'
  /**
   * The token no longer owns the record, so nothing was written: another owner
   * took the key over (this one stopped renewing for a lease interval). After a
   * background retry it can also mean that an earlier try, whose answer was
   * lost, had already written it.
   */
  | 'lease-lost'
  /**
   * The store failed (or did not answer in time) while completing. Not final:
   * the guard keeps the lease renewed and tries again in the background until
   * the completion lands, the key is found taken over, or it gives up; a
   * second completion event reports which (`stored`, `released`, `lease-lost`
   * or `gave-up`). Meanwhile a retry with the key gets `in-progress`.
   */
  | 'store-error'
  /**
   * Only in a completion event after `store-error`: the guard stopped retrying
   * (more than `maxPendingCompletions` were pending, or the guard was
   * disposed) and stopped renewing, so a retry takes the key over after
   * `leaseMs` and executes again.
   */
  | 'gave-up';

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
   * it). A store failure resolves `'store-error'` after the first try, and the
   * guard goes on renewing the lease and retrying the write in the background
   * (see {@link CompletionResult}); it rejects only with a
   * `CallbackError` from `storeOutcome` or the codec (after releasing the key),
   * or with `LeaseSettledError` (`ERR_LEASE_SETTLED`) when the lease was already
   * completed or released.
   */
  complete(value: T): Promise<CompletionResult>;
  /**
   * Releases the key if this lease still owns it, so a retry can execute.
   * Resolves false when the store failed; the release is then retried in the
   * background while the lease is renewed. Never rejects.
   */
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

/**
 * Payload of {@link IdempotencyGuard.onCompletion}. A lease whose completion
 * (or release) failed on the store gets two events: `store-error`, then the
 * final result of the background retries, with `retried: true`.
 */
export interface CompletionEvent {
  readonly key: string;
  readonly result: CompletionResult;
  /** The store's error for `store-error`; for `gave-up`, the last one seen. Otherwise undefined. */
  readonly error: unknown;
  /** True for the final result of a completion or release retried in the background. */
  readonly retried?: boolean | undefined;
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
  'gave-up': { result: 'gave-up' },
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
  /** See {@link IdempotencyOptions.maxPendingCompletions}. */
  readonly maxPendingCompletions: number;
  readonly #random: Random;
  /** Leases whose completion or release is retried in the background, oldest first. */
  readonly #pending = new Set<Settlement>();
  #disposed = false;
  readonly #fingerprint: (input: unknown) => string;
  readonly #storeOutcome: ((value: T) => boolean) | undefined;
  readonly #codec: ResultCodec;
  readonly #outcomes = new EventHub<OutcomeEvent>('idempotency.onOutcome');
  readonly #completions = new EventHub<CompletionEvent>('idempotency.onCompletion');
  /** How long IN_PROGRESS records are kept on the store without a renewal (garbage collection). */
  readonly #retainMs: number;
  /** Other owners' leases this guard has seen, by stored key, oldest sighting first, at most MAX_OBSERVED_KEYS. */
  readonly #sightings = new KeyedRegistry<string, Sighting>({ maxKeys: MAX_OBSERVED_KEYS });
  /**
   * When a store command of this guard last failed, on its clock. An owner may
   * have failed to renew in the same outage, so sightings older than it cannot
   * prove the owner gone.
   */
  #lastStoreFailureAt = Number.NEGATIVE_INFINITY;

  constructor(options: IdempotencyOptions<T>) {
    const check = new OptionsChecker('idempotency()');
    check.knownKeys(options, GUARD_KEYS);
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
    check.number('maxPendingCompletions', options?.maxPendingCompletions, { integer: true, min: 0 });
    check.func('random', options?.random);
    check.func('fingerprint', options?.fingerprint);
    check.func('storeOutcome', options?.storeOutcome);
    check.expect(
      options?.codec === undefined ||
        (typeof options.codec.encode === 'function' && typeof options.codec.decode === 'function'),
      'codec',
      options?.codec,
      'an object with encode and decode functions',
    );
    check.clock('clock', options?.clock, true);
    check.done();
    this.store = options.store;
    this.ttlMs = options.ttlMs ?? IDEMPOTENCY_DEFAULTS.ttlMs;
    this.leaseMs = options.leaseMs ?? IDEMPOTENCY_DEFAULTS.leaseMs;
    this.storeTimeoutMs = options.storeTimeoutMs;
    this.clock = options.clock ?? systemClock;
    this.maxPendingCompletions = options.maxPendingCompletions ?? IDEMPOTENCY_DEFAULTS.maxPendingCompletions;
    this.#random = options.random ?? defaultRandom;
    this.#fingerprint = options.fingerprint ?? defaultFingerprint;
    this.#storeOutcome = options.storeOutcome;
    this.#codec = options.codec ?? jsonResultCodec;
    this.#retainMs = Math.max(this.ttlMs, IN_PROGRESS_RETAIN_MIN_MS);
  }

  /** Listens to every request's outcome. */
  onOutcome(listener: (event: OutcomeEvent) => void): Disposable {
    return this.#outcomes.subscribe(listener);
  }

  /**
   * Listens to what became of each executed request's record, and of the
   * background retries of a completion or release that the store failed.
   */
  onCompletion(listener: (event: CompletionEvent) => void): Disposable {
    return this.#completions.subscribe(listener);
  }

  /** How many leases' completions (or releases) are being retried in the background. */
  get pendingCompletions(): number {
    return this.#pending.size;
  }

  /**
   * Stops every background retry of a failed completion or release: those
   * leases stop renewing and report `gave-up`, so a retry takes their keys over
   * after `leaseMs`. A completion that fails afterwards is not retried. Leases
   * still held keep renewing until they are settled. Idempotent.
   */
  dispose(): void {
    this.#disposed = true;
    for (const settlement of [...this.#pending]) settlement.giveUp();
  }

  [Symbol.dispose](): void {
    this.dispose();
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
      // The write may have landed with no answer back (a reset connection, or
      // storeTimeoutMs): release this token's record, retried in the background
      // while the store is down. It is fenced by the token, so it frees only a
      // record this call took, one nobody runs for; without it, the key would
      // be held until a retry takes it over after a lease.
      new Lease<T>(this, scoped, token, sentAt)._releaseUnanswered();
      this.#report(key, 'store-error', started);
      throw isBulwarkError(error, 'ERR_STORE_UNAVAILABLE') ? error : storeUnavailable('begin', error);
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
    const seen = this.#sightings.peek(key);
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
    let seen = this.#sightings.peek(key);
    if (seen === undefined || seen.owner !== owner || seen.renewals !== renewals) {
      seen = { owner, renewals, seenAt: now };
      this.#sightings.set(key, seen);
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

  /** @internal The payload to store for `value`, or undefined when `storeOutcome` declines it. */
  _payloadOf(value: T): string | undefined {
    return this.#storeOutcome === undefined || this.#keep(value) ? this.#encode(value) : undefined;
  }

  /** @internal Counts and reports a completion's first (or only) result. */
  _completed(key: string, result: CompletionResult, error: unknown): void {
    completionsCounter.add(1, COMPLETION_ATTRS[result]);
    if (this.#completions.listening) this.#completions.emit({ key, result, error });
  }

  /** @internal Reports that a release failed on the store (it is retried in the background). */
  _releaseFailed(key: string, error: unknown): void {
    if (this.#completions.listening) this.#completions.emit({ key, result: 'store-error', error });
  }

  /** @internal Counts and reports the final result of a completion or release retried in the background. */
  _retried(key: string, result: CompletionResult, error: unknown): void {
    completionRetriesCounter.add(1, COMPLETION_ATTRS[result]);
    if (this.#completions.listening) this.#completions.emit({ key, result, error, retried: true });
  }

  /**
   * @internal One try at completing (`payload` given) or releasing the record:
   * true when written, false when `token` no longer owns it; rejects when the
   * store fails or does not answer within `storeTimeoutMs` (at most `leaseMs / 3`).
   */
  async _settle(key: string, token: string, payload: string | undefined): Promise<boolean> {
    const limit = Math.min(this.storeTimeoutMs ?? Number.POSITIVE_INFINITY, renewalInterval(this.leaseMs));
    try {
      return payload === undefined
        ? await this.#bounded('release', this.store.release(key, token), limit)
        : await this.#bounded('complete', this.store.complete(key, token, payload, this.ttlMs), limit);
    } catch (error) {
      this._storeFailed();
      throw error;
    }
  }

  /**
   * @internal Takes `settlement` on for background retries; false when the
   * guard takes none (disposed, or `maxPendingCompletions` is 0). Past the cap,
   * the oldest pending one gives up.
   */
  _adopt(settlement: Settlement): boolean {
    if (this.#disposed || this.maxPendingCompletions === 0) return false;
    this.#pending.add(settlement);
    if (this.#pending.size > this.maxPendingCompletions) this.#pending.values().next().value!.giveUp();
    return true;
  }

  /** @internal */
  _forget(settlement: Settlement): void {
    this.#pending.delete(settlement);
  }

  /**
   * @internal The pause before background try number `failures` (1 for the
   * first retry): 50 to 100 ms, doubling, jittered, at most 5 s or `leaseMs / 6`.
   */
  _retryDelay(failures: number): number {
    const cap = Math.max(1, Math.min(COMPLETION_RETRY_MAX_MS, Math.floor(this.leaseMs / 6)));
    const base = Math.min(cap, COMPLETION_RETRY_BASE_MS * 2 ** Math.min(failures - 1, 30));
    return Math.min(cap, base * (1 + this.#random()));
  }

  /** `work`, or a rejection once `limit` (by default `storeTimeoutMs`) has passed without an answer. */
  #bounded<R>(command: string, work: Promise<R>, limit = this.storeTimeoutMs): Promise<R> {
    if (limit === undefined || limit === Number.POSITIVE_INFINITY) return work;
    return bounded(() => work, {
      at: this.clock.now() + limit,
      clock: this.clock,
      unref: true,
      ownTimer: true,
      expired: () =>
        new Error(
          `the store did not answer ${command} within ${limit} ms (${limit === this.storeTimeoutMs ? 'storeTimeoutMs' : 'leaseMs / 3'})`,
        ),
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

/** How often an owner renews: every `leaseMs / 3`, rounded down, at least 1 ms. */
function renewalInterval(leaseMs: number): number {
  return Math.max(1, Math.floor(leaseMs / 3));
}

/** See Renewal's tick. */
const TIMER_TOLERANCE_MS = 1e-6;

interface RenewalHost {
  readonly clock: Clock;
  readonly leaseMs: number;
  _renew(key: string, token: string): Promise<boolean>;
}

/**
 * Keeps one lease renewed while it is held, and while its completion is being
 * written: a timer on the guard's clock that renews every `leaseMs / 3` (a
 * renewal still unanswered by then does not hold back the next) and aborts the
 * lease's signal once the lease cannot be counted on. While the lease is held
 * it holds the lease only weakly, so a lease dropped without being settled
 * stops renewing and can be taken over.
 */
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
  #stopped = false;
  /** Set once the lease is being settled: told when a renewal finds the key no longer this token's. */
  #onLost: (() => void) | undefined;
  /** A renewal found the key owned by another token. */
  lost = false;

  constructor(guard: RenewalHost, lease: object, key: string, token: string, takenAt: number) {
    this.#guard = guard;
    this.#lease = new WeakRef(lease);
    this.#key = key;
    this.#token = token;
    this.#everyMs = renewalInterval(guard.leaseMs);
    this.#confirmedAt = takenAt;
    this.#sentAt = takenAt;
    this.#schedule();
  }

  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }

  /**
   * The lease is being settled: keep renewing until {@link stop}, whether or
   * not the lease object is still reachable, without aborting its signal, and
   * call `onLost` if a renewal finds the key no longer this token's.
   */
  settling(onLost: () => void): void {
    this.#onLost = onLost;
  }

  /** Stops renewing (the lease settled, or was lost). Idempotent. */
  stop(): void {
    this.#stopped = true;
    this.#timer?.clear();
    this.#timer = undefined;
  }

  #abort(reason: LeaseLostError): void {
    if (this.#onLost !== undefined) return; // fn is done: nothing to stop
    this.#controller ??= new AbortController();
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
  }

  #schedule(): void {
    if (this.#stopped) return;
    const clock = this.#guard.clock;
    // The next renewal, or the moment the lease stops being confirmed.
    let due = this.#sentAt + this.#everyMs;
    if (this.#onLost === undefined && this.#controller?.signal.aborted !== true)
      due = Math.min(due, this.#confirmedAt + this.#guard.leaseMs);
    this.#timer?.clear();
    this.#timer = clock.setTimeout(() => this.#tick(), due - clock.now(), { unref: true });
  }

  #tick(): void {
    this.#timer = undefined;
    if (this.#stopped) return;
    if (this.#onLost === undefined && this.#lease.deref() === undefined) {
      this.stop();
      return;
    }
    // A timer fires at its due instant, which floating-point arithmetic may put
    // a hair before the sum it was computed from: compare with a tolerance.
    const now = this.#guard.clock.now() + TIMER_TOLERANCE_MS;
    if (now - this.#confirmedAt >= this.#guard.leaseMs) {
      this.#abort(leaseLost(this.#key, 'unconfirmed'));
    }
    if (now - this.#sentAt >= this.#everyMs) this.#renew(this.#guard.clock.now());
    this.#schedule();
  }

  #renew(sentAt: number): void {
    this.#sentAt = sentAt;
    this.#guard._renew(this.#key, this.#token).then(
      (owned) => {
        if (this.#stopped) return;
        if (owned) {
          this.#confirmedAt = Math.max(this.#confirmedAt, sentAt);
        } else {
          this.lost = true;
          this.stop();
          this.#abort(leaseLost(this.#key, 'taken-over'));
          this.#onLost?.();
        }
      },
      (error: unknown) => {
        // The store failed: keep trying at the next tick. The lease still holds
        // until another owner takes it; the tick aborts the signal once no
        // renewal has been confirmed for a lease interval.
        if (this.#stopped) return;
        if (this.#guard.clock.now() - this.#confirmedAt >= this.#guard.leaseMs) {
          this.#abort(leaseLost(this.#key, 'unconfirmed', error));
        }
      },
    );
  }
}

/** The guard's side of a {@link Settlement}. */
interface SettlementHost {
  readonly clock: Clock;
  _settle(key: string, token: string, payload: string | undefined): Promise<boolean>;
  _adopt(settlement: Settlement): boolean;
  _forget(settlement: Settlement): void;
  _retryDelay(failures: number): number;
  _retried(key: string, result: CompletionResult, error: unknown): void;
}

/**
 * Writes a lease's completion (`payload`) or release (no payload). The first
 * try answers the caller. When the store fails, the caller is told so
 * (`onFirst(undefined, error)`) and the guard goes on in the background:
 * renewals continue, and the write is tried again after a jittered, doubling
 * pause until it lands, the key is found no longer this token's, or the guard
 * gives up on it.
 */
class Settlement {
  readonly #guard: SettlementHost;
  readonly #renewal: Renewal;
  readonly #key: string;
  readonly #token: string;
  readonly #payload: string | undefined;
  readonly #onFirst: (written: boolean | undefined, error: unknown) => void;
  /** Reports no final result (the release of a begin whose answer was lost: no one held the key). */
  readonly #quiet: boolean;
  #failures = 0;
  #inFlight = false;
  #background = false;
  #done = false;
  #timer: Timer | undefined;
  #lastError: unknown;

  constructor(
    guard: SettlementHost,
    renewal: Renewal,
    key: string,
    token: string,
    payload: string | undefined,
    onFirst: (written: boolean | undefined, error: unknown) => void,
    quiet = false,
  ) {
    this.#guard = guard;
    this.#quiet = quiet;
    this.#renewal = renewal;
    this.#key = key;
    this.#token = token;
    this.#payload = payload;
    this.#onFirst = onFirst;
    renewal.settling(() => {
      // The key is no longer this token's: another owner took it over, or a
      // write whose answer is still awaited (or was lost) landed. Let the write
      // in flight tell which.
      if (!this.#inFlight) this.#finish('lease-lost', undefined);
    });
    this.#try();
  }

  /** Stops retrying and renewing: a retry takes the key over after a lease. */
  giveUp(): void {
    this.#finish('gave-up', this.#lastError);
  }

  #try(): void {
    this.#timer = undefined;
    this.#inFlight = true;
    this.#guard._settle(this.#key, this.#token, this.#payload).then(
      (written) => {
        this.#inFlight = false;
        if (this.#done) return;
        this.#finish(
          written ? (this.#payload === undefined ? 'released' : 'stored') : 'lease-lost',
          undefined,
        );
      },
      (error: unknown) => {
        this.#inFlight = false;
        this.#lastError = error;
        if (this.#done) return;
        this.#failures++;
        if (this.#renewal.lost) {
          this.#finish('lease-lost', undefined);
          return;
        }
        if (!this.#background) {
          this.#background = true;
          this.#onFirst(undefined, error);
          if (!this.#guard._adopt(this)) {
            this.giveUp();
            return;
          }
        }
        if (this.#done) return; // adopting it evicted this very one
        const clock = this.#guard.clock;
        this.#timer = clock.setTimeout(() => this.#try(), this.#guard._retryDelay(this.#failures), {
          unref: true,
        });
      },
    );
  }

  #finish(result: CompletionResult, error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#renewal.stop();
    this.#timer?.clear();
    this.#timer = undefined;
    if (!this.#background) {
      this.#onFirst(result !== 'lease-lost', undefined);
      return;
    }
    this.#guard._forget(this);
    if (!this.#quiet) this.#guard._retried(this.#key, result, error);
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
    const guard = this.#guard;
    if (this.#renewal.lost) {
      // The token can never own the record again: nothing to write.
      this.#renewal.stop();
      guard._completed(this.key, 'lease-lost', undefined);
      return Promise.resolve('lease-lost');
    }
    let payload: string | undefined;
    try {
      payload = guard._payloadOf(value);
    } catch (error) {
      return this.#settle(undefined, (written, storeError) => {
        if (written === undefined) guard._releaseFailed(this.key, storeError);
      }).then(() => Promise.reject(error));
    }
    return this.#settle(payload, (written, error) => {
      const result: CompletionResult =
        written === undefined
          ? 'store-error'
          : !written
            ? 'lease-lost'
            : payload === undefined
              ? 'released'
              : 'stored';
      guard._completed(this.key, result, error);
      return result;
    });
  }

  /**
   * @internal Releases the record of a begin whose answer was lost, quietly:
   * no one held the key, so there is no completion to report.
   */
  _releaseUnanswered(): void {
    this.#settledBy = 'release';
    new Settlement(this.#guard, this.#renewal, this.key, this.token, undefined, () => {}, true);
  }

  release(): Promise<boolean> {
    if (this.#settledBy !== undefined) return Promise.resolve(false);
    this.#settledBy = 'release';
    if (this.#renewal.lost) {
      this.#renewal.stop();
      return Promise.resolve(false);
    }
    return this.#settle(undefined, (written, error) => {
      // The caller's own error matters more: a failed release never rejects.
      if (written === undefined) this.#guard._releaseFailed(this.key, error);
      return written === true;
    });
  }

  /**
   * Writes the completion (or, without a payload, the release), resolving
   * what `first` makes of the first try (told at once, so that its event
   * comes before any of the background retries): `written` is undefined when
   * the store failed, and the write goes on in the background.
   */
  #settle<R>(
    payload: string | undefined,
    first: (written: boolean | undefined, error: unknown) => R,
  ): Promise<R> {
    return new Promise((resolve) => {
      new Settlement(this.#guard, this.#renewal, this.key, this.token, payload, (written, error) =>
        resolve(first(written, error)),
      );
    });
  }
}

/**
 * An idempotency guard: `guard.run(key, request, fn)` runs `fn` once per key
 * and replays its result afterwards. Fails closed when the store is unreachable.
 */
export function idempotency<T = unknown>(options: IdempotencyOptions<T>): IdempotencyGuard<T> {
  return new IdempotencyGuard<T>(options);
}
