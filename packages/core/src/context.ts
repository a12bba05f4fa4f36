import type { Clock } from '@bulwark/clock';
import { ambientDeadline } from './deadline-scope.ts';

/** What a policy passes to the function it runs. */
export interface ExecutionContext {
  /**
   * Aborts when the caller aborts or when a deadline or timeout around this
   * call fires. Created lazily: reading it is what makes one exist.
   */
  readonly signal: AbortSignal;
  /** 1 for the first attempt, then 2, 3, … under a retry. */
  readonly attempt: number;
  /** The absolute instant (on {@link clock}) by which the call must finish, or undefined. */
  readonly deadline: number | undefined;
  /** The clock every time in this context is measured on. */
  readonly clock: Clock;
  /** A name for the logical operation, used in telemetry. */
  readonly operation: string | undefined;
  /** The idempotency key of the logical operation, when one was assigned. */
  readonly idempotencyKey: string | undefined;
}

/** Options for {@link Policy.execute}. */
export interface ExecuteOptions {
  /** The caller's signal. When it aborts, the call rejects with its reason, unchanged. */
  readonly signal?: AbortSignal | undefined;
  /** A name for the logical operation, used in telemetry. */
  readonly operation?: string | undefined;
  /** An idempotency key the caller already has for this operation. */
  readonly idempotencyKey?: string | undefined;
}

/** The function a policy runs. */
export type Operation<T> = (ctx: ExecutionContext) => T | PromiseLike<T>;

/** Milliseconds left before the context's deadline: Infinity when it has none, never negative. */
export function remainingMs(ctx: ExecutionContext): number {
  const deadline = ctx.deadline;
  if (deadline === undefined) return Number.POSITIVE_INFINITY;
  return Math.max(0, deadline - ctx.clock.now());
}

/**
 * How a {@link ScopedContext} follows its parent's abort without the parent's
 * signal: `follow` answers {@link NEVER} when the parent can never abort, the
 * scope that will abort the child itself (the child must `unfollow` it when
 * it stops following), or undefined when the child must listen to
 * `parent.signal` instead. Private to this copy of the package: a context from
 * another copy is followed through its signal.
 */
const FOLLOW: unique symbol = Symbol('bulwark.follow');
const NEVER = 0;
type Followed = ScopedContext | typeof NEVER | undefined;

/** What a scope aborts when it aborts: a scope under it, or an AbortController (see {@link followAbort}). */
interface Follower {
  abort(reason: unknown): void;
}

interface Followable {
  [FOLLOW]?(child: Follower): Followed;
}

/** `follower` stops following `scope` (set by ScopedContext, which alone can reach its followers). */
let unfollowScope: (scope: ScopedContext, follower: Follower) => void;

/** The context a policy's `execute` starts from. */
class RootContext implements ExecutionContext {
  readonly attempt = 1;
  readonly deadline: number | undefined;
  readonly clock: Clock;
  readonly operation: string | undefined;
  readonly idempotencyKey: string | undefined;
  readonly #caller: AbortSignal | undefined;
  #signal: AbortSignal | undefined;

  constructor(clock: Clock, options: ExecuteOptions | undefined) {
    this.clock = clock;
    this.deadline = ambientDeadline(clock);
    this.#caller = this.#signal = options?.signal;
    this.operation = options?.operation;
    this.idempotencyKey = options?.idempotencyKey;
  }

  get signal(): AbortSignal {
    // Without a caller signal, nothing can abort the root: a fresh signal that
    // never aborts, made only if something reads it.
    this.#signal ??= new AbortController().signal;
    return this.#signal;
  }

  /** Without a caller signal, nothing can abort the root: nothing to follow. */
  [FOLLOW](): Followed {
    return this.#caller === undefined ? NEVER : undefined;
  }
}

/** Creates the context for a new call on `clock`, picking up the deadline in scope. */
export function rootContext(clock: Clock, options?: ExecuteOptions): ExecutionContext {
  return new RootContext(clock, options);
}

/**
 * A context that differs from its parent in attempt or idempotency key, and
 * shares its signal: a scope under it follows the parent's abort as directly
 * as a scope under the parent would. Extend it to carry something of your own
 * down a pipeline (the origin an attempt goes to, say).
 */
export class DerivedContext implements ExecutionContext {
  readonly #parent: ExecutionContext;
  readonly attempt: number;
  readonly idempotencyKey: string | undefined;

  constructor(parent: ExecutionContext, attempt: number, idempotencyKey: string | undefined) {
    this.#parent = parent;
    this.attempt = attempt;
    this.idempotencyKey = idempotencyKey;
  }
  get signal(): AbortSignal {
    return this.#parent.signal;
  }
  /** @internal A scope under this context follows its parent. */
  [FOLLOW](child: Follower): Followed {
    return (this.#parent as Followable)[FOLLOW]?.(child);
  }
  get deadline(): number | undefined {
    return this.#parent.deadline;
  }
  get clock(): Clock {
    return this.#parent.clock;
  }
  get operation(): string | undefined {
    return this.#parent.operation;
  }
}

/** The context for attempt number `attempt` of a call. */
export function withAttempt(parent: ExecutionContext, attempt: number): ExecutionContext {
  return new DerivedContext(parent, attempt, parent.idempotencyKey);
}

/** The context for a call that carries idempotency key `key`. */
export function withIdempotencyKey(parent: ExecutionContext, key: string): ExecutionContext {
  return new DerivedContext(parent, parent.attempt, key);
}

/**
 * A context with a deadline of its own and a signal that can be aborted
 * independently of its parent's (while still following the parent's abort).
 *
 * The signal and its AbortController are created only when something reads
 * `signal`. Reading it makes the scope follow its parent: a parent scope of
 * this package aborts its followers directly, so the signals of the scopes in
 * between are never made; a root context without a caller signal can never
 * abort, so nothing follows it; anything else is followed through a listener
 * on its signal. Call {@link release} when the call settles so that a
 * long-lived parent does not keep followers.
 */
export class ScopedContext implements ExecutionContext {
  readonly #parent: ExecutionContext;
  readonly deadline: number | undefined;
  /** ABORTED, RELEASED and FOLLOWING. */
  #flags = 0;
  /** What only a scope whose signal was read, or that aborted, needs: made then. */
  #link: ScopeLink | undefined = undefined;

  constructor(parent: ExecutionContext, deadline: number | undefined) {
    this.#parent = parent;
    this.deadline = deadline;
  }

  get attempt(): number {
    return this.#parent.attempt;
  }
  get clock(): Clock {
    return this.#parent.clock;
  }
  get operation(): string | undefined {
    return this.#parent.operation;
  }
  get idempotencyKey(): string | undefined {
    return this.#parent.idempotencyKey;
  }

  get signal(): AbortSignal {
    const link = this.#linked();
    if (link.controller !== undefined) return link.controller.signal;
    const controller = new AbortController();
    link.controller = controller;
    if ((this.#flags & ABORTED) !== 0) controller.abort(link.reason);
    else this.#follow();
    return controller.signal;
  }

  /** Starts following the parent's abort, once, unless released or aborted. */
  #follow(): void {
    if ((this.#flags & (FOLLOWING | RELEASED | ABORTED)) !== 0) return;
    this.#flags |= FOLLOWING;
    const parent = this.#parent;
    const followed = (parent as Followable)[FOLLOW]?.(this);
    if (followed === NEVER) return;
    const link = this.#linked();
    if (followed !== undefined) {
      if ((this.#flags & ABORTED) === 0) link.followed = followed;
      return;
    }
    const signal = parent.signal;
    if (signal.aborted) {
      this.abort(signal.reason);
      return;
    }
    link.onParentAbort = () => {
      link.listening = undefined;
      this.abort(signal.reason);
    };
    signal.addEventListener('abort', link.onParentAbort, { once: true });
    link.listening = signal;
  }

  /** @internal `child` follows this scope: it is aborted when this scope is. */
  [FOLLOW](child: Follower): Followed {
    if ((this.#flags & (RELEASED | ABORTED)) === RELEASED) return NEVER;
    this.#follow();
    if ((this.#flags & ABORTED) !== 0) {
      child.abort(this.#link!.reason);
      return NEVER;
    }
    if ((this.#flags & RELEASED) !== 0) return NEVER;
    const link = this.#linked();
    if (link.followers === undefined) link.followers = [child];
    else link.followers.push(child);
    return this;
  }

  /** `child` stopped following this scope. */
  #unfollow(child: Follower): void {
    const followers = this.#link?.followers;
    if (followers === undefined) return;
    const i = followers.indexOf(child);
    if (i !== -1) followers.splice(i, 1);
  }

  /** Aborts this context's signal with `reason` (once; later calls do nothing). */
  abort(reason: unknown): void {
    if ((this.#flags & ABORTED) !== 0) return;
    this.#flags |= ABORTED;
    const link = this.#linked();
    link.reason = reason;
    this.#unlink(link);
    link.controller?.abort(reason);
    // One at a time, so that a follower released meanwhile (it unfollows) is not aborted.
    const followers = link.followers;
    if (followers !== undefined) {
      for (let follower = followers.shift(); follower !== undefined; follower = followers.shift()) {
        follower.abort(reason);
      }
      link.followers = undefined;
    }
  }

  /**
   * Stops following the parent's signal. Call it when the call settles. A
   * signal first read after this does not follow the parent either, so code
   * that outlives its call cannot leave a listener on a long-lived signal.
   */
  release(): void {
    this.#flags |= RELEASED;
    const link = this.#link;
    if (link !== undefined) {
      this.#unlink(link);
      link.followers = undefined;
    }
  }

  #linked(): ScopeLink {
    let link = this.#link;
    if (link === undefined) {
      link = new ScopeLink();
      this.#link = link;
    }
    return link;
  }

  static {
    unfollowScope = (scope, follower) => scope.#unfollow(follower);
  }

  /** Stops following the parent. */
  #unlink(link: ScopeLink): void {
    if (link.followed !== undefined) {
      link.followed.#unfollow(this);
      link.followed = undefined;
    }
    if (link.listening !== undefined) {
      link.listening.removeEventListener('abort', link.onParentAbort!);
      link.listening = undefined;
    }
    // The listener's closure holds the parent's signal: let both go with the call.
    link.onParentAbort = undefined;
  }
}

const ABORTED = 1;
const RELEASED = 2;
const FOLLOWING = 4;

const ONCE = Object.freeze({ once: true });
const stayFollowing = (): void => {};

/**
 * Makes `controller` abort, with `ctx`'s reason, when `ctx`'s signal aborts,
 * as a scope under `ctx` would: a {@link ScopedContext} of this package (or a
 * context derived from one) aborts it directly, without a listener and
 * without making a signal of its own; a root context without a caller signal
 * never aborts, so nothing is done; any other context is followed through a
 * listener on its signal. When `ctx` has already aborted, `controller` is
 * aborted at once.
 *
 * Returns the function that stops following: call it as soon as the
 * controller no longer needs to (an attempt's controller once its answer is
 * in), so that a long-lived context does not keep it.
 */
export function followAbort(ctx: ExecutionContext, controller: AbortController): () => void {
  const followed = (ctx as Followable)[FOLLOW]?.(controller);
  if (followed === NEVER) return stayFollowing;
  if (followed !== undefined) return () => unfollowScope(followed, controller);
  const signal = ctx.signal;
  if (signal.aborted) {
    controller.abort(signal.reason);
    return stayFollowing;
  }
  const onAbort = (): void => controller.abort(signal.reason);
  signal.addEventListener('abort', onAbort, ONCE);
  return () => signal.removeEventListener('abort', onAbort);
}

/** The part of a {@link ScopedContext} that only a read signal or an abort needs. */
class ScopeLink {
  controller: AbortController | undefined = undefined;
  /** The scope that aborts this one, when it follows one directly. */
  followed: ScopedContext | undefined = undefined;
  /** The parent's signal, when the scope follows it through a listener. */
  listening: AbortSignal | undefined = undefined;
  onParentAbort: (() => void) | undefined = undefined;
  /** Scopes and controllers that follow this one (most often one at a time, the current attempt's). */
  followers: Follower[] | undefined = undefined;
  reason: unknown = undefined;
}
