/** Something that can be released, with both `dispose()` and `Symbol.dispose`. */
export interface Disposable {
  dispose(): void;
  [Symbol.dispose](): void;
}

/** A listener for one kind of event. */
export type Listener<E> = (event: E) => void;

class Subscription<E> implements Disposable {
  #hub: EventHub<E> | undefined;
  readonly listener: Listener<E>;
  constructor(hub: EventHub<E>, listener: Listener<E>) {
    this.#hub = hub;
    this.listener = listener;
  }
  dispose(): void {
    this.#hub?._unsubscribe(this);
    this.#hub = undefined;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * A typed event channel. `subscribe` returns a Disposable; `emit` is a no-op
 * when nobody listens, and callers check {@link listening} before building a
 * payload so that an unobserved event costs nothing.
 *
 * A listener that throws never breaks the policy that emitted: the error is
 * reported as a process warning and the other listeners still run.
 */
export class EventHub<E> {
  #subs: Subscription<E>[] = [];
  readonly #name: string;

  /** @param name shown in the warning when a listener throws, e.g. `"retry.onRetry"`. */
  constructor(name: string) {
    this.#name = name;
  }

  /** True when at least one listener is subscribed. */
  get listening(): boolean {
    return this.#subs.length > 0;
  }

  /** Adds a listener; dispose the result to remove it. */
  subscribe(listener: Listener<E>): Disposable {
    if (typeof listener !== 'function') {
      throw new TypeError(`${this.#name}: listener must be a function, got ${typeof listener}`);
    }
    const sub = new Subscription(this, listener);
    this.#subs = [...this.#subs, sub];
    return sub;
  }

  /** @internal */
  _unsubscribe(sub: Subscription<E>): void {
    this.#subs = this.#subs.filter((s) => s !== sub);
  }

  /** Calls every listener with `event`. */
  emit(event: E): void {
    // Copy-on-write array: listeners added or removed during emit take effect next time.
    const subs = this.#subs;
    for (let i = 0; i < subs.length; i++) {
      try {
        subs[i]!.listener(event);
      } catch (error) {
        reportListenerError(this.#name, error);
      }
    }
  }
}

/** Reports a listener or observer that threw as a process warning: it never breaks the caller. */
export function reportListenerError(name: string, error: unknown): void {
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.emitWarning(`a ${name} listener threw: ${detail}`, { code: 'BULWARK_LISTENER_ERROR' });
}

/** A Disposable that runs `release` once. */
export function disposable(release: () => void): Disposable {
  let done = false;
  const dispose = (): void => {
    if (done) return;
    done = true;
    release();
  };
  return { dispose, [Symbol.dispose]: dispose };
}
