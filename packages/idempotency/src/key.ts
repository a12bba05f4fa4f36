import { type Clock, systemClock } from '@bulwark/clock';
import { CallbackError, type ExecutionContext, type Operation } from '@bulwark/core';
import { BasePolicy, OptionsChecker, optionKeys, withIdempotencyKey } from '@bulwark/core/authoring';
import { monotonicFactory } from 'ulid';
import { assertIdempotencyKey } from './header.ts';

const KEY_KEYS = optionKeys<IdempotencyKeyOptions>({ generate: true, clock: true });

const nextUlid = monotonicFactory();

/**
 * A new idempotency key: a ULID from a monotonic factory, so keys made in the
 * same millisecond still sort in the order they were made. 26 characters of
 * Crockford base32; its first 10 encode the wall-clock time of creation (an
 * identifier, never used to measure time).
 */
export function newIdempotencyKey(): string {
  return nextUlid();
}

/** Options for {@link idempotencyKey}. */
export interface IdempotencyKeyOptions {
  /** Makes a key for a logical operation. Default: {@link newIdempotencyKey}. */
  readonly generate?: (() => string) | undefined;
  /** The clock of the contexts this policy creates when called with `execute`. Default: systemClock. */
  readonly clock?: Clock | undefined;
}

/**
 * Gives each logical operation one idempotency key, before any retry runs, and
 * exposes it as `ctx.idempotencyKey`. Place it outside the retry:
 * `pipeline(idempotencyKey(), retry(), timeout(1000))`. A key already in the
 * context (from `execute(fn, { idempotencyKey })` or an outer policy) is kept.
 */
export class IdempotencyKeyPolicy extends BasePolicy {
  readonly #generate: () => string;

  constructor(options: IdempotencyKeyOptions = {}) {
    const check = new OptionsChecker('idempotencyKey()');
    check.knownKeys(options, KEY_KEYS);
    check.func('generate', options.generate);
    check.clock('clock', options.clock, true);
    check.done();
    super(options.clock ?? systemClock);
    this.#generate = options.generate ?? newIdempotencyKey;
  }

  run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
    if (ctx.idempotencyKey !== undefined) return fn(ctx);
    let key: string;
    try {
      key = this.#generate();
    } catch (error) {
      throw new CallbackError('generate', error);
    }
    assertIdempotencyKey(key);
    return fn(withIdempotencyKey(ctx, key));
  }
}

/** A policy that assigns one idempotency key per logical operation. See {@link IdempotencyKeyPolicy}. */
export function idempotencyKey(options?: IdempotencyKeyOptions): IdempotencyKeyPolicy {
  return new IdempotencyKeyPolicy(options);
}
