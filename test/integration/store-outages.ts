// What a networked IdempotencyStore does when its server goes away: the guard
// fails closed (StoreUnavailableError, fn never runs) whether the server was never
// there, stops answering with the connection still open, or drops the connection
// while fn runs. The same tests, run against Redis and against PostgreSQL.
import { isBulwarkError } from '@bulwark/core';
import {
  type IdempotencyGuard,
  type IdempotencyStore,
  idempotency,
  StoreUnavailableError,
} from '@bulwark/idempotency';
import { expect, it } from 'vitest';
import { atPort, deadPort } from './services.ts';
import { startProxy } from './tcp-proxy.ts';

/** A store on a client of its own, and how to close that client. */
export interface OpenedStore {
  readonly store: IdempotencyStore;
  close(): Promise<void>;
}

export interface OutageTarget {
  /** The real server's URL. */
  readonly url: string;
  /** The port the server listens on when `url` names none. */
  readonly defaultPort: number;
  /**
   * A connected client of the server at `url`, with short connect timeouts and no
   * client-side timeout on commands; rejects when nothing answers there.
   */
  connect(url: string): Promise<OpenedStore>;
  /** A client of the server at `url` that has not connected yet, with short connect timeouts. */
  unconnected(url: string): OpenedStore;
  /** The state of `key`'s record as the server holds it, read on the test's own client. */
  recordState(key: string): Promise<unknown>;
  /** What `recordState` reads for a record still in progress. */
  readonly inProgress: unknown;
  key(name: string): string;
}

/** Runs one guarded request that the guard must refuse: its error, and whether fn ran. */
async function refused(
  guard: IdempotencyGuard<string>,
  key: string,
): Promise<{ error: unknown; ran: boolean }> {
  let ran = false;
  const error = await guard
    .run(key, 'req', () => {
      ran = true;
      return 'never';
    })
    .catch((e: unknown) => e);
  return { error, ran };
}

/** A TCP proxy to the target's server, and the target's URL pointed at it. */
async function proxied(t: OutageTarget) {
  const server = new URL(t.url);
  const proxy = await startProxy(server.hostname, Number(server.port || t.defaultPort));
  return { proxy, url: atPort(t.url, proxy.port) };
}

/**
 * Registers the outage tests in the enclosing describe block (so their names read as
 * the store's own tests), each naming the server as `name`.
 */
export function storeOutageTests(name: string, target: () => OutageTarget): void {
  it(`fails closed when ${name} is unreachable: nothing runs`, async () => {
    const t = target();
    const url = atPort(t.url, await deadPort());
    await expect(t.connect(url)).rejects.toThrow();
    const offline = t.unconnected(url);
    try {
      const { error, ran } = await refused(idempotency({ store: offline.store }), t.key('down'));
      expect(isBulwarkError(error, 'ERR_STORE_UNAVAILABLE')).toBe(true);
      expect(ran).toBe(false);
    } finally {
      await offline.close().catch(() => {});
    }
  });

  it(`fails closed within storeTimeoutMs when ${name} stops answering without closing the connection`, async () => {
    const t = target();
    const { proxy, url } = await proxied(t);
    let client: OpenedStore | undefined;
    try {
      // The client has no command timeout: only the guard's own limit ends the wait.
      client = await t.connect(url);
      const guard = idempotency<string>({ store: client.store, storeTimeoutMs: 300 });
      expect((await guard.run(t.key('frozen-before'), 'req', () => 'before')).kind).toBe('executed');
      proxy.freeze();
      const { error, ran } = await refused(guard, t.key('frozen'));
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect((error as Error).message).toMatch(/storeTimeoutMs/);
      expect(ran).toBe(false);
    } finally {
      await proxy.cut();
      await client?.close().catch(() => {});
    }
  });

  it(`fails closed when the connection to ${name} is cut mid-test`, async () => {
    const t = target();
    const { proxy, url } = await proxied(t);
    let client: OpenedStore | undefined;
    try {
      client = await t.connect(url);
      const guard = idempotency<string>({ store: client.store, leaseMs: 5_000 });
      expect((await guard.run(t.key('cut'), 'req', () => 'before')).kind).toBe('executed');

      // Cut while fn runs: the result comes back, the record is not completed.
      const k = t.key('cut-during');
      const during = await guard.run(k, 'req', async () => {
        await proxy.cut();
        return 'during';
      });
      expect(during).toEqual({ kind: 'executed', value: 'during', completion: 'store-error' });
      expect(await t.recordState(k)).toEqual(t.inProgress);

      // Cut before the request: it is refused and fn never runs.
      const { error, ran } = await refused(guard, t.key('cut-after'));
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(ran).toBe(false);
    } finally {
      await proxy.cut();
      await client?.close().catch(() => {});
    }
  });
}
