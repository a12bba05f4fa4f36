import { VirtualClock } from '@bulwark/clock';
import { InvalidOptionsError } from '@bulwark/core';
import { idempotency, memoryStore } from '@bulwark/idempotency';
import { describe, expect, it } from 'vitest';
import { describeStoreConformance } from './conformance.ts';

let seq = 0;
describeStoreConformance('memory', () => {
  const clock = new VirtualClock();
  const store = memoryStore({ clock });
  return {
    store: () => store,
    wait: (ms) => clock.advance(ms),
    clock,
    leaseMs: 500,
    ttlMs: 2_000,
    marginMs: 1,
    key: (name) => `${name}-${++seq}`,
  };
});

describe('memoryStore()', () => {
  it('rejects a maxEntries that is not a positive integer, naming the value', () => {
    expect(() => memoryStore({ maxEntries: 0 })).toThrow(InvalidOptionsError);
    expect(() => memoryStore({ maxEntries: 1.5 })).toThrow(/maxEntries must be an integer >= 1, got 1.5/);
  });

  it('holds at most maxEntries records, evicting the least recently used completed one', async () => {
    const clock = new VirtualClock();
    const store = memoryStore({ clock, maxEntries: 3 });
    const guard = idempotency<string>({ store, clock });
    for (const key of ['a', 'b', 'c']) await guard.run(key, 'req', () => key);
    // Touch "a" so that "b" is the least recently used.
    expect(await guard.run('a', 'req', () => 'x')).toEqual({ kind: 'replayed', value: 'a' });
    await guard.run('d', 'req', () => 'd');
    expect(store.size).toBe(3);
    expect(await guard.run('b', 'req', () => 'b again')).toMatchObject({ kind: 'executed' });
    expect(await guard.run('a', 'req', () => 'x')).toEqual({ kind: 'replayed', value: 'a' });
  });

  it('prefers evicting a completed record over a live lease', async () => {
    const clock = new VirtualClock();
    const store = memoryStore({ clock, maxEntries: 2 });
    const guard = idempotency<string>({ store, clock });
    let finish!: (v: string) => void;
    const running = guard.run('running', 'req', () => new Promise<string>((resolve) => (finish = resolve)));
    await clock.advance(0);
    await guard.run('done', 'req', () => 'done');
    await guard.run('new', 'req', () => 'new');
    expect((await guard.run('running', 'req', () => 'dup')).kind).toBe('in-progress');
    expect(store.size).toBe(2);
    finish('done');
    expect((await running).kind).toBe('executed');
    expect(clock.pendingTimers).toBe(0);
  });

  it('evicts a completed record only when it is among the 8 least recently used, and a live lease otherwise', async () => {
    const lease = (key: string) => ({
      key,
      fingerprint: 'fp',
      token: `t-${key}`,
      retainMs: 60_000,
    });
    /** `live` live leases (oldest first), then one completed record, then one more begin. */
    async function fill(live: number): Promise<ReturnType<typeof memoryStore>> {
      const store = memoryStore({ clock: new VirtualClock(), maxEntries: live + 1 });
      for (let i = 0; i < live; i++)
        expect(await store.begin(lease(`live-${i}`))).toEqual({ status: 'acquired' });
      await store.begin(lease('done'));
      expect(await store.complete('done', 't-done', '["v"]', 60_000)).toBe(true);
      expect(await store.begin(lease('new'))).toEqual({ status: 'acquired' });
      expect(store.size).toBe(live + 1);
      return store;
    }
    // 7 live leases: the completed record is the 8th least recently used, so it goes.
    const within = await fill(7);
    expect((await within.begin(lease('live-0'))).status).toBe('in-progress');
    expect(await within.begin(lease('done'))).toEqual({ status: 'acquired' });
    // 8 live leases: the scan sees only them, so the oldest live lease goes and the completed record stays.
    const beyond = await fill(8);
    expect(await beyond.begin(lease('done'))).toEqual({ status: 'completed', payload: '["v"]' });
    expect(await beyond.begin(lease('live-0'))).toEqual({ status: 'acquired' });
  });

  it('holds no timer: expiry is computed when a record is touched', async () => {
    const clock = new VirtualClock();
    const store = memoryStore({ clock });
    const guard = idempotency<string>({ store, clock, ttlMs: 1_000 });
    await guard.run('k', 'req', () => 'v');
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(999);
    expect((await guard.run('k', 'req', () => 'w')).kind).toBe('replayed');
    await clock.advance(1);
    expect((await guard.run('k', 'req', () => 'w')).kind).toBe('executed');
  });

  it('never lets the number of records exceed maxEntries, whatever the sequence of keys', async () => {
    const fc = await import('fast-check');
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 300 })), {
          maxLength: 60,
        }),
        async (maxEntries, ops) => {
          const clock = new VirtualClock();
          const store = memoryStore({ clock, maxEntries });
          const guard = idempotency<number>({ store, clock, ttlMs: 1_000, leaseMs: 100 });
          for (const [k, advance] of ops) {
            await guard.run(`k${k}`, 'req', () => k);
            await clock.advance(advance);
            expect(store.size).toBeLessThanOrEqual(maxEntries);
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  it('evicts exactly the least recently used record when every record is completed', async () => {
    const fc = await import('fast-check');
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.integer({ min: 0, max: 12 }), { maxLength: 80 }),
        async (maxEntries, keys) => {
          const store = memoryStore({ clock: new VirtualClock(), maxEntries });
          const guard = idempotency<number>({ store });
          const model: number[] = []; // least recently used first
          for (const k of keys) {
            const result = await guard.run(`k${k}`, 'req', () => k);
            const at = model.indexOf(k);
            expect(result.kind === 'replayed').toBe(at >= 0);
            if (at >= 0) model.splice(at, 1);
            model.push(k);
            if (model.length > maxEntries) model.shift();
          }
          expect(store.size).toBe(model.length);
        },
      ),
      { numRuns: 100 },
    );
  });
});
