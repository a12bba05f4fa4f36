export {
  type BackendKey,
  type CancelRequestOptions,
  DEFAULT_CANCEL_TIMEOUT_MS,
  sendCancelRequest,
} from './cancel.ts';
export {
  type PgPool,
  type PgPooledClient,
  type PgQueryResult,
  type QueryCallOptions,
  type QueryPolicyOptions,
  type QueryPolicyPool,
  withQueryPolicy,
} from './deadline-pool.ts';
export { ConnectionLostError } from './errors.ts';
export {
  DEFAULT_POSTGRES_TABLE,
  type PgQueryable,
  PostgresIdempotencyStore,
  type PostgresStoreOptions,
  postgresIdempotencyStore,
  type QueryResult,
} from './postgres-store.ts';
