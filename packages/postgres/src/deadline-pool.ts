import { type ExecutionContext, OptionsChecker, type Policy, wrapMethods } from '@bulwark/core';
import { DEFAULT_CANCEL_TIMEOUT_MS, sendCancelRequest } from './cancel.ts';

/** The part of a `pg` pooled client this wrapper uses. */
export interface PgPooledClient {
  query(...args: unknown[]): Promise<unknown>;
  release(error?: Error | boolean): void;
}

/** What `pg` keeps on a connected client (not in its type declarations). */
interface BackendInfo {
  readonly processID?: number | null;
  readonly secretKey?: number | null;
  readonly connectionParameters?: { readonly host?: string; readonly port?: number };
  readonly host?: string;
  readonly port?: number;
}

/** The part of a `pg` Pool this wrapper uses. */
export interface PgPool {
  connect(): Promise<PgPooledClient>;
  query(...args: never[]): Promise<unknown>;
}

/** Options for {@link withQueryPolicy}. */
export interface QueryPolicyOptions {
  /** The operation name reported for each query. Default: `"pg.query"`. */
  readonly operation?: string;
  /**
   * How long a cancel's side connection may take to deliver the CancelRequest
   * and see the server close it, in milliseconds, on the call's clock
   * (`ctx.clock`). The client goes back to the pool after the cancel settles.
   * Default: 1,000.
   */
  readonly cancelTimeoutMs?: number;
}

async function runQuery(
  pool: PgPool,
  args: readonly unknown[],
  ctx: ExecutionContext,
  cancelTimeoutMs: number,
): Promise<unknown> {
  const signal = ctx.signal;
  const client = await pool.connect();
  // The call may have ended while it waited for a connection.
  if (signal.aborted) {
    client.release();
    throw signal.reason;
  }
  let cancelled: Promise<boolean> | undefined;
  const onAbort = (): void => {
    const info = client as BackendInfo;
    const host = info.connectionParameters?.host ?? info.host ?? '127.0.0.1';
    const port = info.connectionParameters?.port ?? info.port ?? 5432;
    if (typeof info.processID === 'number' && typeof info.secretKey === 'number') {
      cancelled = sendCancelRequest(
        { host, port, processID: info.processID, secretKey: info.secretKey },
        cancelTimeoutMs,
        { clock: ctx.clock },
      );
    }
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await client.query(...args);
  } finally {
    signal.removeEventListener('abort', onAbort);
    // A cancelled backend is safe to reuse once its query has ended, which it
    // has when query() settles, and once the server has processed the cancel
    // (it closes the side connection then), so the cancel cannot hit the next query.
    if (cancelled !== undefined) await cancelled;
    client.release();
  }
}

/**
 * Runs every `pool.query(...)` through `policy`, and cancels the query on the
 * server when the call's signal aborts — at the deadline or attempt timeout, or
 * when the caller gives up — so the database stops working on an answer nobody
 * will read. Each query runs on a client checked out for it; cancellation is the
 * protocol's CancelRequest (what `pg_cancel_backend()` does) on a side
 * connection, so it works even when the pool is exhausted.
 *
 * ```ts
 * const db = withQueryPolicy(new pg.Pool(), pipeline(deadline(2_000), retry()));
 * await db.query('select * from orders where id = $1', [id]);
 * ```
 *
 * Every other property and method of the pool is its own. Callback-style
 * queries are refused (the policy could not see their outcome).
 */
export function withQueryPolicy<P extends PgPool>(pool: P, policy: Policy, options?: QueryPolicyOptions): P {
  const check = new OptionsChecker('withQueryPolicy()');
  check.expect(
    typeof pool === 'object' && pool !== null && typeof pool.connect === 'function',
    'pool',
    pool,
    'a pg Pool',
  );
  check.expect(
    options?.operation === undefined || typeof options.operation === 'string',
    'operation',
    options?.operation,
    'a string',
  );
  check.number('cancelTimeoutMs', options?.cancelTimeoutMs, { above: 0 });
  check.done();
  const operation = options?.operation ?? 'pg.query';
  const cancelTimeoutMs = options?.cancelTimeoutMs ?? DEFAULT_CANCEL_TIMEOUT_MS;
  return wrapMethods(pool as PgPool, policy, {
    methods: ['query'],
    operation: () => operation,
    invoke: (call, ctx) => runQuery(pool, call.args, ctx, cancelTimeoutMs),
  }) as P;
}
