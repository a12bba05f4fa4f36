import { type BulkheadPolicy, bulkhead } from '@bulwark/bulkhead';
import { type CircuitBreakerPolicy, circuitBreaker, failureRate } from '@bulwark/circuit-breaker';
import type { Clock, Random } from '@bulwark/clock';
import {
  type Backoff,
  type ExecutionContext,
  isBulwarkError,
  type Operation,
  type Outcome,
  type Policy,
  pipeline,
} from '@bulwark/core';
import { BasePolicy, type OptionHints, OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import { deadline, timeout } from '@bulwark/deadline';
import {
  exponential,
  type RetryBudget,
  type RetryOn,
  type RetryPolicy,
  retry,
  retryBudget,
} from '@bulwark/retry';
import { RETRY_OPTION_HINTS } from '@bulwark/retry/authoring';

/** `T` with every property present and none undefined: options after defaults are applied. */
type Resolved<T> = { readonly [K in keyof T]-?: Exclude<T[K], undefined> };

const DATABASE_PRESET_KEYS = optionKeys<DatabaseClientPresetOptions>({
  name: true,
  deadlineMs: true,
  attemptTimeoutMs: true,
  maxAttempts: true,
  backoff: true,
  budget: true,
  retryOn: true,
  failureOn: true,
  maxConcurrent: true,
  maxQueue: true,
  queueTimeoutMs: true,
  failureRateThreshold: true,
  minimumCalls: true,
  failureWindowMs: true,
  openMs: true,
  clock: true,
  random: true,
});

const DATABASE_PRESET_HINTS: OptionHints = {
  ...RETRY_OPTION_HINTS,
  timeout: 'use attemptTimeoutMs for one attempt, deadlineMs for the whole call',
  timeoutMs: 'use attemptTimeoutMs for one attempt, deadlineMs for the whole call',
  maxRetryTime: 'use deadlineMs',
  resetTimeout: "use openMs (opossum's resetTimeout)",
  halfOpenAfter: "use openMs (cockatiel's halfOpenAfter)",
  errorThresholdPercentage: 'use failureRateThreshold (a share in (0, 1]: percentage / 100)',
  volumeThreshold: 'use minimumCalls',
  rollingCountTimeout: 'use failureWindowMs',
  capacity: 'use maxConcurrent',
  errorFilter: 'use failureOn',
};

/** Options for {@link databaseClient}. Every duration is in milliseconds. */
export interface DatabaseClientPresetOptions {
  /** A name for telemetry (the breaker's and the bulkhead's). Default: `'database'`. */
  readonly name?: string | undefined;
  /** The whole budget of one call, every attempt and wait included. Default: 5,000. */
  readonly deadlineMs?: number | undefined;
  /** The limit of one attempt (capped by the time left). Default: 2,000. */
  readonly attemptTimeoutMs?: number | undefined;
  /** Attempts in all, counting the first. Default: 2. */
  readonly maxAttempts?: number | undefined;
  /** The wait between attempts. Default: `exponential({ initialMs: 50, maxMs: 1_000 })` (full jitter). */
  readonly backoff?: Backoff | undefined;
  /** A retry budget shared with other policies, or `false` for none. Default: a new `retryBudget()`. */
  readonly budget?: RetryBudget | false | undefined;
  /** Which outcomes to retry. Default: {@link isSafeDatabaseRetry}. */
  readonly retryOn?: RetryOn | undefined;
  /** Which errors count against the database in the breaker. Default: {@link isDatabaseFailure}. */
  readonly failureOn?: ((error: unknown) => boolean) | undefined;
  /** Queries allowed at once; match it to the pool's size. Default: 10. */
  readonly maxConcurrent?: number | undefined;
  /** Queries allowed to wait for a slot. Default: 100. */
  readonly maxQueue?: number | undefined;
  /** The longest a query may wait for a slot. Default: 1,000. */
  readonly queueTimeoutMs?: number | undefined;
  /** The failure rate (0, 1] that opens the breaker. Default: 0.5. */
  readonly failureRateThreshold?: number | undefined;
  /** Calls the breaker's window must hold before the rate is judged. Default: 20. */
  readonly minimumCalls?: number | undefined;
  /** The breaker's window, in milliseconds (kept in 10 buckets). Default: 10,000. */
  readonly failureWindowMs?: number | undefined;
  /** How long the breaker stays open before a probe. Default: 5,000. */
  readonly openMs?: number | undefined;
  readonly clock?: Clock | undefined;
  readonly random?: Random | undefined;
}

/** The defaults of {@link databaseClient}. */
export const DATABASE_CLIENT_DEFAULTS = Object.freeze({
  name: 'database',
  deadlineMs: 5_000,
  attemptTimeoutMs: 2_000,
  maxAttempts: 2,
  backoff: Object.freeze({ initialMs: 50, maxMs: 1_000 }),
  maxConcurrent: 10,
  maxQueue: 100,
  queueTimeoutMs: 1_000,
  failureRateThreshold: 0.5,
  minimumCalls: 20,
  failureWindowMs: 10_000,
  openMs: 5_000,
});

/**
 * SQLSTATE codes after which a statement certainly did not take effect, so
 * running it again is safe: serialization failure and deadlock (the
 * transaction was rolled back), and the server refusing new connections.
 */
export const SAFE_RETRY_SQLSTATES: ReadonlySet<string> = new Set(['40001', '40P01', '57P03']);

/** Socket errors raised before a query could reach the server. */
const NOT_CONNECTED_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'EAI_AGAIN', 'ENOTFOUND']);

/**
 * SQLSTATE classes that say the database (not the query) is unwell: connection
 * exceptions (08), insufficient resources (53), operator intervention (57),
 * system errors (58) and internal errors (XX).
 */
const UNHEALTHY_SQLSTATE_CLASSES: ReadonlySet<string> = new Set(['08', '53', '57', '58', 'XX']);

function codeOf(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/**
 * SQLSTATEs are five characters of digits and capitals. A Node.js errno name
 * (`EPIPE`, `EIO`: an E and capitals only) is a socket error, not a SQLSTATE.
 */
function isSqlState(code: string): boolean {
  return /^[0-9A-Z]{5}$/.test(code) && !/^E[A-Z]+$/.test(code);
}

/**
 * The database preset's retry classifier: retries only errors after which the
 * statement surely did not run (see {@link SAFE_RETRY_SQLSTATES}, and a
 * connection that was never made). A reset connection or an attempt timeout is
 * not retried: the statement may have committed, and a second run of a write
 * is a duplicate.
 */
export function isSafeDatabaseRetry(outcome: Outcome): boolean {
  if (outcome.ok) return false;
  const code = codeOf(outcome.error);
  return code !== undefined && (SAFE_RETRY_SQLSTATES.has(code) || NOT_CONNECTED_CODES.has(code));
}

/**
 * The database preset's breaker classifier. It counts errors that say the
 * database is unwell: timeouts, socket errors, the SQLSTATE classes in
 * `UNHEALTHY_SQLSTATE_CLASSES`, and errors with no code at all (drivers raise
 * a lost connection that way: node-postgres's "Connection terminated
 * unexpectedly" has none). It does not count errors in the query itself (a
 * unique violation, a syntax error: any other SQLSTATE), programming errors
 * raised before the query reached the server (a `TypeError`, `RangeError` or
 * `SyntaxError` with no code), bulwark's own refusals, or the caller's abort.
 */
export function isDatabaseFailure(error: unknown): boolean {
  if (isBulwarkError(error, 'ERR_DEADLINE_EXCEEDED')) return true;
  if (isBulwarkError(error)) return false; // a bulwark refusal is not the database's doing
  if (error instanceof Error && error.name === 'AbortError') return false;
  const code = codeOf(error);
  if (code === undefined)
    return !(error instanceof TypeError || error instanceof RangeError || error instanceof SyntaxError);
  if (isSqlState(code)) return UNHEALTHY_SQLSTATE_CLASSES.has(code.slice(0, 2));
  return true;
}

/**
 * A ready-made policy for database calls: deadline → retry (safe errors only,
 * with a budget) → breaker → bulkhead → attempt timeout. Use it with
 * `wrapMethods(pool, preset, { methods: ['query'] })`, or with
 * `withQueryPolicy` from `@bulwark/postgres` so that a query still running at
 * its deadline is cancelled on the server.
 */
export class DatabaseClientPreset extends BasePolicy {
  /** The resolved options (frozen). */
  readonly options: Resolved<Omit<DatabaseClientPresetOptions, 'budget' | 'clock' | 'random'>>;
  readonly retry: RetryPolicy;
  readonly breaker: CircuitBreakerPolicy;
  readonly bulkhead: BulkheadPolicy;
  readonly budget: RetryBudget | undefined;
  readonly #pipeline: Policy;

  constructor(options: DatabaseClientPresetOptions = {}) {
    super(options.clock);
    const d = DATABASE_CLIENT_DEFAULTS;
    const check = new OptionsChecker('presets.databaseClient()');
    check.knownKeys(options, DATABASE_PRESET_KEYS, DATABASE_PRESET_HINTS);
    check.deadlineAndAttempt(options.deadlineMs, options.attemptTimeoutMs);
    check.number('maxAttempts', options.maxAttempts, { integer: true, min: 1 });
    check.number('maxConcurrent', options.maxConcurrent, { integer: true, min: 1 });
    check.number('maxQueue', options.maxQueue, { integer: true, min: 0 });
    check.number('queueTimeoutMs', options.queueTimeoutMs, { min: 0, infinite: true });
    check.number('failureRateThreshold', options.failureRateThreshold, { above: 0, max: 1 });
    check.number('minimumCalls', options.minimumCalls, { integer: true, min: 1 });
    check.number('failureWindowMs', options.failureWindowMs, { above: 0 });
    check.expect(
      options.backoff === undefined || typeof options.backoff?.delayMs === 'function',
      'backoff',
      options.backoff,
      'a backoff from @bulwark/retry (an object with delayMs())',
    );
    check.number('openMs', options.openMs, { min: 0 });
    check.func('retryOn', options.retryOn);
    check.func('failureOn', options.failureOn);
    check.clock('clock', options.clock, true);
    check.done();
    const clock = this.clock;
    const resolved = Object.freeze({
      name: options.name ?? d.name,
      deadlineMs: options.deadlineMs ?? d.deadlineMs,
      attemptTimeoutMs: options.attemptTimeoutMs ?? d.attemptTimeoutMs,
      maxAttempts: options.maxAttempts ?? d.maxAttempts,
      backoff: options.backoff ?? exponential({ initialMs: d.backoff.initialMs, maxMs: d.backoff.maxMs }),
      maxConcurrent: options.maxConcurrent ?? d.maxConcurrent,
      maxQueue: options.maxQueue ?? d.maxQueue,
      queueTimeoutMs: options.queueTimeoutMs ?? d.queueTimeoutMs,
      failureRateThreshold: options.failureRateThreshold ?? d.failureRateThreshold,
      minimumCalls: options.minimumCalls ?? d.minimumCalls,
      failureWindowMs: options.failureWindowMs ?? d.failureWindowMs,
      openMs: options.openMs ?? d.openMs,
      retryOn: options.retryOn ?? isSafeDatabaseRetry,
      failureOn: options.failureOn ?? isDatabaseFailure,
    });
    this.options = resolved;
    this.budget = options.budget === false ? undefined : (options.budget ?? retryBudget({ clock }));
    const random = options.random;
    this.retry = retry({
      maxAttempts: resolved.maxAttempts,
      backoff: resolved.backoff,
      retryOn: resolved.retryOn,
      ...(this.budget === undefined ? {} : { budget: this.budget }),
      clock,
      ...(random === undefined ? {} : { random }),
    });
    const failureOn = resolved.failureOn;
    this.breaker = circuitBreaker({
      name: resolved.name,
      trip: failureRate({
        threshold: resolved.failureRateThreshold,
        minimumCalls: resolved.minimumCalls,
        window: { kind: 'time', ms: resolved.failureWindowMs, buckets: 10 },
      }),
      openMs: resolved.openMs,
      failureOn: (outcome) => !outcome.ok && failureOn(outcome.error),
      clock,
    });
    this.bulkhead = bulkhead({
      name: resolved.name,
      maxConcurrent: resolved.maxConcurrent,
      maxQueue: resolved.maxQueue,
      queueTimeoutMs: resolved.queueTimeoutMs,
      clock,
    });
    this.#pipeline = pipeline(
      deadline(resolved.deadlineMs, { clock }),
      this.retry,
      this.breaker,
      this.bulkhead,
      timeout(resolved.attemptTimeoutMs, { clock }),
    );
  }

  run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
    return this.#pipeline.run(fn, ctx);
  }
}

/** The database preset; see {@link DatabaseClientPreset}. */
export function databaseClient(options?: DatabaseClientPresetOptions): DatabaseClientPreset {
  return new DatabaseClientPreset(options);
}
