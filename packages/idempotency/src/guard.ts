import { randomUUID } from 'node:crypto';
import { type Clock, systemClock } from '@bulwark/clock';
import { CallbackError, type Disposable, EventHub, isBulwarkError, OptionsChecker } from '@bulwark/core';
import { LeaseSettledError, StoreUnavailableError } from './errors.ts';
import { defaultFingerprint } from './fingerprint.ts';
import { assertIdempotencyKey } from './header.ts';
import { encodeScope } from './scope.ts';
import type { IdempotencyStore } from './store.ts';
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

/** Options for {@link idempotency}. */
export interface IdempotencyOptions<T = unknown> {
  /** Where records live: `memoryStore()`, `redisIdempotencyStore()`, `postgresIdempotencyStore()`. */
  readonly store: IdempotencyStore;
  /** How long a completed result is kept for replay, in milliseconds. Default: 86,400,000 (24 h). */
  readonly ttlMs?: number;
  /**
   * How long an owner holds the key while it runs, in milliseconds. After it, a
   * retry may take over (the owner is presumed crashed). Set it above the
   * longest time `fn` may take. Default: 60,000.
   */
  readonly leaseMs?: number;
  /** Turns a request into its fingerprint. Default: {@link defaultFingerprint}. */
  readonly fingerprint?: (input: unknown) => string;
  /**
   * Whether a result is kept for replay. When false the key is released, so the
   * next request with it executes again. Default: every result is kept.
   */
  readonly storeOutcome?: (value: T) => boolean;
  /** How results are stored. Default: {@link jsonResultCodec}. */
  readonly codec?: ResultCodec;
  /**
   * The longest one store command may take, in milliseconds. Past it, `begin`
   * fails closed with `StoreUnavailableError` (`fn` does not run), `complete`
   * reports `'store-error'`, and a release gives up (the lease expires on its
   * own). It guards against a store that hangs rather than failing, such as a
   * silently dropped connection, whatever the client's own timeouts. A begin
   * that timed out here may still have taken the key on the server; its lease
   * then expires after `leaseMs`. Default: no limit (the client's timeouts apply).
   */
  readonly storeTimeoutMs?: number;
  /** The clock for `storeTimeoutMs` and the durations reported in events. Default: systemClock. */
  readonly clock?: Clock;
}

/** What became of an executed request's record. */
export type CompletionResult =
  /** The result is stored for replay. */
  | 'stored'
  /** `storeOutcome` declined the result; the key was released. */
  | 'released'
  /** The lease expired and another owner took the key: the result was not stored. */
  | 'lease-lost'
  /** The store failed while completing: the record stays IN_PROGRESS until its lease expires. */
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

  constructor(options: IdempotencyOptions<T>) {
    const check = new OptionsChecker('idempotency()');
    const store = options?.store as Partial<IdempotencyStore> | undefined;
    check.expect(
      typeof store?.begin === 'function' &&
        typeof store.complete === 'function' &&
        typeof store.release === 'function',
      'store',
      options?.store,
      'an IdempotencyStore (begin, complete, release)',
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
   * error is rethrown, so a retry can execute.
   *
   * @param request the request, turned into a fingerprint by the `fingerprint` option.
   * @throws StoreUnavailableError when the store cannot be reached; `fn` did not run.
   * @throws InvalidIdempotencyKeyError when `key` is empty, too long or not printable ASCII.
   */
  async run(
    key: string,
    request: unknown,
    fn: () => T | PromiseLike<T>,
    options?: GuardCallOptions,
  ): Promise<IdempotentResult<T>> {
    const decision = await this.begin(key, this.fingerprintOf(request), options);
    if (decision.kind !== 'acquired') return decision;
    const lease = decision.lease;
    let value: T;
    try {
      value = await fn();
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
   * `acquired`, call `lease.complete(value)` or `lease.release()` exactly once.
   *
   * @param fingerprint the request's fingerprint, already computed.
   * @throws StoreUnavailableError when the store cannot be reached.
   */
  async begin(key: string, fingerprint: string, options?: GuardCallOptions): Promise<BeginDecision<T>> {
    assertIdempotencyKey(key);
    const scoped = storeKey(key, options);
    const started = this.#outcomes.listening ? this.clock.now() : 0;
    const token = randomUUID();
    let decision: BeginDecision<T>;
    try {
      const outcome = await this.#bounded(
        'begin',
        this.store.begin({ key: scoped, fingerprint, token, leaseMs: this.leaseMs, ttlMs: this.ttlMs }),
      );
      switch (outcome.status) {
        case 'acquired':
          decision = { kind: 'acquired', lease: new Lease(this, scoped, token) };
          break;
        case 'completed':
          decision = { kind: 'replayed', value: this.#decode(outcome.payload) };
          break;
        case 'in-progress':
          decision = { kind: 'in-progress', retryAfterMs: Math.max(0, outcome.retryAfterMs) };
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
      this.#report(key, 'store-error', started);
      throw isBulwarkError(error, 'ERR_STORE_UNAVAILABLE')
        ? error
        : new StoreUnavailableError('begin', error);
    }
    this.#report(key, decision.kind === 'acquired' ? 'executed' : decision.kind, started);
    return decision;
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

  /** @internal */
  async _complete(key: string, token: string, value: T): Promise<CompletionResult> {
    let payload: string | undefined;
    try {
      payload = this.#storeOutcome === undefined || this.#keep(value) ? this.#encode(value) : undefined;
    } catch (error) {
      await this._release(key, token);
      throw error;
    }
    let result: CompletionResult;
    let failure: unknown;
    try {
      if (payload === undefined) {
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
      // The lease expires on its own; the caller's own error matters more.
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

class Lease<T> implements IdempotencyLease<T> {
  readonly #guard: IdempotencyGuard<T>;
  readonly key: string;
  readonly token: string;
  /** How the lease settled; undefined while it is held. */
  #settledBy: 'complete' | 'release' | undefined;

  constructor(guard: IdempotencyGuard<T>, key: string, token: string) {
    this.#guard = guard;
    this.key = key;
    this.token = token;
  }

  complete(value: T): Promise<CompletionResult> {
    if (this.#settledBy !== undefined)
      return Promise.reject(new LeaseSettledError(this.key, this.#settledBy));
    this.#settledBy = 'complete';
    return this.#guard._complete(this.key, this.token, value);
  }

  release(): Promise<boolean> {
    if (this.#settledBy !== undefined) return Promise.resolve(false);
    this.#settledBy = 'release';
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
