import type { SemaphoreAcquireResult, SemaphoreHolder, SemaphoreStore } from '@bulwark/bulkhead';
import { type Clock, systemClock } from '@bulwark/clock';
import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import { listenForClientErrors } from '@bulwark/idempotency/authoring';
import { FleetStoreError } from './errors.ts';
import {
  checkScriptClient,
  type RedisScriptClient,
  runScriptWithin,
  type Script,
  script,
} from './run-script.ts';
import { SEMAPHORE_ACQUIRE, SEMAPHORE_RELEASE, SEMAPHORE_RENEW } from './scripts.ts';

/** Options for {@link redisSemaphoreStore}. */
export interface RedisSemaphoreStoreOptions {
  /**
   * Prepended to every limit's key; the key itself is wrapped in a Redis
   * Cluster hash tag (`prefix{key}`). Default: `"bulwark:semaphore:"`.
   */
  readonly prefix?: string | undefined;
  /**
   * How long a limit's hash is kept after its last acquire or renewal, in
   * milliseconds on the server's clock (garbage collection of abandoned
   * limits only; it decides no permit). Default: 600,000 (10 minutes).
   */
  readonly retainMs?: number | undefined;
  /**
   * The longest one Redis command may take, in milliseconds on `clock`; then it
   * fails with a `FleetStoreError` (`timeout`). Default: 1,000.
   */
  readonly timeoutMs?: number | undefined;
  /** The monotonic clock for `timeoutMs`. Default: `systemClock`. */
  readonly clock?: Clock | undefined;
}

const SEMAPHORE_STORE_KEYS = optionKeys<RedisSemaphoreStoreOptions>({
  prefix: true,
  retainMs: true,
  timeoutMs: true,
  clock: true,
});

/** The defaults of {@link RedisSemaphoreStoreOptions}. */
export const REDIS_SEMAPHORE_STORE_DEFAULTS = Object.freeze({
  prefix: 'bulwark:semaphore:',
  retainMs: 600_000,
  timeoutMs: 1_000,
});

const acquireScript = script(SEMAPHORE_ACQUIRE);
const renewScript = script(SEMAPHORE_RENEW);
const releaseScript = script(SEMAPHORE_RELEASE);

/**
 * The permits of `distributedBulkhead()` on Redis: one hash per limit, one
 * field per holder with its renewal counter. Acquire, renew and release are
 * each one Lua script (one round trip).
 */
export class RedisSemaphoreStore implements SemaphoreStore {
  readonly prefix: string;
  readonly retainMs: number;
  readonly timeoutMs: number;
  readonly #client: RedisScriptClient;
  readonly #clock: Clock;

  constructor(client: RedisScriptClient, options: RedisSemaphoreStoreOptions = {}) {
    const check = new OptionsChecker('redisSemaphoreStore()');
    check.knownKeys(options, SEMAPHORE_STORE_KEYS);
    checkScriptClient(check, client);
    check.string('prefix', options.prefix);
    check.number('retainMs', options.retainMs, { integer: true, min: 1 });
    check.number('timeoutMs', options.timeoutMs, { above: 0 });
    check.clock('clock', options.clock, true);
    check.done();
    listenForClientErrors(client);
    this.#client = client;
    this.#clock = options.clock ?? systemClock;
    const d = REDIS_SEMAPHORE_STORE_DEFAULTS;
    this.prefix = options.prefix ?? d.prefix;
    this.retainMs = options.retainMs ?? d.retainMs;
    this.timeoutMs = options.timeoutMs ?? d.timeoutMs;
  }

  /** The Redis key of limit `key`: one hash, in one Cluster slot. */
  redisKey(key: string): string {
    return `${this.prefix}{${key}}`;
  }

  async acquire(
    key: string,
    holder: string,
    limit: number,
    suspects: readonly SemaphoreHolder[],
  ): Promise<SemaphoreAcquireResult> {
    const args = [holder, String(limit), String(this.retainMs)];
    for (const s of suspects) args.push(s.holder, String(s.renewals));
    const redisKey = this.redisKey(key);
    const r = await this.#run(acquireScript, redisKey, args, 'acquire');
    if (r[0] === 'acquired') return { acquired: true };
    const all = r[1] as unknown[];
    const holders: SemaphoreHolder[] = [];
    for (let i = 0; i < all.length; i += 2) {
      const renewals = Number(all[i + 1]);
      if (!Number.isSafeInteger(renewals) || renewals < 0) {
        throw new FleetStoreError(
          'semaphore',
          'acquire',
          redisKey,
          'corrupt',
          `holder ${JSON.stringify(String(all[i]))} has renewal count ${JSON.stringify(String(all[i + 1]))}, not an integer (it was written outside bulwark); delete the key`,
        );
      }
      holders.push({ holder: String(all[i]), renewals });
    }
    return { acquired: false, holders };
  }

  async renew(key: string, holder: string): Promise<boolean> {
    const r = await this.#run(renewScript, this.redisKey(key), [holder, String(this.retainMs)], 'renew');
    return r[0] === 'ok';
  }

  async release(key: string, holder: string): Promise<boolean> {
    const r = await this.#run(releaseScript, this.redisKey(key), [holder], 'release');
    return r[0] === 'ok';
  }

  async #run(s: Script, redisKey: string, args: string[], operation: string): Promise<unknown[]> {
    const reply = await runScriptWithin(
      this.#client,
      s,
      [redisKey],
      args,
      this.timeoutMs,
      this.#clock,
      'semaphore',
      operation,
    );
    const r = reply as unknown[];
    const status = Array.isArray(r) ? r[0] : undefined;
    if (status === 'foreign') {
      throw new FleetStoreError(
        'semaphore',
        operation,
        redisKey,
        'corrupt',
        `the key holds a ${String(r[1])}, not a hash of permit holders (it was written outside bulwark)`,
      );
    }
    if (status !== 'ok' && status !== 'lost' && status !== 'acquired' && status !== 'full') {
      throw new FleetStoreError(
        'semaphore',
        operation,
        redisKey,
        'corrupt',
        `unexpected reply ${JSON.stringify(reply)}`,
      );
    }
    return r;
  }
}

/** The permits of a `distributedBulkhead()` on Redis (or Redis Cluster) through a node-redis client. */
export function redisSemaphoreStore(
  client: RedisScriptClient,
  options?: RedisSemaphoreStoreOptions,
): RedisSemaphoreStore {
  return new RedisSemaphoreStore(client, options);
}
