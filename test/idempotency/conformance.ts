// The behaviour every IdempotencyStore must have, as one suite run against the
// memory store (on a VirtualClock) and against Redis and PostgreSQL (real time,
// short leases).
import {
  type IdempotencyGuard,
  type IdempotencyStore,
  type IdempotentResult,
  idempotency,
} from '@bulwark/idempotency';
import { describe, expect, it } from 'vitest';

export interface ConformanceTarget {
  /** A store with a namespace of its own (a fresh prefix or table is not needed: keys are unique per test). */
  store(): IdempotencyStore;
  /** Lets `ms` pass on the store's clock: a virtual advance, or a real wait. */
  wait(ms: number): Promise<void>;
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
      return { t, guard: idempotency<T>({ store: t.store(), leaseMs: t.leaseMs, ttlMs: t.ttlMs, ...extra }) };
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

    it('lets a retry take over once the lease of an owner that never finishes expires, exactly once', async () => {
      const { t, guard } = guardOf<string>();
      const key = t.key('stuck');
      let started = false;
      void guard.run(key, 'req', () => {
        started = true;
        return new Promise<string>(() => {});
      });
      await waitUntil(() => started);
      expect((await guard.run(key, 'req', () => 'early')).kind).toBe('in-progress');
      await t.wait(t.leaseMs + t.marginMs);
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
    });

    it('rejects the late completion of an owner whose lease was taken over', async () => {
      const { t, guard } = guardOf<string>();
      const key = t.key('fenced');
      const slow = await inside(guard, key, 'req');
      await t.wait(t.leaseMs + t.marginMs);
      const takeover = await guard.run(key, 'req', () => 'new owner');
      expect(takeover).toEqual({ kind: 'executed', value: 'new owner', completion: 'stored' });
      slow.finish('old owner');
      expect(await slow.result).toEqual({ kind: 'executed', value: 'old owner', completion: 'lease-lost' });
      expect(await guard.run(key, 'req', () => 'third')).toEqual({ kind: 'replayed', value: 'new owner' });
    });

    it('never lets a token release or complete a record it does not own', async () => {
      const t = target();
      const store = t.store();
      const key = t.key('foreign');
      const begin = { key, fingerprint: 'f', token: 'owner-a', leaseMs: t.leaseMs, ttlMs: t.ttlMs };
      expect(await store.begin(begin)).toEqual({ status: 'acquired' });
      expect(await store.release(key, 'owner-b')).toBe(false);
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
): Promise<{ finish(value: T): void; result: Promise<IdempotentResult<T>> }> {
  let finish: ((value: T) => void) | undefined;
  const result = guard.run(key, fingerprint, () => new Promise<T>((resolve) => (finish = resolve)));
  await waitUntil(() => finish !== undefined);
  return { finish: (value) => finish!(value), result };
}

/** Waits (in real event-loop turns, not time) until `condition` holds. */
export async function waitUntil(condition: () => boolean, turns = 100_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('condition not met');
}
