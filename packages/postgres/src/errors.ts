import { BulwarkError } from '@bulwark/core';

/**
 * The connection a query ran on broke before the query's answer arrived: the
 * server went away, or the network reset or closed the connection. The driver's
 * error is the `cause`.
 *
 * The query may or may not have taken effect on the server, so this error is
 * marked `retryable: false`: bulwark's default retry classifier does not retry
 * it. Retry it yourself (with a `retryOn` that accepts `ERR_CONNECTION_LOST`)
 * only for a query that is safe to run twice, such as a read.
 */
export class ConnectionLostError extends BulwarkError<'ERR_CONNECTION_LOST'> {
  /** Always false: the query's effect is unknown. */
  readonly retryable = false;

  constructor(cause: unknown) {
    super(
      'ERR_CONNECTION_LOST',
      `the connection to PostgreSQL broke while the query ran (${
        cause instanceof Error ? cause.message : String(cause)
      }); the query may or may not have taken effect`,
      { cause },
    );
  }
}

declare module '@bulwark/core' {
  /** This package's error codes, for `isBulwarkError(e, code)` to narrow by. */
  interface BulwarkErrorMap {
    ERR_CONNECTION_LOST: ConnectionLostError;
  }
}
