// Failures users of other idempotency libraries have reported, each pinned down
// against bulwark's guard with the memory store on a VirtualClock.
import { VirtualClock } from '@bulwark/clock';
import { idempotency, memoryStore } from '@bulwark/idempotency';
import { describe, expect, it } from 'vitest';

describe('idempotency field reports', () => {
  it('a record left in progress by a crashed owner does not block the key forever', async () => {
    const clock = new VirtualClock();
    const store = memoryStore({ clock });
    // The owner "crashes" inside fn: its clock never moves again, so it never renews.
    const crashed = idempotency<string>({ store, leaseMs: 1_000, clock: new VirtualClock() });
    void crashed.run('k', 'req', () => new Promise<string>(() => {}));
    await clock.advance(0);
    const guard = idempotency<string>({ store, leaseMs: 1_000, clock });
    expect((await guard.run('k', 'req', () => 'retry')).kind).toBe('in-progress');
    await clock.advance(999);
    expect((await guard.run('k', 'req', () => 'retry')).kind).toBe('in-progress');
    await clock.advance(1);
    expect(await guard.run('k', 'req', () => 'retry')).toEqual({
      kind: 'executed',
      value: 'retry',
      completion: 'stored',
    });
  });

  it('a failing request never deletes a record it does not own', async () => {
    const clock = new VirtualClock();
    const store = memoryStore({ clock });
    const paused = idempotency<string>({ store, leaseMs: 1_000, clock: new VirtualClock() });
    const guard = idempotency<string>({ store, leaseMs: 1_000, clock });
    let failOld!: (e: Error) => void;
    const old = paused.run('k', 'req', () => new Promise<string>((_, reject) => (failOld = reject)));
    await clock.advance(0);
    expect((await guard.run('k', 'req', () => 'early')).kind).toBe('in-progress');
    await clock.advance(1_000);
    let finishNew!: (v: string) => void;
    const current = guard.run('k', 'req', () => new Promise<string>((resolve) => (finishNew = resolve)));
    await clock.advance(0);
    failOld(new Error('old owner failed late'));
    await expect(old).rejects.toThrow('old owner failed late');
    // The new owner's lease is intact: a third request is still told to wait.
    expect((await guard.run('k', 'req', () => 'third')).kind).toBe('in-progress');
    finishNew('new');
    expect((await current).kind).toBe('executed');
    expect(await guard.run('k', 'req', () => 'fourth')).toEqual({ kind: 'replayed', value: 'new' });
  });

  it('an undefined result is replayed, not mistaken for a missing record', async () => {
    const guard = idempotency<void>({ store: memoryStore() });
    let calls = 0;
    const effect = () => {
      calls++;
    };
    await guard.run('k', 'req', effect);
    expect(await guard.run('k', 'req', effect)).toEqual({ kind: 'replayed', value: undefined });
    expect(calls).toBe(1);
  });

  it('ttlMs and leaseMs are milliseconds, not seconds', async () => {
    const clock = new VirtualClock();
    const guard = idempotency<string>({ store: memoryStore({ clock }), ttlMs: 1_500, leaseMs: 200 });
    await guard.run('k', 'req', () => 'v');
    await clock.advance(1_499);
    expect((await guard.run('k', 'req', () => 'w')).kind).toBe('replayed');
    await clock.advance(1);
    expect((await guard.run('k', 'req', () => 'w')).kind).toBe('executed');
  });
});
