// isBulwarkError(e, code) used to narrow only to BulwarkError<code>: reading
// `e.source` after isBulwarkError(e, 'ERR_DEADLINE_EXCEEDED') was a type error,
// and any string ('ERR_TYPO') was accepted. It now narrows by code to the
// error's class (BulwarkErrorMap, which each package extends), and the code
// parameter takes only codes that exist. The type checks here run under
// `npm run typecheck` (tsconfig.check.json includes test/); the @ts-expect-error
// lines fail it if a typo or a wrong property became accepted.
//
// ERR_STORE_UNAVAILABLE and ERR_LEASE_LOST used to be raised by several classes
// each (the idempotency store's, the rate-limit store's, the fleet stores';
// an idempotency lease's and a distributed permit's), while only idempotency
// declared the codes: the guard narrowed a rate-limit or fleet store error to
// the idempotency class (no `reason`, no `key`), and ERR_RATE_LIMITED,
// ERR_THROTTLED, ERR_HEDGE_LOST and ERR_INJECTED_FAULT narrowed to a bare
// BulwarkError. Each code now has one class in core or in its package, the
// others subclass it, and every code narrows to its class.
import { type BulkheadRejectedError, PermitLostError } from '@bulwark/bulkhead';
import type { InjectedFaultError } from '@bulwark/chaos';
import { BrokenCircuitError, type CircuitClosedError, type ThrottledError } from '@bulwark/circuit-breaker';
import {
  type BulwarkError,
  type BulwarkErrorCode,
  CallbackError,
  LeaseLostError as CoreLeaseLostError,
  StoreUnavailableError as CoreStoreUnavailableError,
  DeadlineExceededError,
  InvalidOptionsError,
  isBulwarkError,
} from '@bulwark/core';
import type { InvalidDeadlineHeaderError } from '@bulwark/deadline';
import type { MonitorDisposedError, PeerSuspectedError } from '@bulwark/failure-detector';
import type { HedgeLostError } from '@bulwark/hedging';
import {
  type InvalidIdempotencyKeyError,
  LeaseLostError,
  type LeaseSettledError,
  StoreUnavailableError,
  type UnfingerprintableError,
} from '@bulwark/idempotency';
import type { MissingPeerDependencyError } from '@bulwark/interop';
import type { ConnectionLostError } from '@bulwark/postgres';
import { type RateLimitedError, RateLimitStoreError } from '@bulwark/rate-limit';
import { FleetStoreError } from '@bulwark/redis';
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
    if (isBulwarkError(e, 'ERR_RATE_LIMITED')) expectTypeOf(e).toEqualTypeOf<RateLimitedError>();
    if (isBulwarkError(e, 'ERR_THROTTLED')) expectTypeOf(e).toEqualTypeOf<ThrottledError>();
    if (isBulwarkError(e, 'ERR_HEDGE_LOST')) expectTypeOf(e).toEqualTypeOf<HedgeLostError>();
    if (isBulwarkError(e, 'ERR_INJECTED_FAULT')) expectTypeOf(e).toEqualTypeOf<InjectedFaultError>();
  });

  it('every store failure is one StoreUnavailableError, with what failed, why and on which key', () => {
    // The idempotency package's class is core's, re-exported.
    expect(StoreUnavailableError).toBe(CoreStoreUnavailableError);
    const failures: Array<[unknown, { store: string; operation: string; reason: string; key?: string }]> = [
      [
        new StoreUnavailableError('begin', new Error('down')),
        { store: 'idempotency', operation: 'begin', reason: 'unavailable' },
      ],
      [
        new RateLimitStoreError('timeout', 'tenant-1', 'no answer within 100 ms'),
        { store: 'rate-limit', operation: 'take', reason: 'timeout', key: 'tenant-1' },
      ],
      [
        new FleetStoreError('semaphore', 'acquire', 'bulwark:semaphore:{db}', 'corrupt', 'a string'),
        { store: 'semaphore', operation: 'acquire', reason: 'corrupt', key: 'bulwark:semaphore:{db}' },
      ],
      [
        new FleetStoreError('breaker-state', 'read', 'bulwark:breaker:{db}', 'unavailable', 'reset'),
        { store: 'breaker-state', operation: 'read', reason: 'unavailable', key: 'bulwark:breaker:{db}' },
      ],
    ];
    for (const [caught, expected] of failures) {
      expect(caught).toBeInstanceOf(StoreUnavailableError);
      if (!isBulwarkError(caught, 'ERR_STORE_UNAVAILABLE')) throw new Error('guard failed');
      expectTypeOf(caught).toEqualTypeOf<StoreUnavailableError>();
      expect({
        store: caught.store,
        operation: caught.operation,
        reason: caught.reason,
        key: caught.key,
      }).toEqual({
        key: undefined,
        ...expected,
      });
    }
  });

  it("every lost lease is one LeaseLostError, an idempotency key's or a distributed permit's", () => {
    expect(LeaseLostError).toBe(CoreLeaseLostError);
    const caught: unknown = new PermitLostError('db', 'unconfirmed');
    expect(caught).toBeInstanceOf(LeaseLostError);
    if (!isBulwarkError(caught, 'ERR_LEASE_LOST')) throw new Error('guard failed');
    expectTypeOf(caught).toEqualTypeOf<LeaseLostError>();
    expect([caught.key, caught.reason]).toEqual(['db', 'unconfirmed']);
    expect(caught.message).toMatch(/permit of distributed bulkhead "db"/);
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
