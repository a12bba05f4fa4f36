import { BrokenCircuitError } from '@bulwark/circuit-breaker';
import type { Clock } from '@bulwark/clock';
import { DeadlineExceededError, isBulwarkError } from '@bulwark/core';
import { bounded, formatMs, type ScopedContext } from '@bulwark/core/authoring';
import {
  type BridgedState,
  callsCounter,
  countState,
  refusalsCounter,
  telemetry,
  transitionsCounter,
} from './telemetry.ts';

/**
 * The part of an opossum breaker bulwark uses, declared here so that the
 * adapters need neither opossum's types nor a particular opossum version. An
 * opossum `CircuitBreaker` (8, 9 or 10) is assignable to it.
 */
export interface OpossumBreaker<A extends unknown[] = unknown[], R = unknown> {
  fire(...args: A): Promise<R>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  removeListener(event: string, listener: (...args: unknown[]) => void): unknown;
  readonly name: string;
  readonly opened: boolean;
  readonly halfOpen: boolean;
  readonly closed: boolean;
}

/** What opossum keeps on `breaker.options` (not in its published types). */
interface OpossumRuntimeOptions {
  readonly timeout?: number | false | undefined;
  readonly resetTimeout?: number | undefined;
  readonly abortController?: AbortController | undefined;
}

interface Refusal {
  readonly state: 'open' | 'half-open';
  readonly retryAfterMs: number | undefined;
}

type Attributes = Readonly<Record<string, string>>;

function stateOf(breaker: OpossumBreaker<never[], unknown>): BridgedState {
  return breaker.opened ? 'open' : breaker.halfOpen ? 'half-open' : 'closed';
}

function isObject(value: unknown): value is object {
  return (typeof value === 'object' && value !== null) || typeof value === 'function';
}

/**
 * Listens to one opossum breaker: bridges its events into bulwark telemetry
 * and remembers its own rejections and timeouts so that they can be mapped to
 * bulwark errors. Shared by every adapter of the same breaker.
 */
export class OpossumBridge {
  readonly breaker: OpossumBreaker<never[], unknown>;
  readonly clock: Clock;
  readonly name: string;
  #state: BridgedState;
  #openedAt: number | undefined;
  #users = 0;
  #attached = true;
  readonly #refusals = new WeakMap<object, Refusal>();
  readonly #timeouts = new WeakSet<object>();
  readonly #listeners: ReadonlyArray<readonly [string, (...args: unknown[]) => void]>;
  readonly #attrs: {
    readonly success: Attributes;
    readonly failure: Attributes;
    readonly timeout: Attributes;
    readonly open: Attributes;
    readonly halfOpen: Attributes;
  };

  constructor(breaker: OpossumBreaker<never[], unknown>, clock: Clock) {
    this.breaker = breaker;
    this.clock = clock;
    this.name = typeof breaker.name === 'string' && breaker.name !== '' ? breaker.name : 'unnamed';
    const base = { breaker: this.name, source: 'opossum' };
    this.#attrs = Object.freeze({
      success: Object.freeze({ ...base, outcome: 'success' }),
      failure: Object.freeze({ ...base, outcome: 'failure' }),
      timeout: Object.freeze({ ...base, outcome: 'failure', timeout: 'true' }),
      open: Object.freeze({ ...base, state: 'open' }),
      halfOpen: Object.freeze({ ...base, state: 'half-open' }),
    });
    this.#state = stateOf(breaker);
    this.#listeners = [
      ['success', () => callsCounter.add(1, this.#attrs.success)],
      [
        'failure',
        (error: unknown) =>
          callsCounter.add(
            1,
            isObject(error) && this.#timeouts.has(error) ? this.#attrs.timeout : this.#attrs.failure,
          ),
      ],
      [
        'timeout',
        (error: unknown) => {
          if (isObject(error)) this.#timeouts.add(error);
        },
      ],
      ['reject', (error: unknown) => this.#onReject(error)],
      ['open', () => this.#transition('open')],
      ['halfOpen', () => this.#transition('half-open')],
      ['close', () => this.#transition('closed')],
      ['shutdown', () => this.#detach()],
    ];
    for (const [event, listener] of this.#listeners) breaker.on(event, listener);
    countState(this.name, undefined, this.#state);
  }

  /** opossum's options object, where the breaker has one. */
  get #options(): OpossumRuntimeOptions | undefined {
    const options = (this.breaker as { options?: unknown }).options;
    return isObject(options) ? (options as OpossumRuntimeOptions) : undefined;
  }

  /** opossum's per-call timeout in milliseconds, or undefined when disabled or unknown. */
  get timeoutMs(): number | undefined {
    const timeout = this.#options?.timeout;
    return typeof timeout === 'number' && timeout > 0 ? timeout : undefined;
  }

  /** Whether this bridge still listens to the breaker. */
  get attached(): boolean {
    return this.#attached;
  }

  /** One more adapter uses this bridge. */
  acquire(): void {
    this.#users++;
  }

  /** One adapter is done with this bridge; the last one detaches it. */
  release(): void {
    if (this.#users === 0) return;
    if (--this.#users === 0) this.#detach();
  }

  /**
   * The bulwark error for a rejection from the breaker: `BrokenCircuitError`
   * for its open-circuit rejection, a retryable `DeadlineExceededError`
   * (`source: 'timeout'`) for its timeout, anything else unchanged.
   */
  mapError(error: unknown): unknown {
    if (!isObject(error)) return error;
    const refusal = this.#refusals.get(error);
    if (refusal !== undefined) return new BrokenCircuitError(refusal.state, refusal.retryAfterMs, this.name);
    if (this.#timeouts.has(error)) {
      const ms = this.timeoutMs ?? 0;
      return new DeadlineExceededError('timeout', ms, {
        cause: error,
        message: `opossum breaker "${this.name}" timed out after ${formatMs(ms)}`,
      });
    }
    return error;
  }

  /** Rethrows `error` mapped by {@link mapError} (a rejection handler made once per bridge). */
  readonly rethrowMapped = (error: unknown): never => {
    throw this.mapError(error);
  };

  /**
   * Aborts the breaker's `abortController`, where it has one, as opossum does
   * at its own timeout. opossum shares one controller between all the calls of
   * a breaker (and renews it only with `autoRenewAbortController`).
   */
  abortAction(reason: unknown): void {
    const getter = (this.breaker as { getAbortController?: unknown }).getAbortController;
    const controller =
      typeof getter === 'function'
        ? (getter.call(this.breaker) as AbortController | undefined)
        : this.#options?.abortController;
    if (controller !== undefined && !controller.signal.aborted) controller.abort(reason);
  }

  #onReject(error: unknown): void {
    const state: 'open' | 'half-open' = this.breaker.halfOpen ? 'half-open' : 'open';
    if (isObject(error)) this.#refusals.set(error, { state, retryAfterMs: this.#retryAfterMs(state) });
    refusalsCounter.add(1, state === 'open' ? this.#attrs.open : this.#attrs.halfOpen);
  }

  /**
   * How long until a probe may succeed. Open: exact when this bridge saw the
   * breaker open, otherwise the reset timeout (an upper bound). Half-open: the
   * probe in flight settles within opossum's timeout, when it has one.
   */
  #retryAfterMs(state: 'open' | 'half-open'): number | undefined {
    if (state === 'half-open') return this.timeoutMs;
    const reset = this.#options?.resetTimeout;
    if (typeof reset !== 'number') return undefined;
    if (this.#openedAt === undefined) return reset;
    return Math.max(0, this.#openedAt + reset - this.clock.now());
  }

  #transition(to: BridgedState): void {
    const from = this.#state;
    this.#state = to;
    this.#openedAt = to === 'open' ? this.clock.now() : undefined;
    countState(this.name, from, to);
    transitionsCounter.add(1, { breaker: this.name, from, to, source: 'opossum' });
    if (to === 'open') {
      const name = this.name;
      const openMs = this.#options?.resetTimeout ?? 0;
      telemetry.spanEvent('bulwark.circuit.opened', () => ({
        breaker: name,
        reason: from === 'half-open' ? 'probe-failure' : 'trip',
        open_ms: openMs,
        source: 'opossum',
      }));
    }
  }

  #detach(): void {
    if (!this.#attached) return;
    this.#attached = false;
    for (const [event, listener] of this.#listeners) this.breaker.removeListener(event, listener);
    countState(this.name, this.#state, undefined);
    if (bridges.get(this.breaker) === this) bridges.delete(this.breaker);
  }
}

const bridges = new WeakMap<object, OpossumBridge>();

/** The bridge of `breaker` (made on first use, then shared), with one more user. */
export function acquireBridge(breaker: OpossumBreaker<never[], unknown>, clock: Clock): OpossumBridge {
  let bridge = bridges.get(breaker);
  if (bridge === undefined || !bridge.attached) {
    bridge = new OpossumBridge(breaker, clock);
    bridges.set(breaker, bridge);
  }
  bridge.acquire();
  return bridge;
}

/**
 * Fires the breaker under bulwark semantics: opossum's rejections mapped by
 * `bridge.mapError`; the caller's `signal` passed through (the promise
 * rejects with its reason, unchanged); and at `deadline` (an instant on
 * `clock`), a `DeadlineExceededError`, with the breaker's abortController and
 * `scope` (the function's context, when bulwark made one) aborted. `scope` is
 * released when the call settles.
 */
export function fireGuarded<R>(
  bridge: OpossumBridge,
  fire: () => Promise<R>,
  clock: Clock,
  deadline: number | undefined,
  signal: AbortSignal | undefined,
  scope?: ScopedContext,
): Promise<R> {
  if (signal?.aborted) {
    scope?.release();
    return Promise.reject(signal.reason);
  }
  const timed = deadline !== undefined && deadline !== Number.POSITIVE_INFINITY;
  const start = timed ? clock.now() : 0;
  if (timed && deadline <= start) {
    scope?.release();
    return Promise.reject(new DeadlineExceededError('deadline', 0));
  }
  const work = (): Promise<R> => {
    let pending: Promise<R>;
    try {
      pending = fire();
    } catch (error) {
      throw bridge.mapError(error);
    }
    if (scope === undefined) return pending.then(undefined, bridge.rethrowMapped);
    return pending.then(undefined, (error: unknown) => {
      const mapped = bridge.mapError(error);
      // opossum gave up on the call: let the function see its signal abort.
      if (mapped !== error && isBulwarkError(mapped, 'ERR_DEADLINE_EXCEEDED')) scope.abort(mapped);
      throw mapped;
    });
  };
  return bounded(work, {
    at: timed ? deadline : undefined,
    clock,
    signal,
    expired: () => new DeadlineExceededError('deadline', deadline! - start),
    onEarly: (reason, ours) => {
      scope?.abort(reason);
      // Our deadline or an enclosing one fired: the call is not wanted any more.
      if (ours || isBulwarkError(reason, 'ERR_DEADLINE_EXCEEDED')) bridge.abortAction(reason);
    },
    onSettle: scope === undefined ? undefined : () => scope.release(),
  });
}
