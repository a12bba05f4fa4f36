import type { Clock } from '@bulwark/clock';
import { type CallOptionsSplitter, type ExecutionContext, type Policy, wrapMethods } from '@bulwark/core';
import { bounded, OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import { DEFAULT_CANCEL_TIMEOUT_MS, sendCancelRequest } from './cancel.ts';
import { ConnectionLostError } from './errors.ts';

const QUERY_POLICY_KEYS = optionKeys<QueryPolicyOptions>({ operation: true, cancelTimeoutMs: true });

/** The part of a `pg` pooled client this wrapper uses. */
export interface PgPooledClient {
  query(...args: unknown[]): Promise<unknown>;
  release(error?: Error | boolean): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
}

/** What `pg` keeps on a connected client (not in its type declarations). */
interface BackendInfo {
  readonly processID?: number | null | undefined;
  readonly secretKey?: number | null | undefined;
  readonly connectionParameters?: { readonly host?: string; readonly port?: number } | undefined;
  readonly host?: string | undefined;
  readonly port?: number | undefined;
}

/** The part of a `pg` Pool this wrapper uses. */
export interface PgPool {
  connect(): Promise<PgPooledClient>;
  query(...args: never[]): Promise<unknown>;
}

/** Options for {@link withQueryPolicy}. */
export interface QueryPolicyOptions {
  /** The operation name reported for each query. Default: `"pg.query"`. */
  readonly operation?: string | undefined;
  /**
   * How long, in milliseconds on the call's clock (`ctx.clock`), a query may
   * go on after its call was aborted: the cancel's side connection must deliver
   * the CancelRequest and see the server close it, and the query must end,
   * within it. A client whose query has not ended by then (the network
   * dropped the cancel or the answer) is closed and removed from the pool, so
   * an unreachable server cannot keep the pool's clients checked out.
   * Default: 1,000.
   */
  readonly cancelTimeoutMs?: number | undefined;
}

/** The options of one query call: `db.query(text, values, { signal })`. */
export interface QueryCallOptions {
  /**
   * Aborts this query: the call rejects with the signal's reason at once, and
   * the query is cancelled on the server. Pass the request's signal
   * (`request.bulwark.signal` in Fastify, `req.bulwark.signal` in Express) so
   * that a client that goes away stops its queries.
   */
  readonly signal?: AbortSignal | undefined;
}

/** What a `pg` query resolves to (the fields of pg's `QueryResult` most code reads). */
export interface PgQueryResult<R = Record<string, unknown>> {
  readonly rows: R[];
  readonly rowCount: number | null;
  readonly command: string;
}

/** A pool wrapped by {@link withQueryPolicy}: the pool's own `query`, which also takes {@link QueryCallOptions}. */
export type QueryPolicyPool<P extends PgPool> = P & {
  query<R = Record<string, unknown>>(
    textOrConfig: string | { readonly text: string },
    values: readonly unknown[] | undefined,
    options: QueryCallOptions,
  ): Promise<PgQueryResult<R>>;
  query<R = Record<string, unknown>>(
    textOrConfig: string | { readonly text: string },
    options: QueryCallOptions,
  ): Promise<PgQueryResult<R>>;
};

/**
 * An error the server sent (pg's `DatabaseError`: a SQL error, a cancelled
 * statement). The connection is still in step with the server after one.
 */
function isServerError(error: unknown): boolean {
  return (
    error instanceof Error &&
    typeof (error as { severity?: unknown }).severity === 'string' &&
    typeof (error as { code?: unknown }).code === 'string'
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * `query(text, options)`, `query(text, values, options)` (and the same with a
 * query config object): a trailing plain object is the call's options. pg's
 * own forms never end in one (values are an array).
 */
const splitQueryArgs: CallOptionsSplitter<PgPool> = ({ args }) => {
  if (args.length < 2 || args.length > 3) return undefined;
  const last = args[args.length - 1];
  if (!isPlainObject(last)) return undefined;
  const check = new OptionsChecker('query() options');
  for (const key of Object.keys(last)) {
    if (key === 'signal') {
      check.expect(
        last.signal === undefined || last.signal instanceof AbortSignal,
        'signal',
        last.signal,
        'an AbortSignal',
      );
    } else check.expect(false, key, last[key], 'not an option of query() (the options are: signal)');
  }
  check.done();
  return { args: args.slice(0, -1), signal: last.signal as AbortSignal | undefined };
};

type Outcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: unknown };

/** The client went back without error: take our listener off first. */
function giveBack(client: PgPooledClient, onError: (error: Error) => void): void {
  client.removeListener('error', onError);
  client.release();
}

/**
 * The client must not be used again: pg's pool removes it and closes its
 * connection. Our listener stays on it, so that an error it emits while
 * closing has somewhere to go.
 */
function destroy(client: PgPooledClient, why: Error): void {
  client.release(why);
}

/** What the wait for a cancelled query's end gives when cancelTimeoutMs passed first. */
const ABANDONED: unique symbol = Symbol('abandoned');
const abandoned = (): typeof ABANDONED => ABANDONED;

/**
 * Sends the CancelRequest for the query `client` runs, on a side connection
 * that may live `timeoutMs`; resolves whether the server processed it.
 * Undefined when pg did not record the backend's key (nothing to cancel with).
 */
function cancelQuery(info: BackendInfo, timeoutMs: number, clock: Clock): Promise<boolean> | undefined {
  if (typeof info.processID !== 'number' || typeof info.secretKey !== 'number') return undefined;
  const host = info.connectionParameters?.host ?? info.host ?? '127.0.0.1';
  const port = info.connectionParameters?.port ?? info.port ?? 5432;
  return sendCancelRequest({ host, port, processID: info.processID, secretKey: info.secretKey }, timeoutMs, {
    clock,
  });
}

async function runQuery(
  pool: PgPool,
  args: readonly unknown[],
  ctx: ExecutionContext,
  cancelTimeoutMs: number,
): Promise<unknown> {
  const signal = ctx.signal;
  const client = await pool.connect();
  // A checked-out pg client emits 'error' when its connection breaks (a reset,
  // the server killed). With no listener that event would end the process.
  let lost: Error | undefined;
  const onError = (error: Error): void => {
    lost ??= error;
  };
  client.on('error', onError);
  // The call may have ended while it waited for a connection.
  if (signal.aborted) {
    giveBack(client, onError);
    throw signal.reason;
  }
  let query: Promise<unknown>;
  try {
    query = client.query(...args);
  } catch (error) {
    // Refused before anything was sent (a malformed query): the client is fine.
    giveBack(client, onError);
    throw error;
  }
  const ended = query.then(
    (value): Outcome => ({ ok: true, value }),
    (error: unknown): Outcome => ({ ok: false, error }),
  );
  // Two bounded waits for the query's end (`ended` never rejects): first
  // against the call's signal; once that aborts, the query is cancelled on the
  // server and gets cancelTimeoutMs to end, after which its client is closed.
  let outcome: Outcome | typeof ABANDONED;
  let cancelled: Promise<boolean> | undefined;
  try {
    outcome = await bounded(() => ended, { clock: ctx.clock, signal });
  } catch {
    const at = ctx.clock.now() + cancelTimeoutMs;
    cancelled = cancelQuery(client as BackendInfo, cancelTimeoutMs, ctx.clock);
    outcome = await bounded(() => ended, {
      at,
      clock: ctx.clock,
      expired: abandoned,
      ownTimer: true,
      unref: true,
    }).catch(abandoned);
  }
  if (outcome === ABANDONED) {
    // Neither the query's end nor the server's answer to the cancel came back
    // within cancelTimeoutMs: the connection is unusable. Closing it makes
    // pg reject the query; the caller has had the signal's reason already.
    destroy(
      client,
      new Error(
        `the query did not end within cancelTimeoutMs (${cancelTimeoutMs} ms) after its call was aborted`,
      ),
    );
    throw signal.reason;
  }
  // A cancelled backend is safe to reuse once its query has ended, which it
  // has now, and once the server has processed the cancel (it closes the side
  // connection then), so the cancel cannot hit the next query. A cancel whose
  // fate is unknown (false) might still land: that backend is not reused.
  const cancelConfirmed = cancelled === undefined ? true : await cancelled;
  if (lost !== undefined) {
    destroy(client, lost);
    if (outcome.ok) return outcome.value;
    throw new ConnectionLostError(lost);
  }
  if (!cancelConfirmed) {
    destroy(client, new Error('the cancel of the query was not confirmed by the server'));
  } else if (!outcome.ok && !isServerError(outcome.error)) {
    // Not an answer from the server (pg's query_timeout, a protocol error):
    // the connection may be out of step with the server.
    destroy(client, outcome.error instanceof Error ? outcome.error : new Error(String(outcome.error)));
  } else {
    giveBack(client, onError);
  }
  if (outcome.ok) return outcome.value;
  throw outcome.error;
}

/**
 * Runs every `pool.query(...)` through `policy`, and cancels the query on the
 * server when the call's signal aborts — at the deadline or attempt timeout, or
 * when the caller's own signal aborts (`db.query(text, values, { signal })`) —
 * so the database stops working on an answer nobody will read. Each query runs
 * on a client checked out for it; cancellation is the protocol's CancelRequest
 * (what `pg_cancel_backend()` does) on a side connection, so it works even when
 * the pool is exhausted.
 *
 * ```ts
 * const db = withQueryPolicy(new pg.Pool(), pipeline(deadline(2_000), retry()));
 * await db.query('select * from orders where id = $1', [id], { signal: request.bulwark.signal });
 * ```
 *
 * A connection that breaks during a query (the server killed, a reset) rejects
 * the call with {@link ConnectionLostError} and never reaches the process as an
 * unhandled 'error' event; the broken client is removed from the pool. A query
 * that has not ended `cancelTimeoutMs` after its call was aborted has its
 * client closed and removed, so a silent network cannot exhaust the pool.
 *
 * Every other property and method of the pool is its own. Callback-style
 * queries are refused (the policy could not see their outcome).
 */
export function withQueryPolicy<P extends PgPool>(
  pool: P,
  policy: Policy,
  options?: QueryPolicyOptions,
): QueryPolicyPool<P> {
  const check = new OptionsChecker('withQueryPolicy()');
  check.knownKeys(options, QUERY_POLICY_KEYS);
  check.expect(
    typeof pool === 'object' && pool !== null && typeof pool.connect === 'function',
    'pool',
    pool,
    'a pg Pool',
  );
  check.string('operation', options?.operation);
  check.number('cancelTimeoutMs', options?.cancelTimeoutMs, { above: 0 });
  check.done();
  const operation = options?.operation ?? 'pg.query';
  const cancelTimeoutMs = options?.cancelTimeoutMs ?? DEFAULT_CANCEL_TIMEOUT_MS;
  return wrapMethods(pool as PgPool, policy, {
    methods: ['query'],
    operation: () => operation,
    callOptions: splitQueryArgs,
    invoke: (call, ctx) => runQuery(pool, call.args, ctx, cancelTimeoutMs),
  }) as QueryPolicyPool<P>;
}
