// The owner side of the lease protocol: renewals while fn runs, on the guard's
// clock, and what the owner learns when renewals fail or find the key taken.
import { VirtualClock } from '@bulwark/clock';
import { isBulwarkError } from '@bulwark/core';
import { type IdempotencyStore, idempotency, type LeaseLostError, memoryStore } from '@bulwark/idempotency';
import { describe, expect, it } from 'vitest';

/** A memory store whose commands can be made to fail, counting renewals and completions. */
function flakyStore(clock: VirtualClock) {
  const inner = memoryStore({ clock });
  const state = { down: false, renewals: 0, completes: 0 };
  const gate =
    <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
    (...a: A): Promise<R> =>
      state.down ? Promise.reject(new Error('connect ECONNREFUSED')) : f(...a);
  const store: IdempotencyStore = {
    begin: gate((r) => inner.begin(r)),
    renew: gate((...a) => {
      state.renewals++;
      return inner.renew(...a);
    }),
    complete: gate((...a) => {
      state.completes++;
      return inner.complete(...a);
    }),
    release: gate((...a) => inner.release(...a)),
  };
  return { store, state, inner };
}

/** Runs fn until `finish` is called, capturing its signal. */
function holding<T>(guard: ReturnType<typeof idempotency<T>>, key: string) {
  let finish!: (v: T) => void;
  let signal!: AbortSignal;
  const result = guard.run(key, 'req', (s) => {
    signal = s;
    return new Promise<T>((resolve) => (finish = resolve));
  });
  return { result, finish: (v: T) => finish(v), signal: () => signal };
}

describe('lease renewal', () => {
  it('renews every leaseMs / 3 while fn runs and leaves no timer once it settles', async () => {
    const clock = new VirtualClock();
    const { store, state } = flakyStore(clock);
    const guard = idempotency<string>({ store, clock, leaseMs: 300 });
    const owner = holding(guard, 'k');
    await clock.advance(0);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(99);
    expect(state.renewals).toBe(0);
    await clock.advance(1);
    expect(state.renewals).toBe(1);
    await clock.advance(900);
    expect(state.renewals).toBe(10);
    owner.finish('v');
    expect(await owner.result).toEqual({ kind: 'executed', value: 'v', completion: 'stored' });
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(1_000);
    expect(state.renewals).toBe(10);
    expect(owner.signal().aborted).toBe(false);
  });

  it('stops renewing when fn throws and the key is released', async () => {
    const clock = new VirtualClock();
    const { store, state } = flakyStore(clock);
    const guard = idempotency<string>({ store, clock, leaseMs: 300 });
    let fail!: (e: Error) => void;
    const run = guard.run('k', 'req', () => new Promise<string>((_, reject) => (fail = reject)));
    await clock.advance(150);
    fail(new Error('boom'));
    await expect(run).rejects.toThrow('boom');
    expect(clock.pendingTimers).toBe(0);
    const renewals = state.renewals;
    await clock.advance(1_000);
    expect(state.renewals).toBe(renewals);
  });

  it('aborts the signal as unconfirmed once no renewal has reached the store for a lease, and keeps trying', async () => {
    const clock = new VirtualClock();
    const { store, state } = flakyStore(clock);
    const guard = idempotency<string>({ store, clock, leaseMs: 300 });
    const owner = holding(guard, 'k');
    await clock.advance(100); // renewal sent at 100 is confirmed
    expect(state.renewals).toBe(1);
    state.down = true;
    await clock.advance(299);
    expect(owner.signal().aborted).toBe(false);
    await clock.advance(1); // 300 ms after the last confirmed renewal was sent
    expect(owner.signal().aborted).toBe(true);
    const reason = owner.signal().reason as LeaseLostError;
    expect(isBulwarkError(reason, 'ERR_LEASE_LOST')).toBe(true);
    expect(reason.reason).toBe('unconfirmed');
    // Nobody took the key over: once the store is back, renewals and the completion go through.
    state.down = false;
    await clock.advance(100);
    owner.finish('late but still the owner');
    expect(await owner.result).toEqual({
      kind: 'executed',
      value: 'late but still the owner',
      completion: 'stored',
    });
    expect(clock.pendingTimers).toBe(0);
  });

  it('aborts the signal on time even when a renewal never answers', async () => {
    const clock = new VirtualClock();
    const inner = memoryStore({ clock });
    let hang = false;
    const store: IdempotencyStore = {
      begin: (r) => inner.begin(r),
      renew: (...a) => (hang ? new Promise<boolean>(() => {}) : inner.renew(...a)),
      complete: (...a) => inner.complete(...a),
      release: (...a) => inner.release(...a),
    };
    const guard = idempotency<string>({ store, clock, leaseMs: 300 });
    const owner = holding(guard, 'k');
    await clock.advance(100);
    hang = true;
    await clock.advance(299);
    expect(owner.signal().aborted).toBe(false);
    await clock.advance(1);
    expect((owner.signal().reason as LeaseLostError).reason).toBe('unconfirmed');
    owner.finish('v');
    expect((await owner.result).kind).toBe('executed');
    expect(clock.pendingTimers).toBe(0);
  });

  it('reports lease-lost without writing once a renewal finds the key taken over', async () => {
    const clock = new VirtualClock();
    const { store, state, inner } = flakyStore(clock);
    const guard = idempotency<string>({ store, clock, leaseMs: 300, fingerprint: () => 'x' });
    const owner = holding(guard, 'k');
    await clock.advance(0);
    // Another process takes the key over (as it would after seeing no renewal for a lease).
    const seen = await inner.begin({ key: 'k', fingerprint: 'x', token: 'other', retainMs: 1_000 });
    if (seen.status !== 'in-progress') throw new Error(`expected in-progress, got ${seen.status}`);
    expect(
      await inner.begin({ key: 'k', fingerprint: 'x', token: 'other', retainMs: 1_000, takeover: seen }),
    ).toEqual({ status: 'acquired' });
    await clock.advance(100);
    expect((owner.signal().reason as LeaseLostError).reason).toBe('taken-over');
    expect(clock.pendingTimers).toBe(0);
    owner.finish('v');
    expect(await owner.result).toEqual({ kind: 'executed', value: 'v', completion: 'lease-lost' });
    expect(state.completes).toBe(0);
  });

  it('does not count a sighting made before a store failure: the contender waits a whole lease after it', async () => {
    const clock = new VirtualClock();
    const { store, state, inner } = flakyStore(clock);
    // A dead owner: a record nobody renews.
    await inner.begin({ key: 'k', fingerprint: 'x', token: 'dead', retainMs: 86_400_000 });
    const guard = idempotency<string>({ store, clock, leaseMs: 300, fingerprint: () => 'x' });
    expect((await guard.run('k', 'req', () => 'early')).kind).toBe('in-progress');
    await clock.advance(200);
    state.down = true; // the owner could not have renewed during this outage either
    await expect(guard.run('k', 'req', () => 'down')).rejects.toThrow(/unavailable/);
    state.down = false;
    await clock.advance(200); // 400 ms after the sighting, 200 ms after the failure
    const waiting = await guard.run('k', 'req', () => 'too early');
    expect(waiting).toEqual({ kind: 'in-progress', retryAfterMs: 100 });
    await clock.advance(100);
    expect(await guard.run('k', 'req', () => 'taken over')).toEqual({
      kind: 'executed',
      value: 'taken over',
      completion: 'stored',
    });
  });

  it('refuses a store without renew, naming the value', () => {
    const inner = memoryStore();
    const legacy = {
      begin: inner.begin.bind(inner),
      complete: inner.complete.bind(inner),
      release: inner.release.bind(inner),
    };
    expect(() => idempotency({ store: legacy as unknown as IdempotencyStore })).toThrow(
      /store must be an IdempotencyStore \(begin, renew, complete, release\)/,
    );
  });
});
