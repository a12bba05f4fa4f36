import { connect } from 'node:net';

/** The PostgreSQL protocol's CancelRequest code (1234 << 16 | 5678). */
const CANCEL_REQUEST_CODE = 80877102;

/** Where a backend runs and the key that lets anyone who knows it cancel its query. */
export interface BackendKey {
  readonly host: string;
  readonly port: number;
  readonly processID: number;
  readonly secretKey: number;
}

/**
 * Asks the server to cancel whatever `key`'s backend is running, as
 * `pg_cancel_backend()` would, with the protocol's CancelRequest on a fresh
 * connection. It needs no pooled connection and no authentication, so it works
 * even when the pool is exhausted. Resolves once the request was sent; the
 * server gives no answer. Never rejects: a cancel that cannot be delivered
 * leaves the query to its own `statement_timeout`.
 */
export function sendCancelRequest(key: BackendKey, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const message = Buffer.alloc(16);
    message.writeInt32BE(16, 0);
    message.writeInt32BE(CANCEL_REQUEST_CODE, 4);
    message.writeInt32BE(key.processID, 8);
    message.writeInt32BE(key.secretKey, 12);
    const socket = key.host.startsWith('/')
      ? connect({ path: `${key.host}/.s.PGSQL.${key.port}` })
      : connect({ host: key.host, port: key.port });
    socket.setTimeout(timeoutMs, () => socket.destroy());
    socket.once('connect', () => socket.end(message, () => resolve(true)));
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}
