import { BulwarkError } from '@bulwark/core';
import { formatMs, markRefusal } from '@bulwark/core/authoring';
import type { ThrottledError } from './throttle.ts';

/** The states of a breaker. `isolated` means held open by hand (`isolate()`). */
export type CircuitState = 'closed' | 'open' | 'half-open' | 'isolated';

/**
 * A call refused because the circuit is open, isolated, or half-open with every
 * probe slot taken. `retryAfterMs` is the time until the breaker lets a probe
 * through (undefined while isolated, when nobody can know).
 */
export class BrokenCircuitError extends BulwarkError<'ERR_CIRCUIT_OPEN'> {
  /** The breaker's name, when it has one. */
  readonly breaker: string | undefined;
  /** The state that refused the call. */
  readonly state: Exclude<CircuitState, 'closed'>;

  /** `options.stack: false` builds it without a stack trace (the breaker's `refusalStacks: false`). */
  constructor(
    state: Exclude<CircuitState, 'closed'>,
    retryAfterMs: number | undefined,
    breaker?: string,
    options?: { readonly stack?: boolean | undefined },
  ) {
    const who = breaker === undefined ? 'the circuit' : `circuit "${breaker}"`;
    const why =
      state === 'isolated'
        ? `${who} is isolated by hand; release the isolate() handle or call reset() to close it`
        : state === 'half-open'
          ? `${who} is half-open and every probe slot is taken; try again in ${formatMs(retryAfterMs ?? 0)}`
          : `${who} is open; a probe will be let through in ${formatMs(retryAfterMs ?? 0)}`;
    super('ERR_CIRCUIT_OPEN', `call refused: ${why}`, { retryAfterMs, stack: options?.stack });
    this.breaker = breaker;
    this.state = state;
  }
}
markRefusal(BrokenCircuitError);

/**
 * `refusal()` was called while the breaker is closed. A closed breaker refuses
 * nothing, so there is no refusal to describe: call `refusal()` only after
 * `tryAcquire()` returned undefined. A programming error, never a call's outcome.
 */
export class CircuitClosedError extends BulwarkError<'ERR_CIRCUIT_CLOSED'> {
  /** The breaker's name, when it has one. */
  readonly breaker: string | undefined;

  constructor(breaker?: string) {
    const who = breaker === undefined ? 'the circuit' : `circuit "${breaker}"`;
    super(
      'ERR_CIRCUIT_CLOSED',
      `refusal(): ${who} is closed and refuses nothing; call refusal() only after tryAcquire() returned undefined`,
    );
    this.breaker = breaker;
  }
}

declare module '@bulwark/core' {
  /** This package's error codes, for `isBulwarkError(e, code)` to narrow by. */
  interface BulwarkErrorMap {
    ERR_CIRCUIT_OPEN: BrokenCircuitError;
    ERR_CIRCUIT_CLOSED: CircuitClosedError;
    ERR_THROTTLED: ThrottledError;
  }
}
