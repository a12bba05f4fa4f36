import { type StoreFailure, StoreUnavailableError } from '@bulwark/core';

/** Why a fleet store command failed (core's `StoreFailure`). */
export type FleetStoreFailure = StoreFailure;

/** What a fleet store keeps, as its errors name it. */
export type FleetStoreKind = 'breaker-state' | 'semaphore' | 'rate-limit';

/**
 * A command of a fleet store (shared breaker state, distributed semaphore,
 * shared rate limit) that failed: Redis was unreachable or answered with an
 * error (`unavailable`), did not answer within the store's `timeoutMs`
 * (`timeout`), or the value at the key was not one bulwark wrote (`corrupt`:
 * another type, or a field it cannot parse). A core `StoreUnavailableError`
 * (`ERR_STORE_UNAVAILABLE`) whose `key` is the Redis key.
 */
export class FleetStoreError extends StoreUnavailableError {
  /** The Redis key the command was on. */
  declare readonly key: string;
  constructor(
    store: FleetStoreKind,
    operation: string,
    key: string,
    reason: FleetStoreFailure,
    detail: string,
    cause?: unknown,
  ) {
    super(operation, cause, {
      store,
      reason,
      key,
      message: `fleet store ${operation} on Redis key ${JSON.stringify(key)} failed (${reason}): ${detail}`,
    });
  }
}
