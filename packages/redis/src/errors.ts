import { BulwarkError } from '@bulwark/core';

/** Why a fleet store command failed. */
export type FleetStoreFailure = 'unavailable' | 'timeout' | 'corrupt';

/**
 * A command of a fleet store (shared breaker state, distributed semaphore)
 * that failed: Redis was unreachable or answered with an error
 * (`unavailable`), did not answer within the store's `timeoutMs` (`timeout`),
 * or the value at the key was not one bulwark wrote (`corrupt`: another type,
 * or a field it cannot parse).
 */
export class FleetStoreError extends BulwarkError<'ERR_STORE_UNAVAILABLE'> {
  /** The store command: for example `"publish"`, `"read"`, `"acquire"`. */
  readonly operation: string;
  /** The Redis key the command was on. */
  readonly key: string;
  readonly reason: FleetStoreFailure;
  constructor(operation: string, key: string, reason: FleetStoreFailure, detail: string, cause?: unknown) {
    super(
      'ERR_STORE_UNAVAILABLE',
      `fleet store ${operation} on Redis key ${JSON.stringify(key)} failed (${reason}): ${detail}`,
      { cause },
    );
    this.operation = operation;
    this.key = key;
    this.reason = reason;
  }
}
