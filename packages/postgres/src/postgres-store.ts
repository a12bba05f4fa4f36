import { StoreUnavailableError } from '@bulwark/core';
import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import type { BeginOutcome, BeginRequest, IdempotencyStore } from '@bulwark/idempotency';
import { listenForClientErrors } from '@bulwark/idempotency/authoring';

const POSTGRES_STORE_KEYS = optionKeys<PostgresStoreOptions>({ table: true });

/** A query result, as `pg` returns it. */
export interface QueryResult {
  rows: unknown[];
  rowCount: number | null;
}

/** The part of a `pg` Pool (or Client) the store uses. */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<QueryResult>;
}

/** Options for {@link postgresIdempotencyStore}. */
export interface PostgresStoreOptions {
  /**
   * The table, optionally schema-qualified (`"app.idempotency"`). Letters,
   * digits and underscores only. Default: `"bulwark_idempotency"`.
   */
  readonly table?: string | undefined;
}

/** The default of {@link PostgresStoreOptions.table}. */
export const DEFAULT_POSTGRES_TABLE = 'bulwark_idempotency';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$/;

function quoteTable(table: string): string {
  return table
    .split('.')
    .map((part) => `"${part}"`)
    .join('.');
}

function ms(param: string): string {
  return `make_interval(secs => ${param}::float8 / 1000)`;
}

interface BeginRow {
  acquired: boolean;
  state: string;
  fingerprint: string;
  payload: string | null;
  owner: string | null;
  renewals: number | string | null;
}

/**
 * An idempotency store on PostgreSQL. Begin is one `INSERT … ON CONFLICT DO
 * UPDATE` that takes the key when it is absent or past its retention, or when
 * the guard asks to take over an owner it saw stop renewing (a compare-and-set
 * on owner and renewal count), and otherwise returns the record as it is;
 * renew, complete and release are one statement each, guarded by the owner
 * token. The server's `now()` decides only how long records are kept, never
 * whether a lease is live.
 */
export class PostgresIdempotencyStore implements IdempotencyStore {
  readonly table: string;
  readonly #pool: PgQueryable;
  readonly #sql: {
    migrate: string[];
    begin: string;
    renew: string;
    complete: string;
    release: string;
    purge: string;
  };

  constructor(pool: PgQueryable, options: PostgresStoreOptions = {}) {
    const check = new OptionsChecker('postgresIdempotencyStore()');
    check.knownKeys(options, POSTGRES_STORE_KEYS);
    check.expect(typeof pool?.query === 'function', 'pool', pool, 'a pg Pool or Client (with query)');
    check.expect(
      options.table === undefined || (typeof options.table === 'string' && IDENTIFIER.test(options.table)),
      'table',
      options.table,
      'a table name of letters, digits and underscores, optionally schema-qualified',
    );
    check.done();
    // A pool emits 'error' when an idle connection dies: never a crash.
    listenForClientErrors(pool);
    this.#pool = pool;
    this.table = options.table ?? DEFAULT_POSTGRES_TABLE;
    const t = quoteTable(this.table);
    // Past retention (garbage), or the owner and renewal count the guard saw
    // unchanged for a lease interval on its own clock ($5, $6; NULL for none).
    const takeover = `(r.expires_at <= now() OR (r.state = 'in_progress' AND r.owner = $5::text AND r.renewals = $6::bigint))`;
    const pick = (column: string, fresh: string) =>
      `${column} = CASE WHEN ${takeover} THEN ${fresh} ELSE r.${column} END`;
    this.#sql = {
      // One statement, so one transaction: the advisory lock makes processes that
      // migrate at the same time take turns (concurrent CREATE … IF NOT EXISTS
      // can otherwise fail on the catalog's unique indexes). The table name is a
      // checked identifier, so it cannot end the dollar quote.
      migrate: [
        `DO $bulwark$ BEGIN
          PERFORM pg_advisory_xact_lock(hashtext('bulwark_idempotency_migrate'), hashtext('${this.table}'));
          CREATE TABLE IF NOT EXISTS ${t} (
            key text PRIMARY KEY,
            fingerprint text NOT NULL,
            state text NOT NULL CHECK (state IN ('in_progress', 'completed')),
            owner text,
            payload text,
            lease_until timestamptz,
            expires_at timestamptz NOT NULL,
            renewals bigint NOT NULL DEFAULT 0
          );
          -- Tables created by earlier versions get the renewal counter.
          ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS renewals bigint NOT NULL DEFAULT 0;
          CREATE INDEX IF NOT EXISTS "${this.table.replace('.', '_')}_expires_at" ON ${t} (expires_at);
        END $bulwark$`,
      ],
      // DO UPDATE (rather than DO NOTHING) locks the row and returns its latest
      // committed version, so a concurrent begin always sees the winner's record.
      // lease_until is kept (now + retention) only for guards of earlier
      // versions sharing the table, which read it as the lease expiry.
      begin: `INSERT INTO ${t} AS r (key, fingerprint, state, owner, payload, renewals, lease_until, expires_at)
        VALUES ($1, $2, 'in_progress', $3, NULL, 0, now() + ${ms('$4')}, now() + ${ms('$4')})
        ON CONFLICT (key) DO UPDATE SET
          ${pick('fingerprint', 'excluded.fingerprint')},
          ${pick('state', 'excluded.state')},
          ${pick('owner', 'excluded.owner')},
          ${pick('payload', 'NULL')},
          ${pick('renewals', '0')},
          ${pick('lease_until', 'excluded.lease_until')},
          ${pick('expires_at', 'excluded.expires_at')}
        RETURNING coalesce(owner = $3, false) AS acquired, state, fingerprint, payload, owner, renewals`,
      renew: `UPDATE ${t} SET renewals = renewals + 1, lease_until = now() + ${ms('$3')},
          expires_at = now() + ${ms('$3')}
        WHERE key = $1 AND owner = $2 AND state = 'in_progress'`,
      complete: `UPDATE ${t} SET state = 'completed', payload = $3, owner = NULL, lease_until = NULL,
          expires_at = now() + ${ms('$4')}
        WHERE key = $1 AND owner = $2 AND state = 'in_progress'`,
      release: `DELETE FROM ${t} WHERE key = $1 AND owner = $2 AND state = 'in_progress'`,
      purge: `DELETE FROM ${t} WHERE expires_at <= now()`,
    };
  }

  /**
   * Creates the table and its index if they do not exist, in one statement.
   * Safe to run at every start, from several processes at once.
   */
  async migrate(): Promise<void> {
    for (const statement of this.#sql.migrate) await this.#pool.query(statement);
  }

  /** Deletes expired records; returns how many. Run it now and then (records past their TTL are ignored anyway). */
  async purgeExpired(): Promise<number> {
    return (await this.#pool.query(this.#sql.purge)).rowCount ?? 0;
  }

  async begin(request: BeginRequest): Promise<BeginOutcome> {
    const result = await this.#pool.query(this.#sql.begin, [
      request.key,
      request.fingerprint,
      request.token,
      request.retainMs,
      request.takeover?.owner ?? null,
      request.takeover?.renewals ?? null,
    ]);
    const row = result.rows[0] as BeginRow | undefined;
    if (row === undefined) throw new Error('the begin statement returned no row');
    if (row.acquired) return { status: 'acquired' };
    if (row.fingerprint !== request.fingerprint) return { status: 'mismatch' };
    if (row.state === 'completed') {
      // complete() always writes a payload, so a NULL one means the row was
      // changed outside bulwark. Fail closed as for any store fault: the guard
      // must neither run fn again nor replay a result it does not have.
      if (row.payload === null) {
        throw new StoreUnavailableError(
          'begin',
          new Error(
            `the completed record for key ${JSON.stringify(request.key)} in table ${this.table} has a NULL payload (it was changed outside bulwark); delete the row to let the key execute again`,
          ),
          { store: 'idempotency', reason: 'corrupt', key: request.key },
        );
      }
      return { status: 'completed', payload: row.payload };
    }
    if (row.owner === null || row.renewals === null) {
      throw new StoreUnavailableError(
        'begin',
        new Error(
          `the in-progress record for key ${JSON.stringify(request.key)} in table ${this.table} has a NULL owner (it was changed outside bulwark); delete the row to let the key execute again`,
        ),
        { store: 'idempotency', reason: 'corrupt', key: request.key },
      );
    }
    return { status: 'in-progress', owner: row.owner, renewals: Number(row.renewals) };
  }

  async renew(key: string, token: string, retainMs: number): Promise<boolean> {
    return (await this.#pool.query(this.#sql.renew, [key, token, retainMs])).rowCount === 1;
  }

  async complete(key: string, token: string, payload: string, ttlMs: number): Promise<boolean> {
    return (await this.#pool.query(this.#sql.complete, [key, token, payload, ttlMs])).rowCount === 1;
  }

  async release(key: string, token: string): Promise<boolean> {
    return (await this.#pool.query(this.#sql.release, [key, token])).rowCount === 1;
  }
}

/**
 * An idempotency store on PostgreSQL through a `pg` Pool. Call `migrate()` once
 * (it is idempotent). Give the pool `connectionTimeoutMillis` and
 * `query_timeout` so that an unreachable server fails fast, and an `'error'`
 * listener of your own (to log). A pool that has no `'error'` listener when
 * the store is made gets one that ignores the event, so that an idle
 * connection dying does not crash the process.
 */
export function postgresIdempotencyStore(
  pool: PgQueryable,
  options?: PostgresStoreOptions,
): PostgresIdempotencyStore {
  return new PostgresIdempotencyStore(pool, options);
}
