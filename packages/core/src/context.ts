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

/** The context a policy's `execute` starts from. */
class RootContext implements ExecutionContext {
  readonly attempt = 1;
  readonly deadline: number | undefined;
  readonly clock: Clock;
  readonly operation: string | undefined;
  readonly idempotencyKey: string | undefined;
  #signal: AbortSignal | undefined;

  constructor(clock: Clock, options: ExecuteOptions | undefined) {
    this.clock = clock;
    this.deadline = ambientDeadline(clock);
    this.#signal = options?.signal;
    this.operation = options?.operation;
    this.idempotencyKey = options?.idempotencyKey;
  }

  get signal(): AbortSignal {
    // Without a caller signal, nothing can abort the root: a fresh signal that
    // never aborts, made only if something reads it.
    this.#signal ??= new AbortController().signal;
    return this.#signal;
  }
}

/** Creates the context for a new call on `clock`, picking up the deadline in scope. */
export function rootContext(clock: Clock, options?: ExecuteOptions): ExecutionContext {
  return new RootContext(clock, options);
}

/** A context that differs from its parent in attempt or idempotency key, and shares its signal. */
class DerivedContext implements ExecutionContext {
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
 * The signal, its AbortController and the listener on the parent's signal are
 * created only when something reads `signal`. Call {@link release} when the call
 * settles so that a long-lived parent signal does not collect listeners.
 */
export class ScopedContext implements ExecutionContext {
  readonly #parent: ExecutionContext;
  readonly deadline: number | undefined;
  #controller: AbortController | undefined;
  #listening: AbortSignal | undefined;
  #onParentAbort: (() => void) | undefined;
  #aborted = false;
  #released = false;
  #reason: unknown;

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
    if (this.#controller !== undefined) return this.#controller.signal;
    const controller = new AbortController();
    this.#controller = controller;
    if (this.#aborted) {
      controller.abort(this.#reason);
    } else {
      const parent = this.#parent.signal;
      if (parent.aborted) {
        controller.abort(parent.reason);
      } else if (!this.#released) {
        this.#onParentAbort = () => {
          this.#listening = undefined;
          this.abort(parent.reason);
        };
        parent.addEventListener('abort', this.#onParentAbort, { once: true });
        this.#listening = parent;
      }
    }
    return controller.signal;
  }

  /** Aborts this context's signal with `reason` (once; later calls do nothing). */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#release();
    this.#controller?.abort(reason);
  }

  /**
   * Stops following the parent's signal. Call it when the call settles. A
   * signal first read after this does not follow the parent either, so code
   * that outlives its call cannot leave a listener on a long-lived signal.
   */
  release(): void {
    this.#released = true;
    this.#release();
  }

  #release(): void {
    if (this.#listening !== undefined) {
      this.#listening.removeEventListener('abort', this.#onParentAbort!);
      this.#listening = undefined;
    }
    // The listener's closure holds the parent's signal: let both go with the call.
    this.#onParentAbort = undefined;
  }
}
