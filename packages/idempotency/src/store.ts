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
