// A completion (or release) that the store fails is not the end of the lease:
// the owner keeps renewing and writes it in the background, so a response that
// was sent is stored once the store is back, and the handler never runs twice
// while the owner lives. Every test runs on a VirtualClock.
import { VirtualClock } from '@bulwark/clock';
import {
  type CompletionEvent,
  type IdempotencyGuard,
  type IdempotencyStore,
  idempotency,
  memoryStore,
} from '@bulwark/idempotency';
import { describe, expect, it } from 'vitest';

type Mode = 'up' | 'down' | 'hang';

/** A memory store shared by several guards (processes), whose commands can fail or hang. */
function faultyStore(clock: VirtualClock) {
  const inner = memoryStore({ clock });
  const state = { mode: 'up' as Mode, renewals: 0, completes: 0, releases: 0, landed: [] as string[] };
  const gate =
    <A extends unknown[], R>(name: string, f: (...a: A) => Promise<R>) =>
    (...a: A): Promise<R> => {
      if (state.mode === 'down') return Promise.reject(new Error('connect ECONNREFUSED'));
      if (state.mode === 'hang') return new Promise<R>(() => {});
      return f(...a).then((r) => {
        if (r === true) state.landed.push(name);
        return r;
      });
    };
  const store: IdempotencyStore = {
    begin: gate('begin', (r) => inner.begin(r)),
    renew: gate('renew', (...a) => {
      state.renewals++;
      return inner.renew(...a);
    }),
    complete: gate('complete', (...a) => {
      state.completes++;
      return inner.complete(...a);
    }),
    release: gate('release', (...a) => {
      state.releases++;
      return inner.release(...a);
    }),
  };
  return { store, state, inner };
}

function events(guard: IdempotencyGuard<string>): CompletionEvent[] {
  const seen: CompletionEvent[] = [];
  guard.onCompletion((e) => seen.push(e));
  return seen;
}

/** Another process with the same store: polls `key` and counts how often it executes. */
function contender(store: IdempotencyStore, clock: VirtualClock, leaseMs: number) {
  const guard = idempotency<string>({ store, clock, leaseMs, fingerprint: () => 'x', storeTimeoutMs: 50 });
  const seen = { executed: 0, replayed: 0, inProgress: 0, failed: 0 };
  return {
    seen,
    async poll(key: string): Promise<void> {
      try {
        const r = await guard.run(key, 'req', () => 'second execution');
        if (r.kind === 'executed') seen.executed++;
        else if (r.kind === 'replayed') seen.replayed++;
        else if (r.kind === 'in-progress') seen.inProgress++;
      } catch {
        seen.failed++;
      }
    },
  };
}

const LEASE = 300;

describe('a completion the store failed is retried in the background', () => {
  it('stores the response once the store recovers, renewing meanwhile, and no contender ever executes', async () => {
    const clock = new VirtualClock();
    const { store, state } = faultyStore(clock);
    const owner = idempotency<string>({
      store,
      clock,
      leaseMs: LEASE,
      fingerprint: () => 'x',
      random: () => 0,
    });
    const seen = events(owner);
    const other = contender(store, clock, LEASE);
    const decision = await owner.begin('k', 'x');
    if (decision.kind !== 'acquired') throw new Error(decision.kind);
    state.mode = 'down';
    expect(await decision.lease.complete('answer')).toBe('store-error');
    const pendingWhileDown = owner.pendingCompletions;
    // The store stays down for three leases; the contender polls all along.
    for (let t = 0; t < 3 * LEASE; t += 10) {
      await clock.advance(10);
      await other.poll('k');
    }
    const renewalsWhileDown = state.renewals;
    expect(renewalsWhileDown).toBe(0); // every renewal failed before reaching the store
    state.mode = 'up';
    for (let t = 0; t < 3 * LEASE; t += 10) {
      await clock.advance(10);
      await other.poll('k');
    }
    expect(other.seen.executed).toBe(0);
    expect(other.seen.replayed).toBeGreaterThan(0);
    expect(seen.map((e) => [e.result, e.retried === true])).toEqual([
      ['store-error', false],
      ['stored', true],
    ]);
    expect(pendingWhileDown).toBe(1);
    expect(owner.pendingCompletions).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('keeps renewing while the completion is retried', async () => {
    const clock = new VirtualClock();
    const { store, state } = faultyStore(clock);
    let failCompletes = true;
    const flaky: IdempotencyStore = {
      ...store,
      complete: (...a) => (failCompletes ? Promise.reject(new Error('timeout')) : store.complete(...a)),
    };
    const owner = idempotency<string>({ store: flaky, clock, leaseMs: LEASE, random: () => 0 });
    const decision = await owner.begin('k', 'x');
    if (decision.kind !== 'acquired') throw new Error(decision.kind);
    expect(await decision.lease.complete('answer')).toBe('store-error');
    await clock.advance(LEASE * 2);
    expect(state.renewals).toBe(6); // one every leaseMs / 3, as while the handler ran
    failCompletes = false;
    await clock.advance(50);
    expect(state.landed.at(-1)).toBe('complete');
    const renewals = state.renewals;
    await clock.advance(LEASE * 3);
    expect(state.renewals).toBe(renewals);
    expect(clock.pendingTimers).toBe(0);
  });

  it('lands before any contender that saw the outage could take over (the ordering that makes it exactly once)', async () => {
    // The store comes back at R. The contender, which saw it down, counts its
    // sightings from its first answer after R, so it cannot take over before
    // R + leaseMs. The owner's next renewal goes out within leaseMs / 3 and its
    // next try within leaseMs / 6, even when a command sent during the
    // outage hangs (it is given up after leaseMs / 3).
    for (const outage of ['down', 'hang'] as const) {
      const clock = new VirtualClock();
      const { store, state, inner } = faultyStore(clock);
      const owner = idempotency<string>({ store, clock, leaseMs: LEASE, fingerprint: () => 'x' });
      const other = contender(store, clock, LEASE);
      const decision = await owner.begin('k', 'x');
      if (decision.kind !== 'acquired') throw new Error(decision.kind);
      state.mode = outage;
      const completing = decision.lease.complete('answer');
      await clock.advance(7);
      const polled = other.poll('k'); // sees the outage (fails, or hangs past storeTimeoutMs)
      await clock.advance(5 * LEASE);
      await polled;
      expect(other.seen.failed).toBe(1);
      expect(await completing).toBe('store-error');
      state.mode = 'up';
      const backAt = clock.now();
      let firstChangeAt: number | undefined;
      const before = await inner.begin({ key: 'k', fingerprint: 'x', token: 'peek', retainMs: 1 });
      for (let t = 0; t < LEASE; t++) {
        await clock.advance(1);
        await other.poll('k');
        const now = await inner.begin({ key: 'k', fingerprint: 'x', token: 'peek', retainMs: 1 });
        if (firstChangeAt === undefined && JSON.stringify(now) !== JSON.stringify(before))
          firstChangeAt = clock.now();
      }
      expect(firstChangeAt).toBeDefined();
      expect(firstChangeAt! - backAt).toBeLessThanOrEqual(LEASE / 2);
      expect(other.seen.executed).toBe(0);
      await clock.advance(LEASE);
      await other.poll('k');
      expect(other.seen.replayed).toBeGreaterThan(0);
      expect(other.seen.executed).toBe(0);
    }
  });

  it('bounds each try when the store hangs: the first answers store-error after leaseMs / 3, and tries go on', async () => {
    const clock = new VirtualClock();
    const { store, state } = faultyStore(clock);
    const owner = idempotency<string>({ store, clock, leaseMs: LEASE, random: () => 0 });
    const seen = events(owner);
    const decision = await owner.begin('k', 'x');
    if (decision.kind !== 'acquired') throw new Error(decision.kind);
    state.mode = 'hang';
    let result: string | undefined;
    void decision.lease.complete('answer').then((r) => (result = r));
    await clock.advance(LEASE / 3 - 1);
    expect(result).toBeUndefined();
    await clock.advance(1);
    expect(result).toBe('store-error');
    expect(String(seen[0]!.error)).toMatch(/did not answer complete within 100 ms/);
    // With storeTimeoutMs, that is the bound instead.
    const timed = idempotency<string>({ store, clock, leaseMs: LEASE, storeTimeoutMs: 20 });
    state.mode = 'up';
    const second = await timed.begin('k2', 'x');
    if (second.kind !== 'acquired') throw new Error(second.kind);
    state.mode = 'hang';
    let timedResult: string | undefined;
    void second.lease.complete('answer').then((r) => (timedResult = r));
    await clock.advance(20);
    expect(timedResult).toBe('store-error');
    // The store answers again: both land.
    state.mode = 'up';
    await clock.advance(LEASE);
    expect(owner.pendingCompletions).toBe(0);
    expect(timed.pendingCompletions).toBe(0);
    expect(seen.at(-1)).toMatchObject({ result: 'stored', retried: true });
  });

  it('stops and reports lease-lost when the key is found taken over during the retries', async () => {
    const clock = new VirtualClock();
    const { store, state, inner } = faultyStore(clock);
    const owner = idempotency<string>({ store, clock, leaseMs: LEASE, fingerprint: () => 'x' });
    const seen = events(owner);
    const decision = await owner.begin('k', 'x');
    if (decision.kind !== 'acquired') throw new Error(decision.kind);
    state.mode = 'down';
    expect(await decision.lease.complete('answer')).toBe('store-error');
    // Another process took the key over (it saw no renewal for a lease).
    const observed = await inner.begin({ key: 'k', fingerprint: 'x', token: 'other', retainMs: 1_000_000 });
    if (observed.status !== 'in-progress') throw new Error(observed.status);
    await inner.begin({
      key: 'k',
      fingerprint: 'x',
      token: 'other',
      retainMs: 1_000_000,
      takeover: observed,
    });
    state.mode = 'up';
    await clock.advance(LEASE);
    expect(seen.map((e) => e.result)).toEqual(['store-error', 'lease-lost']);
    expect(seen[1]?.retried).toBe(true);
    expect(state.completes).toBeLessThanOrEqual(1);
    expect(owner.pendingCompletions).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    // The new owner's record is untouched.
    expect(await inner.begin({ key: 'k', fingerprint: 'x', token: 'peek', retainMs: 1 })).toMatchObject({
      status: 'in-progress',
      owner: 'other',
    });
  });

  it('retries a release after the handler threw, so a retry executes once it lands instead of waiting a lease', async () => {
    const clock = new VirtualClock();
    const { store, state } = faultyStore(clock);
    const owner = idempotency<string>({ store, clock, leaseMs: 60_000, fingerprint: () => 'x' });
    const seen = events(owner);
    const run = owner.run('k', 'req', async () => {
      state.mode = 'down';
      throw new Error('handler failed');
    });
    await expect(run).rejects.toThrow('handler failed');
    expect(seen.map((e) => e.result)).toEqual(['store-error']);
    state.mode = 'up';
    await clock.advance(1_000);
    expect(seen.map((e) => [e.result, e.retried === true])).toEqual([
      ['store-error', false],
      ['released', true],
    ]);
    expect(await owner.run('k', 'req', () => 'again')).toMatchObject({ kind: 'executed', value: 'again' });
    expect(clock.pendingTimers).toBe(0);
  });

  it('backs off with jitter on the guard clock: 50-100 ms at first, doubling, capped at leaseMs / 6', async () => {
    const clock = new VirtualClock();
    const { store, state } = faultyStore(clock);
    const owner = idempotency<string>({ store, clock, leaseMs: 3_000, random: () => 0.5 });
    const decision = await owner.begin('k', 'x');
    if (decision.kind !== 'acquired') throw new Error(decision.kind);
    state.mode = 'down';
    const tries: number[] = [];
    const counting: IdempotencyStore = store;
    const complete = counting.complete;
    counting.complete = (...a) => {
      tries.push(clock.now());
      return complete(...a);
    };
    const started = clock.now();
    expect(await decision.lease.complete('answer')).toBe('store-error');
    await clock.advance(3_000);
    const gaps = tries.slice(1).map((t, i) => t - tries[i]!);
    expect(tries[0]).toBe(started);
    expect(gaps.slice(0, 4)).toEqual([75, 150, 300, 500]);
    expect(Math.max(...gaps)).toBe(500);
    owner.dispose();
  });

  it('gives up on the oldest past maxPendingCompletions: it stops renewing and a contender takes it over', async () => {
    const clock = new VirtualClock();
    const { store, state } = faultyStore(clock);
    const owner = idempotency<string>({
      store,
      clock,
      leaseMs: LEASE,
      maxPendingCompletions: 2,
      fingerprint: () => 'x',
    });
    const seen = events(owner);
    const leases = [];
    for (const key of ['a', 'b', 'c']) {
      const d = await owner.begin(key, 'x');
      if (d.kind !== 'acquired') throw new Error(d.kind);
      leases.push(d.lease);
    }
    state.mode = 'down';
    for (const lease of leases) expect(await lease.complete(lease.key)).toBe('store-error');
    expect(owner.pendingCompletions).toBe(2);
    expect(seen.filter((e) => e.retried)).toEqual([
      { key: 'a', result: 'gave-up', error: expect.any(Error), retried: true },
    ]);
    state.mode = 'up';
    await clock.advance(LEASE);
    expect(seen.filter((e) => e.retried).map((e) => [e.key, e.result])).toEqual([
      ['a', 'gave-up'],
      ['b', 'stored'],
      ['c', 'stored'],
    ]);
    // 'a' is no longer renewed: a contender takes it over after a lease and executes.
    const other = contender(store, clock, LEASE);
    await other.poll('a');
    await clock.advance(LEASE);
    await other.poll('a');
    expect(other.seen.executed).toBe(1);
    expect(clock.pendingTimers).toBe(0);
  });

  it('dispose() gives up every pending retry, leaves no timer, and a later failure is not retried', async () => {
    const clock = new VirtualClock();
    const { store, state } = faultyStore(clock);
    const owner = idempotency<string>({ store, clock, leaseMs: LEASE });
    const seen = events(owner);
    const first = await owner.begin('a', 'x');
    const second = await owner.begin('b', 'x');
    if (first.kind !== 'acquired' || second.kind !== 'acquired') throw new Error('not acquired');
    state.mode = 'down';
    expect(await first.lease.complete('a')).toBe('store-error');
    await clock.advance(10);
    owner[Symbol.dispose]();
    expect(owner.pendingCompletions).toBe(0);
    expect(seen.map((e) => e.result)).toEqual(['store-error', 'gave-up']);
    // b is still held: it renews until settled, and its failed completion gives up at once.
    expect(clock.pendingTimers).toBe(1);
    expect(await second.lease.complete('b')).toBe('store-error');
    expect(seen.map((e) => e.result)).toEqual(['store-error', 'gave-up', 'store-error', 'gave-up']);
    expect(clock.pendingTimers).toBe(0);
    state.mode = 'up';
    const completes = state.completes;
    await clock.advance(10 * LEASE);
    expect(state.completes).toBe(completes);
  });

  it('refuses a bad maxPendingCompletions or random, naming the value', () => {
    const store = memoryStore();
    expect(() => idempotency({ store, maxPendingCompletions: -1 })).toThrow(/maxPendingCompletions.*-1/);
    expect(() => idempotency({ store, maxPendingCompletions: 1.5 })).toThrow(/maxPendingCompletions.*1\.5/);
    expect(() => idempotency({ store, random: 3 as unknown as () => number })).toThrow(/random/);
  });
});
