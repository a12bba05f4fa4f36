import { VirtualClock } from '@bulwark/clock';
import { CallbackError, InvalidOptionsError, isBulwarkError } from '@bulwark/core';
import {
  type BeginOutcome,
  defaultFingerprint,
  type IdempotencyStore,
  InvalidIdempotencyKeyError,
  idempotency,
  jsonResultCodec,
  LeaseSettledError,
  memoryStore,
  type OutcomeEvent,
  StoreUnavailableError,
} from '@bulwark/idempotency';
import { describe, expect, it } from 'vitest';

/** A store whose every command rejects, as an unreachable server would. */
function downStore(): IdempotencyStore & { calls: number } {
  const fail = () => {
    store.calls++;
    return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1'));
  };
  const store = { calls: 0, begin: fail, renew: fail, complete: fail, release: fail };
  return store;
}

describe('idempotency()', () => {
  it('lists every invalid option with its value in one error', () => {
    let error: unknown;
    try {
      idempotency({ store: {} as never, ttlMs: -1, leaseMs: 1.5, fingerprint: 3 as never });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    const message = (error as Error).message;
    expect(message).toMatch(/store must be an IdempotencyStore/);
    expect(message).toMatch(/ttlMs must be an integer >= 1, got -1/);
    expect(message).toMatch(/leaseMs must be an integer >= 1, got 1.5/);
    expect(message).toMatch(/fingerprint must be a function, got 3/);
  });

  it('defaults to a 24-hour TTL and a 60-second lease', () => {
    const guard = idempotency({ store: memoryStore() });
    expect(guard.ttlMs).toBe(86_400_000);
    expect(guard.leaseMs).toBe(60_000);
  });

  it('fails closed with ERR_STORE_UNAVAILABLE when the store cannot begin, never running fn', async () => {
    const store = downStore();
    const guard = idempotency({ store });
    let ran = false;
    const error = await guard
      .run('k', 'req', () => {
        ran = true;
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(isBulwarkError(error, 'ERR_STORE_UNAVAILABLE')).toBe(true);
    expect((error as StoreUnavailableError).cause).toBeInstanceOf(Error);
    expect(ran).toBe(false);
    // One begin, then the release of its own token (the begin may have landed).
    expect(store.calls).toBe(2);
    guard.dispose();
  });

  it('returns the value with completion store-error when the store fails after fn ran', async () => {
    const inner = memoryStore();
    const store: IdempotencyStore = {
      begin: (r) => inner.begin(r),
      renew: (...a) => inner.renew(...a),
      complete: () => Promise.reject(new Error('connection reset')),
      release: (k, t) => inner.release(k, t),
    };
    const guard = idempotency<number>({ store });
    expect(await guard.run('k', 'req', () => 42)).toEqual({
      kind: 'executed',
      value: 42,
      completion: 'store-error',
    });
  });

  it('rethrows the error of fn even when releasing the key fails', async () => {
    const inner = memoryStore();
    const store: IdempotencyStore = {
      begin: (r) => inner.begin(r),
      renew: (...a) => inner.renew(...a),
      complete: (...a) => inner.complete(...a),
      release: () => Promise.reject(new Error('connection reset')),
    };
    const boom = new Error('boom');
    await expect(idempotency({ store }).run('k', 'req', () => Promise.reject(boom))).rejects.toBe(boom);
  });

  it('rejects an invalid key before touching the store', async () => {
    const store = downStore();
    await expect(idempotency({ store }).run('', 'req', () => 1)).rejects.toBeInstanceOf(
      InvalidIdempotencyKeyError,
    );
    await expect(idempotency({ store }).run('x'.repeat(256), 'req', () => 1)).rejects.toBeInstanceOf(
      InvalidIdempotencyKeyError,
    );
    expect(store.calls).toBe(0);
  });

  it('fingerprints requests by content, independent of key order', async () => {
    expect(defaultFingerprint({ a: 1, b: [1, { c: 2, d: 3 }] })).toBe(
      defaultFingerprint({ b: [1, { d: 3, c: 2 }], a: 1 }),
    );
    expect(defaultFingerprint({ a: 1 })).not.toBe(defaultFingerprint({ a: 2 }));
    const guard = idempotency<string>({ store: memoryStore() });
    await guard.run('k', { a: 1, b: 2 }, () => 'v');
    expect(await guard.run('k', { b: 2, a: 1 }, () => 'w')).toEqual({ kind: 'replayed', value: 'v' });
  });

  it('surfaces a throwing fingerprint, storeOutcome or codec as a CallbackError', async () => {
    const throwing = () => {
      throw new Error('bad');
    };
    await expect(
      idempotency({ store: memoryStore(), fingerprint: throwing }).run('k', 'r', () => 1),
    ).rejects.toBeInstanceOf(CallbackError);
    const store = memoryStore();
    const guard = idempotency<number>({ store, storeOutcome: throwing });
    await expect(guard.run('k', 'r', () => 1)).rejects.toBeInstanceOf(CallbackError);
    // The key was released: the next request executes.
    expect((await idempotency<number>({ store }).run('k', 'r', () => 2)).kind).toBe('executed');
    await expect(
      idempotency<bigint>({ store: memoryStore() }).run('k', 'r', () => 1n),
    ).rejects.toBeInstanceOf(CallbackError);
  });

  it('round-trips values through the JSON codec, undefined included', () => {
    for (const value of [undefined, null, 0, '', 'x', [1, 2], { a: { b: null } }]) {
      expect(jsonResultCodec.decode(jsonResultCodec.encode(value))).toEqual(value);
    }
    expect(jsonResultCodec.encode(undefined)).not.toBe(jsonResultCodec.encode(null));
  });

  it('reports each outcome to listeners, with the decision time on its clock', async () => {
    const clock = new VirtualClock();
    let stall = false;
    const inner = memoryStore({ clock });
    const store: IdempotencyStore = {
      begin: async (r): Promise<BeginOutcome> => {
        if (stall) await clock.advance(0).then(() => undefined);
        return inner.begin(r);
      },
      renew: (...a) => inner.renew(...a),
      complete: (...a) => inner.complete(...a),
      release: (...a) => inner.release(...a),
    };
    const guard = idempotency<string>({ store, clock });
    const events: OutcomeEvent[] = [];
    const sub = guard.onOutcome((e) => events.push(e));
    stall = true;
    await guard.run('k', 'a', () => 'v');
    await guard.run('k', 'a', () => 'v');
    await guard.run('k', 'b', () => 'v');
    sub.dispose();
    await guard.run('k', 'a', () => 'v');
    expect(events.map((e) => e.outcome)).toEqual(['executed', 'replayed', 'mismatch']);
    expect(events.every((e) => e.durationMs === 0)).toBe(true);
    const down = idempotency({ store: downStore() });
    const seen: string[] = [];
    down.onOutcome((e) => seen.push(e.outcome));
    await down.run('k', 'a', () => 1).catch(() => undefined);
    expect(seen).toEqual(['store-error']);
  });

  it('lets an HTTP-style caller begin, then complete or release itself', async () => {
    const guard = idempotency<string>({ store: memoryStore() });
    const first = await guard.begin('k', 'fp');
    expect(first.kind).toBe('acquired');
    if (first.kind !== 'acquired') return;
    expect(first.lease.token).toMatch(/^[0-9a-f-]{36}$/);
    expect((await guard.begin('k', 'fp')).kind).toBe('in-progress');
    expect(await first.lease.release()).toBe(true);
    expect(await first.lease.release()).toBe(false);
    const second = await guard.begin('k', 'fp');
    if (second.kind !== 'acquired') throw new Error('expected acquired');
    expect(await second.lease.complete('v')).toBe('stored');
    await expect(second.lease.complete('again')).rejects.toBeInstanceOf(LeaseSettledError);
    expect(await guard.begin('k', 'fp')).toEqual({ kind: 'replayed', value: 'v' });
  });

  it('rejects a second settlement of a lease with ERR_LEASE_SETTLED naming the key, changing nothing', async () => {
    const guard = idempotency<string>({ store: memoryStore() });
    const completed = await guard.begin('order-1', 'fp', { scope: 'alice' });
    if (completed.kind !== 'acquired') throw new Error('expected acquired');
    expect(await completed.lease.complete('first')).toBe('stored');
    const again = await completed.lease.complete('second').catch((e: unknown) => e);
    expect(again).toBeInstanceOf(LeaseSettledError);
    expect(isBulwarkError(again, 'ERR_LEASE_SETTLED')).toBe(true);
    expect((again as LeaseSettledError).key).toBe('alice:order-1');
    expect((again as LeaseSettledError).settledBy).toBe('complete');
    expect((again as Error).message).toMatch(
      /lease on idempotency key "alice:order-1" was already settled by complete\(\)/,
    );
    expect(await guard.begin('order-1', 'fp', { scope: 'alice' })).toEqual({
      kind: 'replayed',
      value: 'first',
    });

    const released = await guard.begin('order-2', 'fp');
    if (released.kind !== 'acquired') throw new Error('expected acquired');
    expect(await released.lease.release()).toBe(true);
    const late = await released.lease.complete('late').catch((e: unknown) => e);
    expect(isBulwarkError(late, 'ERR_LEASE_SETTLED')).toBe(true);
    expect((late as LeaseSettledError).key).toBe('order-2');
    expect((late as LeaseSettledError).settledBy).toBe('release');
    expect((late as Error).message).toMatch(/"order-2" was already settled by release\(\)/);
    // The late complete stored nothing: the key is free for a new owner.
    expect((await guard.begin('order-2', 'fp')).kind).toBe('acquired');
  });
});

describe('guard scopes', () => {
  it('keeps the same key under two scopes as two records', async () => {
    const guard = idempotency<string>({ store: memoryStore() });
    expect((await guard.run('k', 'req', () => 'alice', { scope: 'alice' })).kind).toBe('executed');
    expect((await guard.run('k', 'req', () => 'bob', { scope: 'bob' })).kind).toBe('executed');
    expect(await guard.run('k', 'req', () => 'x', { scope: 'alice' })).toEqual({
      kind: 'replayed',
      value: 'alice',
    });
    expect((await guard.run('k', 'req', () => 'unscoped')).kind).toBe('executed');
  });
});

describe('storeTimeoutMs', () => {
  /** A memory store whose chosen commands never answer, as a silently dropped connection would. */
  function hanging(commands: ReadonlyArray<'begin' | 'renew' | 'complete' | 'release'>, clock: VirtualClock) {
    const inner = memoryStore({ clock });
    const never = () => new Promise<never>(() => {});
    const store: IdempotencyStore = {
      begin: (r) => (commands.includes('begin') ? never() : inner.begin(r)),
      renew: (...a) => (commands.includes('renew') ? never() : inner.renew(...a)),
      complete: (...a) => (commands.includes('complete') ? never() : inner.complete(...a)),
      release: (...a) => (commands.includes('release') ? never() : inner.release(...a)),
    };
    return store;
  }

  it('fails closed when begin does not answer in time, never running fn', async () => {
    const clock = new VirtualClock();
    const guard = idempotency({ store: hanging(['begin'], clock), clock, storeTimeoutMs: 500 });
    let ran = false;
    let settled: unknown;
    const pending = guard
      .run('k', 'req', () => {
        ran = true;
      })
      .catch((e: unknown) => e)
      .then((e) => {
        settled = e;
      });
    await clock.advance(499);
    expect(settled).toBeUndefined();
    await clock.advance(1);
    await pending;
    expect(settled).toBeInstanceOf(StoreUnavailableError);
    expect((settled as StoreUnavailableError).operation).toBe('begin');
    expect((settled as Error).message).toMatch(/did not answer begin within 500 ms/);
    expect(ran).toBe(false);
    expect(clock.pendingTimers).toBe(0);
  });

  it('reports store-error when complete does not answer in time, returning the value', async () => {
    const clock = new VirtualClock();
    const guard = idempotency<number>({ store: hanging(['complete'], clock), clock, storeTimeoutMs: 200 });
    const run = guard.run('k', 'req', () => 7);
    await clock.advance(200);
    expect(await run).toEqual({ kind: 'executed', value: 7, completion: 'store-error' });
  });

  it('rethrows the error of fn when the release does not answer in time', async () => {
    const clock = new VirtualClock();
    const guard = idempotency({ store: hanging(['release'], clock), clock, storeTimeoutMs: 200 });
    const boom = new Error('boom');
    const run = guard.run('k', 'req', () => Promise.reject(boom)).catch((e: unknown) => e);
    await clock.advance(200);
    expect(await run).toBe(boom);
  });

  it('leaves no timer behind when the store answers, and refuses a limit of 0', async () => {
    const clock = new VirtualClock();
    const guard = idempotency<string>({ store: memoryStore({ clock }), clock, storeTimeoutMs: 1_000 });
    expect(await guard.run('k', 'req', () => 'v')).toMatchObject({ kind: 'executed', completion: 'stored' });
    expect(await guard.run('k', 'req', () => 'w')).toEqual({ kind: 'replayed', value: 'v' });
    expect(clock.pendingTimers).toBe(0);
    expect(() => idempotency({ store: memoryStore(), storeTimeoutMs: 0 })).toThrow(
      /storeTimeoutMs must be .*> 0.*got 0/,
    );
  });
});
