import type { Clock, Timer } from '@bulwark/clock';
import { deadlineTimers, describeValue } from '@bulwark/clock/authoring';
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
 * Runs `s` within `timeoutMs` on `clock`, counted from `startedAt` (a reading
 * of `clock`; default: now): a command that fails or does not
 * answer in time rejects with a {@link FleetStoreError} (the command itself is
 * left to the client, which the store cannot cancel). The timeout is a deadline
 * on the clock's shared {@link deadlineTimers} (never early, at most about a
 * millisecond late), so a command that answers in time costs no timer of its own.
 *
 * A deadline that falls due does not fail the command at once: it waits one
 * more timer of 0 ms (on the timeout path only), so the event loop polls for
 * I/O first. After the process stalled past the deadline (a long synchronous
 * task, a starved CPU), Node.js runs due timers before it reads the sockets
 * again, and a reply that arrived during the stall would otherwise be reported
 * as no answer.
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
  startedAt: number = clock.now(),
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const options = { keys, arguments: args };
    let grace: Timer | undefined;
    const timedOut = (): void =>
      reject(new FleetStoreError(store, operation, keys[0]!, 'timeout', `no answer within ${timeoutMs} ms`));
    const timer = deadlineTimers(clock).schedule(
      startedAt + timeoutMs,
      () => {
        // Read what already arrived before calling it no answer (see above).
        grace = clock.setTimeout(timedOut, 0, UNREF);
      },
      UNREF,
    );
    const answered = (value: unknown): void => {
      timer.clear();
      grace?.clear();
      resolve(value);
    };
    const failed = (error: unknown): void => {
      timer.clear();
      grace?.clear();
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
    };
    let first: Promise<unknown>;
    try {
      first = client.evalSha(s.sha, options);
    } catch (error) {
      failed(error);
      return;
    }
    // One reaction on the command's own promise; the source is sent only when
    // the server answers that it lacks the script.
    first.then(answered, (error: unknown) => {
      if (!isNoScript(error)) {
        failed(error);
        return;
      }
      let second: Promise<unknown>;
      try {
        second = client.eval(s.source, options);
      } catch (error) {
        failed(error);
        return;
      }
      second.then(answered, failed);
    });
  });
}

const UNREF = Object.freeze({ unref: true });
