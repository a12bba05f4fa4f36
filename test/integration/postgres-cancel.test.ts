// sendCancelRequest: the side connection's lifetime is measured on the injected
// clock, and its timer is cleared on every path. Loopback servers stand in for
// PostgreSQL where the test needs one that misbehaves; the last case runs
// against the real server.
import { createServer, type Server, type Socket } from 'node:net';
import { VirtualClock } from '@bulwark/clock';
import { InvalidOptionsError } from '@bulwark/core';
import { deadline } from '@bulwark/deadline';
import { DEFAULT_CANCEL_TIMEOUT_MS, sendCancelRequest, withQueryPolicy } from '@bulwark/postgres';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { DATABASE_URL, postgresAvailable } from './services.ts';

const CANCEL_REQUEST_CODE = 80877102;

interface Received {
  /** Everything the client sent, once it has ended its side. */
  readonly bytes: Promise<Buffer>;
}

const servers: Server[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

/**
 * A loopback server on an ephemeral port. `closes: true` ends the connection
 * once the client has sent its request, as PostgreSQL does; `closes: false`
 * accepts, reads and never says or closes anything.
 */
async function loopbackServer(closes: boolean): Promise<{ port: number; received: Received }> {
  let deliver: (bytes: Buffer) => void = () => {};
  const bytes = new Promise<Buffer>((resolve) => {
    deliver = resolve;
  });
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.once('end', () => {
      deliver(Buffer.concat(chunks));
      if (closes) socket.end();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  return { port: address.port, received: { bytes } };
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}

function track<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  return { promise, settled: () => settled };
}

describe('sendCancelRequest()', () => {
  it('sends the 16-byte CancelRequest and resolves true once the server closes the connection', async () => {
    const clock = new VirtualClock();
    const { port, received } = await loopbackServer(true);
    const sent = await sendCancelRequest({ host: '127.0.0.1', port, processID: 4242, secretKey: -7 }, 5_000, {
      clock,
    });
    expect(sent).toBe(true);
    const bytes = await received.bytes;
    expect(bytes.length).toBe(16);
    expect(bytes.readInt32BE(0)).toBe(16);
    expect(bytes.readInt32BE(4)).toBe(CANCEL_REQUEST_CODE);
    expect(bytes.readInt32BE(8)).toBe(4242);
    expect(bytes.readInt32BE(12)).toBe(-7);
    expect(clock.pendingTimers).toBe(0);
  });

  it('destroys a side connection the server never closes once timeoutMs passes on the injected clock, resolving false', async () => {
    const clock = new VirtualClock();
    const { port, received } = await loopbackServer(false);
    const call = track(
      sendCancelRequest({ host: '127.0.0.1', port, processID: 1, secretKey: 2 }, 5_000, { clock }),
    );
    // The request arrived, but the server keeps the connection open: the call
    // waits, holding exactly one timer on the virtual clock.
    expect((await received.bytes).length).toBe(16);
    expect(call.settled()).toBe(false);
    expect(clock.pendingTimers).toBe(1);
    expect(clock.nextDue).toBe(5_000);
    await clock.advance(4_999);
    expect(call.settled()).toBe(false);
    await clock.advance(1);
    expect(await call.promise).toBe(false);
    expect(clock.pendingTimers).toBe(0);
  });

  it('resolves false and clears its timer when nothing listens on the port', async () => {
    const clock = new VirtualClock();
    const port = await closedPort();
    expect(
      await sendCancelRequest({ host: '127.0.0.1', port, processID: 1, secretKey: 2 }, 5_000, { clock }),
    ).toBe(false);
    expect(clock.pendingTimers).toBe(0);
  });

  it('resolves false without arming a timer when the address cannot be used', async () => {
    const clock = new VirtualClock();
    expect(
      await sendCancelRequest({ host: '127.0.0.1', port: 70_000, processID: 1, secretKey: 2 }, 5_000, {
        clock,
      }),
    ).toBe(false);
    expect(clock.pendingTimers).toBe(0);
  });

  it('lists a bad timeoutMs and clock with their values in one error, and defaults to 1 s', () => {
    const key = { host: '127.0.0.1', port: 5432, processID: 1, secretKey: 2 };
    let error: unknown;
    try {
      void sendCancelRequest(key, -1, { clock: {} as never });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as Error).message).toMatch(/timeoutMs must be a finite number > 0, got -1/);
    expect((error as Error).message).toMatch(/clock must be a Clock \(with now\(\) and setTimeout\(\)\)/);
    expect(DEFAULT_CANCEL_TIMEOUT_MS).toBe(1_000);
    expect(() =>
      withQueryPolicy({ connect: async () => ({}) } as never, deadline(100), { cancelTimeoutMs: 0 }),
    ).toThrow(/cancelTimeoutMs must be a finite number > 0, got 0/);
  });
});

const available = await postgresAvailable();

describe.skipIf(!available)('sendCancelRequest() against real PostgreSQL', () => {
  it('cancels a running query and resolves true once the server has processed the request', async () => {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    try {
      const info = client as unknown as { processID: number; secretKey: number; host: string; port: number };
      const running = client.query('select pg_sleep(10)').catch((e: unknown) => e);
      // Cancel only once the backend is running the query.
      const observer = new pg.Client({ connectionString: DATABASE_URL });
      await observer.connect();
      try {
        for (let i = 0; i < 200; i++) {
          const { rows } = await observer.query(
            "select count(*)::int as n from pg_stat_activity where pid = $1 and state = 'active'",
            [info.processID],
          );
          if ((rows[0] as { n: number }).n === 1) break;
        }
      } finally {
        await observer.end();
      }
      const sent = await sendCancelRequest({
        host: info.host,
        port: info.port,
        processID: info.processID,
        secretKey: info.secretKey,
      });
      expect(sent).toBe(true);
      expect(await running).toMatchObject({ code: '57014' }); // query_canceled
    } finally {
      await client.end();
    }
  });
});
