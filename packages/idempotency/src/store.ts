/** What {@link IdempotencyStore.begin} is asked to do. */
export interface BeginRequest {
  /** The (scoped) idempotency key. */
  readonly key: string;
  /** The fingerprint of the request; a different one under the same key is a mismatch. */
  readonly fingerprint: string;
  /** A fresh random owner token. It fences the completion: only its holder may complete or release. */
  readonly token: string;
  /** How long the lease lasts on the store's clock, in milliseconds. */
  readonly leaseMs: number;
  /** How long the record lives, in milliseconds. */
  readonly ttlMs: number;
}

/** What the store found when a request began. */
export type BeginOutcome =
  /** No live record: an IN_PROGRESS record was written with the caller's token and lease. */
  | { readonly status: 'acquired' }
  /** A COMPLETED record with the same fingerprint: its payload is replayed. */
  | { readonly status: 'completed'; readonly payload: string }
  /** An IN_PROGRESS record with the same fingerprint and a live lease. */
  | { readonly status: 'in-progress'; readonly retryAfterMs: number }
  /** A live record with a different fingerprint. */
  | { readonly status: 'mismatch' };

/**
 * Where the idempotency guard keeps its records. Each record is IN_PROGRESS
 * (a lease, measured on the store's clock, and an owner token) or COMPLETED (a
 * payload). An IN_PROGRESS record whose lease has expired, and any record past
 * its TTL, counts as absent.
 *
 * Each method is one atomic step (one round trip for a remote store). A method
 * rejects when the store cannot be reached; the guard turns that into
 * `StoreUnavailableError`.
 */
export interface IdempotencyStore {
  /** Takes the key for `request.token`, or reports the record that is there. */
  begin(request: BeginRequest): Promise<BeginOutcome>;
  /**
   * Turns the IN_PROGRESS record owned by `token` into a COMPLETED one holding
   * `payload`, living `ttlMs` from now. Resolves false, changing nothing, when
   * `token` no longer owns the record (its lease expired and another owner took it).
   */
  complete(key: string, token: string, payload: string, ttlMs: number): Promise<boolean>;
  /** Deletes the IN_PROGRESS record owned by `token`. Resolves false, changing nothing, when it does not own it. */
  release(key: string, token: string): Promise<boolean>;
}

/**
 * The `'error'` listener {@link listenForClientErrors} adds. It ignores the
 * event: the failure is not lost, since while the client's connection is down
 * every command it is given rejects, and the guard refuses the request with
 * `StoreUnavailableError` carrying that rejection.
 */
function ignoreClientError(): void {}

/**
 * Gives a store's client (a node-redis client, a `pg.Pool` or `pg.Client`, any
 * `EventEmitter`) an `'error'` listener when it has none yet, so that losing
 * the connection fails requests closed instead of crashing the process: an
 * emitter with no `'error'` listener throws the event, and the process exits.
 * Does nothing for an object that is not an event emitter, or that already has
 * an `'error'` listener (the application's own, say, which logs). The stores
 * of @bulwark/redis and @bulwark/postgres call it on the client they are given.
 */
export function listenForClientErrors(client: object): void {
  const emitter = client as { on?: unknown; listenerCount?: unknown };
  if (typeof emitter.on !== 'function' || typeof emitter.listenerCount !== 'function') return;
  if ((emitter.listenerCount as (event: string) => number).call(client, 'error') > 0) return;
  (emitter.on as (event: string, listener: () => void) => unknown).call(client, 'error', ignoreClientError);
}
