import { randomUUID } from 'node:crypto';
import type { BreakerSnapshot, BreakerStateStore } from '@bulwark/circuit-breaker';
import { type Clock, systemClock } from '@bulwark/clock';
import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import { listenForClientErrors } from '@bulwark/idempotency/authoring';
import { FleetStoreError } from './errors.ts';
import { checkScriptClient, type RedisScriptClient, runScriptWithin, script } from './run-script.ts';
import { BREAKER_CLOSE, BREAKER_OPEN, BREAKER_READ } from './scripts.ts';

/** Options for {@link redisBreakerStore}. */
export interface RedisBreakerStoreOptions {
  /**
   * How many distinct instances must have opened a breaker within `windowMs`
   * before the others open it too. An integer >= 1; 1 lets any single instance
   * open the fleet. Default: 2.
   */
  readonly quorum?: number | undefined;
  /**
   * How far back an instance's open counts towards the quorum, in
   * milliseconds on the Redis server's clock. Default: 30,000.
   */
  readonly windowMs?: number | undefined;
  /**
   * How often a closed breaker that is taking calls reads the fleet's verdict,
   * in milliseconds on the breaker's clock: at most one round trip per
   * breaker key per interval, none while the breaker is idle or open.
   * Default: 1,000.
   */
  readonly syncIntervalMs?: number | undefined;
  /**
   * The longest one Redis command may take, in milliseconds on `clock`; a
   * command still unanswered then fails with a `FleetStoreError` (`timeout`).
   * Default: 1,000.
   */
  readonly timeoutMs?: number | undefined;
  /** This instance's identity among the fleet's opens. Default: a random UUID per store. */
  readonly instanceId?: string | undefined;
  /**
   * Prepended to every breaker key; the key itself is wrapped in a Redis
   * Cluster hash tag (`prefix{key}`). Default: `"bulwark:breaker:"`.
   */
  readonly prefix?: string | undefined;
  /** The monotonic clock for `timeoutMs`. Default: `systemClock`. */
  readonly clock?: Clock | undefined;
}

const BREAKER_STORE_KEYS = optionKeys<RedisBreakerStoreOptions>({
  quorum: true,
  windowMs: true,
  syncIntervalMs: true,
  timeoutMs: true,
  instanceId: true,
  prefix: true,
  clock: true,
});

/** The defaults of {@link RedisBreakerStoreOptions}. */
export const REDIS_BREAKER_STORE_DEFAULTS = Object.freeze({
  quorum: 2,
  windowMs: 30_000,
  syncIntervalMs: 1_000,
  timeoutMs: 1_000,
  prefix: 'bulwark:breaker:',
});

/** Counters of a {@link RedisBreakerStore}, since it was made. */
export interface RedisBreakerStoreStats {
  /** Scripts sent to Redis (publishes and reads). */
  readonly roundTrips: number;
  /** Commands that failed, timed out or found a corrupt value. */
  readonly failures: number;
  /** Of those, commands that did not answer within `timeoutMs`. */
  readonly timeouts: number;
}

const open = script(BREAKER_OPEN);
const close = script(BREAKER_CLOSE);
const read = script(BREAKER_READ);

/**
 * Shared breaker state on Redis. An instance publishes its own opens (one
 * round trip per transition, none per call); a breaker opens because of the
 * fleet only when `quorum` distinct instances opened within `windowMs`, so one
 * bad instance cannot open the others. Closing stays local: a close withdraws
 * this instance's open and nothing more, and every instance probes for itself.
 * Failures never change local behaviour: the breaker reports them through
 * `onError` and keeps deciding on its own.
 */
export class RedisBreakerStore implements BreakerStateStore {
  readonly quorum: number;
  readonly windowMs: number;
  readonly syncIntervalMs: number;
  readonly timeoutMs: number;
  readonly instanceId: string;
  readonly prefix: string;
  readonly #client: RedisScriptClient;
  readonly #clock: Clock;
  #roundTrips = 0;
  #failures = 0;
  #timeouts = 0;

  constructor(client: RedisScriptClient, options: RedisBreakerStoreOptions = {}) {
    const check = new OptionsChecker('redisBreakerStore()');
    check.knownKeys(options, BREAKER_STORE_KEYS);
    checkScriptClient(check, client);
    check.number('quorum', options.quorum, { integer: true, min: 1 });
    check.number('windowMs', options.windowMs, { above: 0 });
    check.number('syncIntervalMs', options.syncIntervalMs, { above: 0 });
    check.number('timeoutMs', options.timeoutMs, { above: 0 });
    check.expect(
      options.instanceId === undefined ||
        (typeof options.instanceId === 'string' && options.instanceId !== ''),
      'instanceId',
      options.instanceId,
      'a non-empty string',
    );
    check.string('prefix', options.prefix);
    check.clock('clock', options.clock, true);
    check.done();
    listenForClientErrors(client);
    this.#client = client;
    this.#clock = options.clock ?? systemClock;
    const d = REDIS_BREAKER_STORE_DEFAULTS;
    this.quorum = options.quorum ?? d.quorum;
    this.windowMs = options.windowMs ?? d.windowMs;
    this.syncIntervalMs = options.syncIntervalMs ?? d.syncIntervalMs;
    this.timeoutMs = options.timeoutMs ?? d.timeoutMs;
    this.instanceId = options.instanceId ?? randomUUID();
    this.prefix = options.prefix ?? d.prefix;
  }

  /** The Redis key of breaker `key`: one hash, in one Cluster slot. */
  redisKey(key: string): string {
    return `${this.prefix}{${key}}`;
  }

  stats(): RedisBreakerStoreStats {
    return { roundTrips: this.#roundTrips, failures: this.#failures, timeouts: this.#timeouts };
  }

  /**
   * Publishes a transition: an open (or an isolation, counted as an open for
   * `windowMs`) records this instance's vote, a close withdraws it, a change
   * to half-open sends nothing.
   */
  async publish(key: string, snapshot: BreakerSnapshot): Promise<void> {
    if (snapshot.state === 'half-open') return;
    const redisKey = this.redisKey(key);
    const reply =
      snapshot.state === 'closed'
        ? await this.#run(close, redisKey, [this.instanceId], 'publish')
        : await this.#run(
            open,
            redisKey,
            [
              this.instanceId,
              String(Math.ceil(snapshot.state === 'open' ? snapshot.openRemainingMs : this.windowMs)),
              String(Math.ceil(this.windowMs)),
              String(snapshot.trips),
            ],
            'publish',
          );
    this.#check(reply, redisKey, 'publish');
  }

  /**
   * The fleet's verdict: an open state for as long as `quorum` instances that
   * opened within `windowMs` are still open, or undefined.
   */
  async read(key: string): Promise<BreakerSnapshot | undefined> {
    const redisKey = this.redisKey(key);
    const reply = await this.#run(
      read,
      redisKey,
      [String(this.quorum), String(Math.ceil(this.windowMs))],
      'read',
    );
    this.#check(reply, redisKey, 'read');
    const r = reply as unknown[];
    if (r[0] !== 'open') return undefined;
    return { version: 1, state: 'open', openRemainingMs: Number(r[1]), trips: Number(r[3]) };
  }

  async #run(s: typeof open, redisKey: string, args: string[], operation: string): Promise<unknown> {
    this.#roundTrips++;
    try {
      return await runScriptWithin(
        this.#client,
        s,
        [redisKey],
        args,
        this.timeoutMs,
        this.#clock,
        'breaker-state',
        operation,
      );
    } catch (error) {
      this.#failures++;
      if (error instanceof FleetStoreError && error.reason === 'timeout') this.#timeouts++;
      throw error;
    }
  }

  #check(reply: unknown, redisKey: string, operation: string): void {
    const r = reply as unknown[];
    const status = Array.isArray(r) ? r[0] : undefined;
    if (status === 'ok' || status === 'open' || status === 'closed') return;
    this.#failures++;
    const detail =
      status === 'foreign'
        ? `the key holds a ${String(r[1])}, not a hash of breaker opens (it was written outside bulwark)`
        : status === 'corrupt'
          ? `field ${JSON.stringify(String(r[1]))} is not "openedAt:until:trips" (it was written outside bulwark); delete the key`
          : `unexpected reply ${JSON.stringify(reply)}`;
    throw new FleetStoreError('breaker-state', operation, redisKey, 'corrupt', detail);
  }
}

/**
 * Shared circuit breaker state on Redis (or Redis Cluster) through a
 * node-redis client. Pass it as a breaker's `store`:
 * `circuitBreaker({ name: 'payments', store: redisBreakerStore(client, { quorum: 2 }) })`.
 */
export function redisBreakerStore(
  client: RedisScriptClient,
  options?: RedisBreakerStoreOptions,
): RedisBreakerStore {
  return new RedisBreakerStore(client, options);
}
