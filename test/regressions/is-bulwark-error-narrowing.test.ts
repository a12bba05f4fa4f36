// isBulwarkError(e, code) used to narrow only to BulwarkError<code>: reading
// `e.source` after isBulwarkError(e, 'ERR_DEADLINE_EXCEEDED') was a type error,
// and any string ('ERR_TYPO') was accepted. It now narrows by code to the
// error's class (BulwarkErrorMap, which each package extends), and the code
// parameter takes only codes that exist. The type checks here run under
// `npm run typecheck` (tsconfig.check.json includes test/); the @ts-expect-error
// lines fail it if a typo or a wrong property became accepted.
import type { BulkheadRejectedError } from '@bulwark/bulkhead';
import { BrokenCircuitError, type CircuitClosedError } from '@bulwark/circuit-breaker';
import {
  type BulwarkError,
  type BulwarkErrorCode,
  CallbackError,
  DeadlineExceededError,
  InvalidOptionsError,
  isBulwarkError,
} from '@bulwark/core';
import type { InvalidDeadlineHeaderError } from '@bulwark/deadline';
import type { MonitorDisposedError, PeerSuspectedError } from '@bulwark/failure-detector';
import type {
  InvalidIdempotencyKeyError,
  LeaseLostError,
  LeaseSettledError,
  StoreUnavailableError,
  UnfingerprintableError,
} from '@bulwark/idempotency';
import type { MissingPeerDependencyError } from '@bulwark/interop';
import type { ConnectionLostError } from '@bulwark/postgres';
import { describe, expect, expectTypeOf, it } from 'vitest';

describe('isBulwarkError narrows by code to the error class', () => {
  it('gives access to the class-specific fields after the guard', () => {
    const caught: unknown = new DeadlineExceededError('timeout', 250);
    if (!isBulwarkError(caught, 'ERR_DEADLINE_EXCEEDED')) throw new Error('guard failed');
    expectTypeOf(caught).toEqualTypeOf<DeadlineExceededError>();
    expect(caught.source).toBe('timeout');
    expect(caught.budgetMs).toBe(250);
  });

  it('narrows every code of every package to its class', () => {
    const check = <C extends BulwarkErrorCode>(error: unknown, code: C) => {
      expect(isBulwarkError(error, code)).toBe(true);
      return error;
    };
    const open = check(new BrokenCircuitError('open', 5, 'db'), 'ERR_CIRCUIT_OPEN');
    expect(open).toBeInstanceOf(BrokenCircuitError);
    const e: unknown = open;
    if (isBulwarkError(e, 'ERR_CIRCUIT_OPEN')) expectTypeOf(e).toEqualTypeOf<BrokenCircuitError>();
    if (isBulwarkError(e, 'ERR_CIRCUIT_CLOSED')) expectTypeOf(e).toEqualTypeOf<CircuitClosedError>();
    if (isBulwarkError(e, 'ERR_BULKHEAD_FULL')) expectTypeOf(e).toEqualTypeOf<BulkheadRejectedError>();
    if (isBulwarkError(e, 'ERR_CALLBACK_FAILED')) expectTypeOf(e).toEqualTypeOf<CallbackError>();
    if (isBulwarkError(e, 'ERR_INVALID_OPTIONS')) expectTypeOf(e).toEqualTypeOf<InvalidOptionsError>();
    if (isBulwarkError(e, 'ERR_INVALID_DEADLINE_HEADER'))
      expectTypeOf(e).toEqualTypeOf<InvalidDeadlineHeaderError>();
    if (isBulwarkError(e, 'ERR_PEER_SUSPECTED')) expectTypeOf(e).toEqualTypeOf<PeerSuspectedError>();
    if (isBulwarkError(e, 'ERR_MONITOR_DISPOSED')) expectTypeOf(e).toEqualTypeOf<MonitorDisposedError>();
    if (isBulwarkError(e, 'ERR_STORE_UNAVAILABLE')) expectTypeOf(e).toEqualTypeOf<StoreUnavailableError>();
    if (isBulwarkError(e, 'ERR_INVALID_IDEMPOTENCY_KEY'))
      expectTypeOf(e).toEqualTypeOf<InvalidIdempotencyKeyError>();
    if (isBulwarkError(e, 'ERR_LEASE_SETTLED')) expectTypeOf(e).toEqualTypeOf<LeaseSettledError>();
    if (isBulwarkError(e, 'ERR_LEASE_LOST')) expectTypeOf(e).toEqualTypeOf<LeaseLostError>();
    if (isBulwarkError(e, 'ERR_UNFINGERPRINTABLE')) expectTypeOf(e).toEqualTypeOf<UnfingerprintableError>();
    if (isBulwarkError(e, 'ERR_MISSING_PEER_DEPENDENCY'))
      expectTypeOf(e).toEqualTypeOf<MissingPeerDependencyError>();
    if (isBulwarkError(e, 'ERR_CONNECTION_LOST')) expectTypeOf(e).toEqualTypeOf<ConnectionLostError>();
  });

  it('InvalidOptionsError (a RangeError) narrows to its own class', () => {
    const caught: unknown = new InvalidOptionsError('x()', [{ option: 'a', expected: 'b', value: 1 }]);
    if (!isBulwarkError(caught, 'ERR_INVALID_OPTIONS')) throw new Error('guard failed');
    expect(caught.violations).toHaveLength(1);
  });

  it('without a code it narrows to BulwarkError', () => {
    const caught: unknown = new CallbackError('retryOn', new Error('boom'));
    if (!isBulwarkError(caught)) throw new Error('guard failed');
    expectTypeOf(caught).toExtend<BulwarkError>();
    expect(caught.code).toBe('ERR_CALLBACK_FAILED');
  });

  it('refuses codes no bulwark error has, and class fields of another code', () => {
    const caught: unknown = new DeadlineExceededError('deadline', 10);
    // @ts-expect-error 'ERR_TYPO' is not a bulwark error code
    expect(isBulwarkError(caught, 'ERR_TYPO')).toBe(false);
    if (isBulwarkError(caught, 'ERR_CIRCUIT_OPEN')) {
      // @ts-expect-error a BrokenCircuitError has no `source`
      expect(caught.source).toBeUndefined();
    }
    expect(isBulwarkError(caught, 'ERR_CIRCUIT_OPEN')).toBe(false);
  });
});
