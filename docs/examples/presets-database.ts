import { withQueryPolicy } from '@bulwark/postgres';
import { presets } from 'bulwark';
import pg from 'pg';

// Match maxConcurrent to the pool's size: the bulkhead then queues (briefly) in
// front of the pool instead of letting callers pile up inside it.
const policy = presets.databaseClient({ name: 'orders-db', maxConcurrent: 10, deadlineMs: 2_000 });
policy.breaker.onStateChange(({ from, to }) => console.warn(`orders-db breaker: ${from} -> ${to}`));

// An 'error' listener is required: the pool emits 'error' when an idle connection
// dies, and without a listener the process exits.
const pool = new pg.Pool({ max: 10 });
pool.on('error', (error) => console.error('orders-db:', error.message));
// withQueryPolicy cancels a query on the server when its time is up.
export const db = withQueryPolicy(pool, policy);
export const { rows } = await db.query('select id, total from orders where customer = $1', ['c-42']);
