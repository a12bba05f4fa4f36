import { StoreUnavailableError } from '@bulwark/core';
import { OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import type { BeginOutcome, BeginRequest, IdempotencyStore } from '@bulwark/idempotency';
import { listenForClientErrors } from '@bulwark/idempotency/authoring';
import { checkScriptClient, type RedisScriptClient, runScript, type Script, script } from './run-script.ts';
import { BEGIN, COMPLETE, RELEASE, RENEW } from './scripts.ts';

const REDIS_STORE_KEYS = optionKeys<RedisStoreOptions>({ prefix: true });

/** Options for {@link redisIdempotencyStore}. */
export interface RedisStoreOptions {
  /** Prepended to every idempotency key to make the Redis key. Default: `"bulwark:idempotency:"`. */
  readonly prefix?: string | undefined;
}

/** The default of {@link RedisStoreOptions.prefix}. */
export const DEFAULT_REDIS_PREFIX = 'bulwark:idempotency:';

const begin = script(BEGIN);
const renew = script(RENEW);
const complete = script(COMPLETE);
const release = script(RELEASE);

/**
 * An idempotency store on Redis. Each step is one Lua script, run with EVALSHA
 * (falling back to EVAL once, when the server does not have the script yet), so
 * beginning is one round trip, each renewal one and completing one. The
 * server's clock decides only how long records are kept (`PEXPIRE`): whether an
 * owner still holds its lease is judged by the guard from the record's renewal
 * counter, on the guard's own monotonic clock.
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  readonly prefix: string;
  readonly #client: RedisScriptClient;

  constructor(client: RedisScriptClient, options: RedisStoreOptions = {}) {
    const check = new OptionsChecker('redisIdempotencyStore()');
    check.knownKeys(options, REDIS_STORE_KEYS);
    checkScriptClient(check, client);
    check.string('prefix', options.prefix);
    check.done();
    listenForClientErrors(client);
    this.#client = client;
    this.prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
  }

  #run(s: Script, key: string, args: string[]): Promise<unknown> {
    return runScript(this.#client, s, [this.prefix + key], args);
  }

  async begin(request: BeginRequest): Promise<BeginOutcome> {
    const reply = (await this.#run(begin, request.key, [
      request.fingerprint,
      request.token,
      String(Math.ceil(request.retainMs)),
      request.takeover?.owner ?? '',
      String(request.takeover?.renewals ?? 0),
    ])) as unknown[];
    const status = String(reply[0]);
    switch (status) {
      case 'acquired':
        return { status: 'acquired' };
      case 'mismatch':
        return { status: 'mismatch' };
      case 'completed':
        // The complete script always sets the payload field, so a missing one
        // means the hash was changed outside bulwark: fail closed, naming the key.
        if (reply[1] === null || reply[1] === undefined) {
          throw new StoreUnavailableError(
            'begin',
            new Error(
              `the completed record for key ${JSON.stringify(request.key)} (Redis key ${JSON.stringify(this.prefix + request.key)}) has no payload field (it was changed outside bulwark); delete it to let the key execute again`,
            ),
            { store: 'idempotency', reason: 'corrupt', key: request.key },
          );
        }
        return { status: 'completed', payload: String(reply[1]) };
      case 'in-progress':
        // The begin and renew scripts always set the owner field.
        if (reply[1] === null || reply[1] === undefined) {
          throw new StoreUnavailableError(
            'begin',
            new Error(
              `the in-progress record for key ${JSON.stringify(request.key)} (Redis key ${JSON.stringify(this.prefix + request.key)}) has no owner field (it was changed outside bulwark); delete it to let the key execute again`,
            ),
            { store: 'idempotency', reason: 'corrupt', key: request.key },
          );
        }
        return { status: 'in-progress', owner: String(reply[1]), renewals: Number(reply[2]) };
      default:
        throw new Error(`unexpected reply from the begin script: ${JSON.stringify(reply)}`);
    }
  }

  async renew(key: string, token: string, retainMs: number): Promise<boolean> {
    return Number(await this.#run(renew, key, [token, String(Math.ceil(retainMs))])) === 1;
  }

  async complete(key: string, token: string, payload: string, ttlMs: number): Promise<boolean> {
    return Number(await this.#run(complete, key, [token, payload, String(Math.ceil(ttlMs))])) === 1;
  }

  async release(key: string, token: string): Promise<boolean> {
    return Number(await this.#run(release, key, [token])) === 1;
  }
}

/**
 * An idempotency store on Redis through a node-redis client (package `redis`).
 * Give the client short timeouts and `disableOfflineQueue: true` so that an
 * unreachable server fails fast (the guard then fails closed), and an `'error'`
 * listener of your own (to log). A client that has no `'error'` listener when
 * the store is made gets one that ignores the event, so that losing Redis
 * does not crash the process: while the client reconnects, every command
 * fails and the guard refuses requests with `StoreUnavailableError`.
 */
export function redisIdempotencyStore(
  client: RedisScriptClient,
  options?: RedisStoreOptions,
): RedisIdempotencyStore {
  return new RedisIdempotencyStore(client, options);
}
