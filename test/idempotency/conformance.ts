// The behaviour every IdempotencyStore must have, as one suite run against the
// memory store (on a VirtualClock) and against Redis and PostgreSQL (real time,
// short leases). Owners that are dead or paused are simulated by leases that stop
// renewing: a raw store.begin, or a guard on a VirtualClock of its own that the
// test does not advance.
import { type Clock, VirtualClock } from '@bulwark/clock';
import { isBulwarkError } from '@bulwark/core';
import {
  type IdempotencyGuard,
  type IdempotencyStore,
  type IdempotentResult,
  idempotency,
  type LeaseLostError,
} from '@bulwark/idempotency';
import { describe, expect, it } from 'vitest';

export interface ConformanceTarget {
  /** A store with a namespace of its own (a fresh prefix or table is not needed: keys are unique per test). */
  store(): IdempotencyStore;
  /** Lets `ms` pass on the store's clock and `clock`: a virtual advance, or a real wait. */
  wait(ms: number): Promise<void>;
  /** The clock of the guards that stay alive (renewing, contending). Default: systemClock. */
  readonly clock?: Clock;
  /** A short lease for the tests, in milliseconds. */
  readonly leaseMs: number;
  /** A short TTL for the tests, in milliseconds. */
  readonly ttlMs: number;
  /** Added to every wait that must cross an expiry, to absorb scheduling jitter. */
  readonly marginMs: number;
  /** A unique key for one test. */
  key(name: string): string;
}

export function describeStoreConformance(name: string, target: () => ConformanceTarget): void {
  describe(`${name} store conformance`, () => {
    const guardOf = <T>(extra: { storeOutcome?: (value: T) => boolean } = {}) => {
      const t = target();
      return { t, guard: guardOn<T>(t, t.clock, extra) };
    };
    /** A guard on the target's store; with a clock of its own, it renews only when that clock moves. */
    const guardOn = <T>(
      t: ConformanceTarget,
      clock?: Clock,
      extra: { storeOutcome?: (value: T) => boolean } = {},
    ) => idempotency<T>({ store: t.store(), leaseMs: t.leaseMs, ttlMs: t.ttlMs, clock, ...extra });
    /** Leaves `key` held by an owner that never renews: a crashed process. */
    const deadOwner = async (t: ConformanceTarget, key: string, fingerprint: string) => {
      const { defaultFingerprint } = await import('@bulwark/idempotency');
      const outcome = await t.store().begin({
        key,
        fingerprint: defaultFingerprint(fingerprint),
        token: `dead-${key}`,
        retainMs: 86_400_000,
      });
      expect(outcome).toEqual({ status: 'acquired' });
    };

    it('runs fn exactly once for 100 concurrent requests with the same key', async () => {
      const { t, guard } = guardOf<string>();
      const key = t.key('concurrent');
      let calls = 0;
      const results = await Promise.all(
        Array.from({ length: 100 }, () =>
          guard.run(key, { amount: 5 }, async () => {
            calls++;
            await new Promise((resolve) => setImmediate(resolve));
            return 'done';
          }),
        ),
      );
      expect(calls).toBe(1);
      const kinds = results.map((r) => r.kind);
      expect(kinds.filter((k) => k === 'executed')).toHaveLength(1);
      expect(kinds.every((k) => k === 'executed' || k === 'replayed' || k === 'in-progress')).toBe(true);
      for (const r of results) if (r.kind === 'replayed') expect(r.value).toBe('done');
      const later = await guard.run(key, { amount: 5 }, () => 'again');
      expect(later).toEqual({ kind: 'replayed', value: 'done' });
    });

    it('replays the stored result without running fn again', async () => {
      const { t, guard } = guardOf<{ id: number }>();
      const key = t.key('replay');
      const first = await guard.run(key, 'req', () => ({ id: 7 }));
      expect(first).toEqual({ kind: 'executed', value: { id: 7 }, completion: 'stored' });
      let ran = false;
      const second = await guard.run(key, 'req', () => {
        ran = true;
        return { id: 8 };
      });
      expect(second).toEqual({ kind: 'replayed', value: { id: 7 } });
      expect(ran).toBe(false);
    });

    it('reports a mismatch when the same key comes with a different fingerprint', async () => {
      const { t, guard } = guardOf<string>();
      const key = t.key('mismatch');
      await guard.run(key, { amount: 5 }, () => 'paid');
      expect(await guard.run(key, { amount: 6 }, () => 'paid twice')).toEqual({ kind: 'mismatch' });
      const key2 = t.key('mismatch-in-progress');
      const running = await inside(guard, key2, 'a');
      expect(await guard.run(key2, 'b', () => 'x')).toEqual({ kind: 'mismatch' });
      running.finish('a');
      expect((await running.result).kind).toBe('executed');
    });

    it('answers in-progress with the time left on the lease while the owner runs', async () => {
      const { t, guard } = guardOf<string>();
      const key = t.key('in-progress');
      const running = await inside(guard, key, 'req');
      const second = await guard.run(key, 'req', () => 'second');
      expect(second.kind).toBe('in-progress');
      if (second.kind === 'in-progress') {
        expect(second.retryAfterMs).toBeGreaterThan(0);
        expect(second.retryAfterMs).toBeLessThanOrEqual(t.leaseMs);
      }
      running.finish('first');
      expect(await running.result).toEqual({ kind: 'executed', value: 'first', completion: 'stored' });
    });

    it('stores an undefined result explicitly and replays it as undefined', async () => {
      const { t, guard } = guardOf<undefined>();
      const key = t.key('undefined');
      let calls = 0;
      const first = await guard.run(key, 'req', () => {
        calls++;
        return undefined;
      });
      expect(first).toEqual({ kind: 'executed', value: undefined, completion: 'stored' });
      const second = await guard.run(key, 'req', () => {
        calls++;
        return undefined;
      });
      expect(second.kind).toBe('replayed');
      expect(calls).toBe(1);
    });

    it('releases the key when fn throws, so the retry executes', async () => {
      const { t, guard } = guardOf<string>();
      const key = t.key('throws');
      const boom = new Error('boom');
      await expect(guard.run(key, 'req', () => Promise.reject(boom))).rejects.toBe(boom);
      const retry = await guard.run(key, 'req', () => 'ok');
      expect(retry).toEqual({ kind: 'executed', value: 'ok', completion: 'stored' });
    });

    it('releases the key when storeOutcome declines the result', async () => {
      const { t, guard } = guardOf<number>({ storeOutcome: (status) => status < 500 });
      const key = t.key('declined');
      expect(await guard.run(key, 'req', () => 503)).toEqual({
        kind: 'executed',
        value: 503,
        completion: 'released',
      });
      expect(await guard.run(key, 'req', () => 201)).toEqual({
        kind: 'executed',
        value: 201,
        completion: 'stored',
      });
      expect(await guard.run(key, 'req', () => 500)).toEqual({ kind: 'replayed', value: 201 });
    });

    it('executes again once the completed record outlives its TTL', async () => {
      const { t, guard } = guardOf<string>();
      const key = t.key('ttl');
      await guard.run(key, 'req', () => 'first');
      await t.wait(t.ttlMs + t.marginMs);
      const after = await guard.run(key, 'req', () => 'second');
      expect(after).toEqual({ kind: 'executed', value: 'second', completion: 'stored' });
    });

    it('lets a retry take over a crashed owner`s key exactly once, after seeing it unrenewed for a lease', async () => {
      const { t, guard } = guardOf<string>();
      const key = t.key('stuck');
      await deadOwner(t, key, 'req');
      const early = await guard.run(key, 'req', () => 'early');
      expect(early.kind).toBe('in-progress');
      if (early.kind === 'in-progress') expect(early.retryAfterMs).toBe(t.leaseMs);
      await t.wait(t.leaseMs / 2);
      expect((await guard.run(key, 'req', () => 'still early')).kind).toBe('in-progress');
      await t.wait(t.leaseMs / 2 + t.marginMs);
      let calls = 0;
      const retries = await Promise.all(
        Array.from({ length: 10 }, () =>
          guard.run(key, 'req', () => {
            calls++;
            return 'retried';
          }),
        ),
      );
      expect(calls).toBe(1);
      expect(retries.filter((r) => r.kind === 'executed')).toHaveLength(1);
      expect(await guard.run(key, 'req', () => 'again')).toEqual({ kind: 'replayed', value: 'retried' });
    });

    it('lets only one of several contenders that saw the same dead owner take over', async () => {
      const t = target();
      const key = t.key('contenders');
      await deadOwner(t, key, 'req');
      const contenders = [1, 2, 3, 4].map(() => guardOn<string>(t, t.clock));
      for (const c of contenders) expect((await c.run(key, 'req', () => 'early')).kind).toBe('in-progress');
      await t.wait(t.leaseMs + t.marginMs);
      let calls = 0;
      const results = await Promise.all(
        contenders.map((c, i) =>
          c.run(key, 'req', () => {
            calls++;
            return `contender ${i}`;
          }),
        ),
      );
      expect(calls).toBe(1);
      expect(results.filter((r) => r.kind === 'executed')).toHaveLength(1);
      for (const r of results) {
        if (r.kind === 'replayed')
          expect(r.value).toBe((results.find((x) => x.kind === 'executed') as { value: string }).value);
        else expect(['executed', 'in-progress']).toContain(r.kind);
      }
    });

    it('never takes over from an owner that keeps renewing, however long fn runs', async () => {
      const { t, guard } = guardOf<string>();
      const key = t.key('renewing');
      const owner = await inside(guard, key, 'req');
      const contender = guardOn<string>(t, t.clock);
      let duplicates = 0;
      for (let i = 0; i < 6; i++) {
        const r = await contender.run(key, 'req', () => {
          duplicates++;
          return 'duplicate';
        });
        expect(r.kind).toBe('in-progress');
        await t.wait(t.leaseMs / 2);
      }
      expect(duplicates).toBe(0);
      expect(owner.signal.aborted).toBe(false);
      owner.finish('slow but alive');
      expect(await owner.result).toEqual({ kind: 'executed', value: 'slow but alive', completion: 'stored' });
      expect(await contender.run(key, 'req', () => 'x')).toEqual({
        kind: 'replayed',
        value: 'slow but alive',
      });
    });

    it('fences off a paused owner: after a takeover its completion is refused and the new result kept', async () => {
      const t = target();
      const key = t.key('fenced');
      const guard = guardOn<string>(t, t.clock);
      const paused = guardOn<string>(t, new VirtualClock()); // its clock never moves: it never renews
      const slow = await inside(paused, key, 'req');
      expect((await guard.run(key, 'req', () => 'early')).kind).toBe('in-progress');
      await t.wait(t.leaseMs + t.marginMs);
      const takeover = await guard.run(key, 'req', () => 'new owner');
      expect(takeover).toEqual({ kind: 'executed', value: 'new owner', completion: 'stored' });
      slow.finish('old owner');
      expect(await slow.result).toEqual({ kind: 'executed', value: 'old owner', completion: 'lease-lost' });
      expect(await guard.run(key, 'req', () => 'third')).toEqual({ kind: 'replayed', value: 'new owner' });
    });

    it('tells a paused owner that wakes up after a takeover, through its signal, and writes nothing for it', async () => {
      const t = target();
      const key = t.key('wakes');
      const guard = guardOn<string>(t, t.clock);
      const ownerClock = new VirtualClock();
      const paused = guardOn<string>(t, ownerClock);
      const slow = await inside(paused, key, 'req');
      expect((await guard.run(key, 'req', () => 'early')).kind).toBe('in-progress');
      await t.wait(t.leaseMs + t.marginMs);
      let finishNew!: (v: string) => void;
      const current = guard.run(key, 'req', () => new Promise<string>((resolve) => (finishNew = resolve)));
      await waitUntil(() => finishNew !== undefined);
      // The owner wakes: its first renewal finds the key taken over.
      await ownerClock.advance(t.leaseMs / 3);
      await waitUntil(() => slow.signal.aborted);
      const reason = slow.signal.reason as LeaseLostError;
      expect(isBulwarkError(reason, 'ERR_LEASE_LOST')).toBe(true);
      expect(reason.reason).toBe('taken-over');
      slow.finish('old owner');
      expect(await slow.result).toEqual({ kind: 'executed', value: 'old owner', completion: 'lease-lost' });
      expect(ownerClock.pendingTimers).toBe(0);
      finishNew('new owner');
      expect(await current).toEqual({ kind: 'executed', value: 'new owner', completion: 'stored' });
      expect(await guard.run(key, 'req', () => 'third')).toEqual({ kind: 'replayed', value: 'new owner' });
    });

    it('takes a key over only by compare-and-set on the owner and renewal count it saw', async () => {
      const t = target();
      const store = t.store();
      const key = t.key('cas');
      const begin = { key, fingerprint: 'f', token: 'owner-a', retainMs: 86_400_000 };
      expect(await store.begin(begin)).toEqual({ status: 'acquired' });
      expect(await store.begin({ ...begin, token: 'owner-b' })).toEqual({
        status: 'in-progress',
        owner: 'owner-a',
        renewals: 0,
      });
      expect(await store.renew(key, 'owner-a', 86_400_000)).toBe(true);
      // A stale sighting (renewal count 0) does not take the key.
      expect(
        await store.begin({ ...begin, token: 'owner-b', takeover: { owner: 'owner-a', renewals: 0 } }),
      ).toEqual({ status: 'in-progress', owner: 'owner-a', renewals: 1 });
      expect(
        await store.begin({ ...begin, token: 'owner-b', takeover: { owner: 'owner-x', renewals: 1 } }),
      ).toEqual({ status: 'in-progress', owner: 'owner-a', renewals: 1 });
      expect(
        await store.begin({ ...begin, token: 'owner-b', takeover: { owner: 'owner-a', renewals: 1 } }),
      ).toEqual({ status: 'acquired' });
      // The same sighting cannot take it a second time.
      expect(
        await store.begin({ ...begin, token: 'owner-c', takeover: { owner: 'owner-a', renewals: 1 } }),
      ).toEqual({ status: 'in-progress', owner: 'owner-b', renewals: 0 });
      expect(await store.renew(key, 'owner-a', 86_400_000)).toBe(false);
      expect(await store.complete(key, 'owner-a', '["a"]', t.ttlMs)).toBe(false);
      expect(await store.complete(key, 'owner-b', '["b"]', t.ttlMs)).toBe(true);
      expect(await store.renew(key, 'owner-b', 86_400_000)).toBe(false);
      expect(
        await store.begin({ ...begin, token: 'owner-d', takeover: { owner: 'owner-b', renewals: 0 } }),
      ).toEqual({ status: 'completed', payload: '["b"]' });
    });

    it('never lets a token release or complete a record it does not own', async () => {
      const t = target();
      const store = t.store();
      const key = t.key('foreign');
      const begin = { key, fingerprint: 'f', token: 'owner-a', retainMs: 86_400_000 };
      expect(await store.begin(begin)).toEqual({ status: 'acquired' });
      expect(await store.release(key, 'owner-b')).toBe(false);
      expect(await store.renew(key, 'owner-b', 86_400_000)).toBe(false);
      expect(await store.complete(key, 'owner-b', '["b"]', t.ttlMs)).toBe(false);
      expect((await store.begin({ ...begin, token: 'owner-c' })).status).toBe('in-progress');
      expect(await store.complete(key, 'owner-a', '["a"]', t.ttlMs)).toBe(true);
      expect(await store.release(key, 'owner-a')).toBe(false);
      expect(await store.begin({ ...begin, token: 'owner-d' })).toEqual({
        status: 'completed',
        payload: '["a"]',
      });
    });
  });
}

/**
 * Starts a request whose fn runs until `finish` is called, and resolves once fn is
 * running (the request holds the key): `result` is what the guard then returns.
 */
async function inside<T>(
  guard: IdempotencyGuard<T>,
  key: string,
  fingerprint: unknown,
): Promise<{ finish(value: T): void; result: Promise<IdempotentResult<T>>; signal: AbortSignal }> {
  let finish: ((value: T) => void) | undefined;
  let signal: AbortSignal | undefined;
  const result = guard.run(key, fingerprint, (s) => {
    signal = s;
    return new Promise<T>((resolve) => (finish = resolve));
  });
  await waitUntil(() => finish !== undefined);
  return { finish: (value) => finish!(value), result, signal: signal! };
}

/** Waits (in real event-loop turns, not time) until `condition` holds. */
export async function waitUntil(condition: () => boolean, turns = 100_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('condition not met');
}
