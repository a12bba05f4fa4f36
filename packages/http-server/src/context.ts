import type { BulkheadPermit } from '@bulwark/bulkhead';
import type { Clock } from '@bulwark/clock';
import { Deadline } from '@bulwark/deadline';
import { ABORTED, abortsCounter } from './telemetry.ts';

/**
 * What a server adapter tells a handler about its request: `request.bulwark`
 * (Fastify), `req.bulwark` (Express), or the third argument of a
 * `bulwarkHttp()` handler.
 */
export interface BulwarkRequestContext {
  /**
   * Aborts at the request's deadline (reason: a `DeadlineExceededError`) or when
   * the client closes the connection before the response is complete (reason:
   * a `DOMException` named `AbortError`). Pass it to every call the handler makes.
   */
  readonly signal: AbortSignal;
  /** The request's deadline on the adapter's clock, or undefined when it has none. */
  readonly deadline: Deadline | undefined;
  /** The header the budget came from, or undefined (no header, or the default budget). */
  readonly deadlineHeader: string | undefined;
  /** The key of a request to an idempotent route, once it holds that key; otherwise undefined. */
  readonly idempotencyKey: string | undefined;
  /** Milliseconds left before the deadline; Infinity when there is none. */
  remainingMs(): number;
}

/** The reason `signal` aborts with when the client goes away. */
function clientClosed(): DOMException {
  return new DOMException('the client closed the connection before the response was complete', 'AbortError');
}

/**
 * One request's deadline, abort signal and bulkhead slot. The slot is given
 * back exactly once: at the deadline, or when the response closes, whichever
 * comes first.
 */
export class RequestScope implements BulwarkRequestContext {
  readonly deadline: Deadline | undefined;
  readonly deadlineHeader: string | undefined;
  idempotencyKey: string | undefined;
  /**
   * Set by an adapter while it sends the handler's own response (for example
   * while the idempotency record is written): the deadline then leaves the
   * response to the adapter instead of answering 504.
   */
  responding = false;
  readonly #controller = new AbortController();
  #permit: BulkheadPermit | undefined;
  readonly #onExpire: (() => void) | undefined;
  #expired = false;
  #closed = false;

  /**
   * @param onTimeout called once at the deadline, after the signal aborted and
   *   the slot went back, unless the response had already closed: it ends the
   *   request (504, or the connection closed when the response had started).
   */
  constructor(
    timeoutMs: number,
    header: string | undefined,
    permit: BulkheadPermit | undefined,
    clock: Clock,
    onTimeout?: (scope: RequestScope) => void,
  ) {
    this.deadlineHeader = header;
    this.#permit = permit;
    if (timeoutMs !== Number.POSITIVE_INFINITY) {
      const deadline = Deadline.after(timeoutMs, { clock });
      this.deadline = deadline;
      const onExpire = (): void => {
        if (this.#closed) return;
        this.#expired = true;
        this.#controller.abort(deadline.signal.reason);
        abortsCounter.add(1, ABORTED.deadline);
        this.#settle('dropped');
        onTimeout?.(this);
      };
      this.#onExpire = onExpire;
      deadline.signal.addEventListener('abort', onExpire, { once: true });
    }
  }

  /** True once the deadline fired before the response closed. */
  get expired(): boolean {
    return this.#expired;
  }

  /** Gives the slot back, once, telling an adaptive limit how the request went. */
  #settle(outcome: 'dropped' | 'release' | 'failure' | 'success'): void {
    const permit = this.#permit;
    if (permit === undefined) return;
    this.#permit = undefined;
    permit[outcome]();
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  remainingMs(): number {
    return this.deadline === undefined ? Number.POSITIVE_INFINITY : this.deadline.remaining();
  }

  /**
   * The response closed: `finished` (the response was ended) tells a complete
   * response from a client that went away first. Aborts the signal in the second case, drops the
   * deadline's timer and gives the bulkhead slot back (unless the deadline
   * already did), telling an adaptive limit how the request went. Later calls do nothing.
   */
  close(finished: boolean, status: number): void {
    if (this.#closed) return;
    this.#closed = true;
    const signal = this.#controller.signal;
    if (!finished && !signal.aborted) {
      abortsCounter.add(1, ABORTED.disconnect);
      this.#controller.abort(clientClosed());
    }
    if (this.deadline !== undefined) {
      this.deadline.signal.removeEventListener('abort', this.#onExpire!);
      this.deadline.dispose();
    }
    if (!finished) this.#settle('release');
    else if (status >= 500) this.#settle('failure');
    else this.#settle('success');
  }
}
