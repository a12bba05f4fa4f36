import { type Clock, describeValue } from '@bulwark/clock';
import type { OptionsChecker } from '@bulwark/core/authoring';
import { FleetStoreError, type FleetStoreKind } from './errors.ts';
import { sha1 } from './scripts.ts';

/** Arguments of a script call, as node-redis takes them. */
export interface ScriptArguments {
  keys: string[];
  arguments: string[];
}

/**
 * The part of a node-redis client (`createClient()` from `redis`, v5) the
 * stores use: `eval` and `evalSha`. A cluster client or a wrapper with these
 * two methods works too.
 */
export interface RedisScriptClient {
  eval(script: string, options: ScriptArguments): Promise<unknown>;
  evalSha(sha1: string, options: ScriptArguments): Promise<unknown>;
}

/** A Lua script and its SHA-1, computed once. */
export interface Script {
  readonly source: string;
  readonly sha: string;
}

/** Adds a violation to `check` unless `client` has the `eval` and `evalSha` every store calls. */
export function checkScriptClient(check: OptionsChecker, client: unknown): void {
  const c = client as Partial<RedisScriptClient> | null | undefined;
  check.expect(
    typeof c?.eval === 'function' && typeof c.evalSha === 'function',
    'client',
    client,
    'a node-redis client (with eval and evalSha)',
  );
}

export function script(source: string): Script {
  return { source, sha: sha1(source) };
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/** Runs `s` by its SHA, and by its source once when the server does not have it yet. */
export function runScript(
  client: RedisScriptClient,
  s: Script,
  keys: string[],
  args: string[],
): Promise<unknown> {
  const options = { keys, arguments: args };
  let first: Promise<unknown>;
  try {
    first = client.evalSha(s.sha, options);
  } catch (error) {
    return Promise.reject(error);
  }
  return first.then(undefined, (error: unknown) => {
    if (!isNoScript(error)) throw error;
    return client.eval(s.source, options);
  });
}

/**
 * Runs `s` within `timeoutMs` on `clock`: a command that fails or does not
 * answer in time rejects with a {@link FleetStoreError} (the command itself is
 * left to the client, which the store cannot cancel).
 */
export function runScriptWithin(
  client: RedisScriptClient,
  s: Script,
  keys: string[],
  args: string[],
  timeoutMs: number,
  clock: Clock,
  store: FleetStoreKind,
  operation: string,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = clock.setTimeout(
      () =>
        reject(
          new FleetStoreError(store, operation, keys[0]!, 'timeout', `no answer within ${timeoutMs} ms`),
        ),
      timeoutMs,
      { unref: true },
    );
    let pending: Promise<unknown>;
    try {
      pending = runScript(client, s, keys, args);
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (value) => {
        timer.clear();
        resolve(value);
      },
      (error: unknown) => {
        timer.clear();
        reject(
          new FleetStoreError(
            store,
            operation,
            keys[0]!,
            'unavailable',
            error instanceof Error ? error.message : describeValue(error),
            error,
          ),
        );
      },
    );
  });
}
