// Refusals are built without a stack trace when a policy is given
// refusalStacks: false, and keep everything else: class, code, brands,
// retryAfterMs and message. By default they keep their stack.
import {
  BulkheadRejectedError,
  bulkhead,
  distributedBulkhead,
  type SemaphoreAcquireResult,
  type SemaphoreStore,
} from '@bulwark/bulkhead';
import {
  adaptiveThrottle,
  BrokenCircuitError,
  circuitBreaker,
  circuitBreakers,
  ThrottledError,
} from '@bulwark/circuit-breaker';
import { VirtualClock } from '@bulwark/clock';
import { InvalidOptionsError, isBulwarkError, isRefusal, type Policy } from '@bulwark/core';
import { RateLimitedError, rateLimit } from '@bulwark/rate-limit';
import { describe, expect, it } from 'vitest';

/** A semaphore store that is always full. */
const fullStore: SemaphoreStore = {
  acquire: async (): Promise<SemaphoreAcquireResult> => ({ acquired: false, holders: [] }),
  renew: async () => true,
  release: async () => true,
};

/** A policy of each refusing kind, already refusing its next call. */
async function refusing(refusalStacks: boolean | undefined): Promise<Array<[string, Policy]>> {
  const clock = new VirtualClock();
  const opt = refusalStacks === undefined ? {} : { refusalStacks };
  const limit = rateLimit({ ratePerSecond: 1, burst: 1, clock, ...opt });
  await limit.execute(() => 1);
  const breaker = circuitBreaker({ clock, ...opt });
  breaker.isolate();
  const keyed = circuitBreakers({ clock, ...opt }).get('orders');
  keyed.isolate();
  const full = bulkhead({ maxConcurrent: 1, clock, ...opt });
  const held = full.tryAcquire();
  expect(held).toBeDefined();
  const throttle = adaptiveThrottle({ clock, random: () => 0, ...opt });
  for (let i = 0; i < 20; i++) await throttle.execute(() => Promise.reject(new Error('503'))).catch(() => {});
  const distributed = distributedBulkhead({ maxConcurrent: 1, store: fullStore, clock, ...opt });
  return [
    ['rateLimit', limit],
    ['circuitBreaker', breaker],
    ['circuitBreakers', keyed],
    ['bulkhead', full],
    ['adaptiveThrottle', throttle],
    ['distributedBulkhead', distributed],
  ];
}

const refusalOf = (policy: Policy) =>
  policy
    .execute(() => 'ran')
    .then(
      () => undefined,
      (e: unknown) => e as Error,
    );

describe('refusalStacks', () => {
  it('false: every refusal has no stack frame and keeps its class, code, brands and message', async () => {
    for (const [name, policy] of await refusing(false)) {
      const error = await refusalOf(policy);
      expect(error, name).toBeInstanceOf(Error);
      expect(error!.stack, name).toBe(`${error!.name}: ${error!.message}`);
      expect(isBulwarkError(error), name).toBe(true);
      expect(error!.message, name).toMatch(/refused/);
    }
    const policies = new Map(await refusing(false));
    const of = (name: string) => refusalOf(policies.get(name)!);
    const rateLimited = (await of('rateLimit')) as RateLimitedError;
    expect(rateLimited).toBeInstanceOf(RateLimitedError);
    expect(isBulwarkError(rateLimited, 'ERR_RATE_LIMITED')).toBe(true);
    expect(rateLimited.retryAfterMs).toBe(1000);
    const open = (await of('circuitBreaker')) as BrokenCircuitError;
    expect(open).toBeInstanceOf(BrokenCircuitError);
    expect(open.code).toBe('ERR_CIRCUIT_OPEN');
    expect(open.state).toBe('isolated');
    expect(isRefusal(open)).toBe(true);
    const shed = (await of('bulkhead')) as BulkheadRejectedError;
    expect(shed).toBeInstanceOf(BulkheadRejectedError);
    expect(shed.reason).toBe('queue-full');
    expect(isRefusal(shed)).toBe(true);
    const throttled = (await of('adaptiveThrottle')) as ThrottledError;
    expect(throttled).toBeInstanceOf(ThrottledError);
    expect(throttled.probability).toBeGreaterThan(0);
    expect(await of('distributedBulkhead')).toBeInstanceOf(BulkheadRejectedError);
  });

  it('by default, and with true, every refusal keeps its stack frames', async () => {
    for (const setting of [undefined, true]) {
      for (const [name, policy] of await refusing(setting)) {
        const error = await refusalOf(policy);
        expect(isBulwarkError(error), name).toBe(true);
        expect(error!.stack!.split('\n').length, name).toBeGreaterThan(1);
      }
    }
  });

  it('is refused when it is not a boolean, by every policy that takes it', () => {
    const bad = { refusalStacks: 'no' as unknown as boolean };
    const store = fullStore;
    for (const make of [
      () => rateLimit({ ratePerSecond: 1, burst: 1, ...bad }),
      () => circuitBreaker(bad),
      () => circuitBreakers(bad),
      () => bulkhead({ maxConcurrent: 1, ...bad }),
      () => adaptiveThrottle(bad),
      () => distributedBulkhead({ maxConcurrent: 1, store, ...bad }),
    ]) {
      expect(make).toThrow(InvalidOptionsError);
      expect(make).toThrow(/refusalStacks must be a boolean, got "no"/);
    }
  });
});
