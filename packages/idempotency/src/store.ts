/**
 * An owner's lease as a contender saw it: whose it is and how many times it has
 * been renewed. A record whose observation stays the same for a whole lease
 * interval, measured on the contender's own monotonic clock, belongs to an
 * owner that has stopped renewing (crashed, or paused past its lease).
 */
export interface LeaseObservation {
  /** The owner token of the IN_PROGRESS record. */
  readonly owner: string;
  /** The record's renewal counter: 0 when taken, one more for each renewal. */
  readonly renewals: number;
}

/** What {@link IdempotencyStore.begin} is asked to do. */
export interface BeginRequest {
  /** The (scoped) idempotency key. */
  readonly key: string;
  /** The fingerprint of the request; a different one under the same key is a mismatch. */
  readonly fingerprint: string;
  /** A fresh random owner token. It fences the completion: only its holder may complete or release. */
  readonly token: string;
  /**
   * How long a new IN_PROGRESS record is kept without a renewal, in milliseconds,
   * on the store's own clock. Garbage collection only: it is never what lets a
   * contender take a key over, and the guard makes it long (at least 24 hours).
   */
  readonly retainMs: number;
  /**
   * Set when the caller saw exactly this owner and renewal count a whole lease
   * interval ago (on its own clock) and asks to take the key over. The store
   * takes it (a compare-and-set) only when the IN_PROGRESS record still has
   * this owner and this renewal count; otherwise it reports the record as usual.
   */
  readonly takeover?: LeaseObservation | undefined;
}

/** What the store found when a request began. */
export type BeginOutcome =
  /**
   * No live record, or a takeover that matched: an IN_PROGRESS record was
   * written with the caller's token and a renewal count of 0.
   */
  | { readonly status: 'acquired' }
  /** A COMPLETED record with the same fingerprint: its payload is replayed. */
  | { readonly status: 'completed'; readonly payload: string }
  /** An IN_PROGRESS record with the same fingerprint: its owner and renewal count. */
  | { readonly status: 'in-progress'; readonly owner: string; readonly renewals: number }
  /** A live record with a different fingerprint. */
  | { readonly status: 'mismatch' };

/**
 * Where the idempotency guard keeps its records. Each record is IN_PROGRESS
 * (an owner token and a renewal counter) or COMPLETED (a payload). An
 * IN_PROGRESS record is live for as long as it exists: the store never decides
 * that its owner is gone. The guard does, from renewals it observes on its own
 * monotonic clock, and then asks `begin` to take the key over. A record past
 * its retention (`retainMs`, or `ttlMs` once completed, on the store's clock)
 * counts as absent.
 *
 * Each method is one atomic step (one round trip for a remote store). A method
 * rejects when the store cannot be reached; the guard turns that into
 * `StoreUnavailableError`.
 */
export interface IdempotencyStore {
  /** Takes the key for `request.token`, or reports the record that is there. */
  begin(request: BeginRequest): Promise<BeginOutcome>;
  /**
   * Renews the IN_PROGRESS record owned by `token`: adds one to its renewal
   * counter and keeps it `retainMs` from now. Resolves false, changing nothing,
   * when `token` no longer owns the record (another owner took it over).
   */
  renew(key: string, token: string, retainMs: number): Promise<boolean>;
  /**
   * Turns the IN_PROGRESS record owned by `token` into a COMPLETED one holding
   * `payload`, living `ttlMs` from now. Resolves false, changing nothing, when
   * `token` no longer owns the record (another owner took it over).
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
