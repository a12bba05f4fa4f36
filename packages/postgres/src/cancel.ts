import { connect, type Socket } from 'node:net';
import { type Clock, systemClock } from '@bulwark/clock';
import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';

const CANCEL_KEYS = optionKeys<CancelRequestOptions>({ clock: true });

/** The PostgreSQL protocol's CancelRequest code (1234 << 16 | 5678). */
const CANCEL_REQUEST_CODE = 80877102;

/** The default of `sendCancelRequest`'s `timeoutMs`: 1,000 milliseconds. */
export const DEFAULT_CANCEL_TIMEOUT_MS = 1_000;

/** Where a backend runs and the key that lets anyone who knows it cancel its query. */
export interface BackendKey {
  readonly host: string;
  readonly port: number;
  readonly processID: number;
  readonly secretKey: number;
}

/** Options for {@link sendCancelRequest}. */
export interface CancelRequestOptions {
  /** The clock `timeoutMs` is measured on. Default: systemClock. */
  readonly clock?: Clock | undefined;
}

/**
 * Asks the server to cancel whatever `key`'s backend is running, as
 * `pg_cancel_backend()` would, with the protocol's CancelRequest on a fresh
 * connection. It needs no pooled connection and no authentication, so it works
 * even when the pool is exhausted.
 *
 * The server sends no reply: it processes the request and closes the
 * connection. The promise resolves true once the request was sent and the
 * server closed the connection, so the cancel cannot land on a later query of
 * the same backend. It resolves false when the connection failed, or when the
 * server had not closed it within `timeoutMs` (measured on `options.clock`);
 * the side connection is then destroyed. It never rejects: a cancel that cannot
 * be delivered leaves the query to its own `statement_timeout`.
 *
 * @param timeoutMs the longest the side connection may live, in milliseconds. Default: 1,000.
 * @throws InvalidOptionsError when `timeoutMs` is not a finite number above 0 or `clock` is not a Clock.
 */
export function sendCancelRequest(
  key: BackendKey,
  timeoutMs: number = DEFAULT_CANCEL_TIMEOUT_MS,
  options: CancelRequestOptions = {},
): Promise<boolean> {
  const check = new OptionsChecker('sendCancelRequest()');
  check.knownKeys(options, CANCEL_KEYS);
  check.number('timeoutMs', timeoutMs, { above: 0 });
  check.clock('clock', options?.clock, true);
  check.done();
  const clock = options?.clock ?? systemClock;
  return new Promise((resolve) => {
    const message = Buffer.alloc(16);
    message.writeInt32BE(16, 0);
    message.writeInt32BE(CANCEL_REQUEST_CODE, 4);
    message.writeInt32BE(key.processID, 8);
    message.writeInt32BE(key.secretKey, 12);
    let socket: Socket;
    try {
      socket = key.host.startsWith('/')
        ? connect({ path: `${key.host}/.s.PGSQL.${key.port}` })
        : connect({ host: key.host, port: key.port });
    } catch {
      // A malformed address (such as a port out of range) throws synchronously.
      resolve(false);
      return;
    }
    let sent = false;
    let closedByServer = false;
    // Every path ends in 'close' (a failed connect, the server closing, or this
    // timer destroying the socket), and 'close' clears the timer.
    const timer = clock.setTimeout(() => socket.destroy(), timeoutMs, { unref: true });
    socket.once('connect', () =>
      socket.end(message, () => {
        sent = true;
      }),
    );
    socket.once('end', () => {
      closedByServer = true;
    });
    socket.on('error', () => {}); // 'close' follows and settles the promise
    socket.once('close', () => {
      timer.clear();
      resolve(sent && closedByServer);
    });
    socket.resume(); // the server sends nothing; flowing mode lets 'end' arrive
  });
}
