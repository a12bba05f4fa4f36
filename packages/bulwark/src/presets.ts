import { databaseClient } from './database-preset.ts';
import { httpClient } from './http-preset.ts';

/**
 * Ready-made compositions with documented defaults:
 *
 * - `presets.httpClient(options)`: a `fetch` with deadline → retry with a
 *   budget → per-origin breaker → per-origin bulkhead → attempt timeout
 *   (see `HTTP_CLIENT_DEFAULTS`);
 * - `presets.databaseClient(options)`: deadline → retry (safe errors only,
 *   with a budget) → breaker → bulkhead → attempt timeout, as one policy (see
 *   `DATABASE_CLIENT_DEFAULTS`).
 */
export const presets = Object.freeze({ httpClient, databaseClient });
