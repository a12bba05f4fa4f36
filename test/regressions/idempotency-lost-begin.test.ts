// A begin whose answer is lost (the connection reset after the store wrote the
// record, or storeTimeoutMs passed while the write was landing) leaves a record
// in progress that no one renews. The guard cannot know whether it landed, so
// it releases its own token in the background: the key is free again at once
// instead of being held for a lease, and nothing that ran is ever released.
import { VirtualClock } from '@bulwark/clock';
import { type IdempotencyStore, idempotency, memoryStore } from '@bulwark/idempotency';
import { describe, expect, it } from 'vitest';

/** A memory store whose begin writes the record and then fails to answer, while `lose` is set. */
function losingStore(clock: VirtualClock) {
  const inner = memoryStore({ clock });
  const state = { lose: false, down: false };
  const store: IdempotencyStore = {
    begin: async (request) => {
      const outcome = await inner.begin(request);
      if (state.lose) throw new Error('read ECONNRESET');
      return outcome;
    },
    renew: (...a) => (state.down ? Promise.reject(new Error('ECONNREFUSED')) : inner.renew(...a)),
    complete: (...a) => (state.down ? Promise.reject(new Error('ECONNREFUSED')) : inner.complete(...a)),
    release: (...a) => (state.down ? Promise.reject(new Error('ECONNREFUSED')) : inner.release(...a)),
  };
  return { store, state };
}

const LEASE_MS = 30_000;

describe('a begin whose answer was lost', () => {
  it('frees the key at once: the retry executes instead of waiting a lease', async () => {
    const clock = new VirtualClock();
    const { store, state } = losingStore(clock);
    const guard = idempotency<string>({ store, clock, leaseMs: LEASE_MS, fingerprint: () => 'f' });
    state.lose = true;
    await expect(guard.run('k', null, () => 'first')).rejects.toMatchObject({
      code: 'ERR_STORE_UNAVAILABLE',
    });
    state.lose = false;
    await clock.advance(0);
    const retry = await guard.run('k', null, () => 'second');
    expect(retry).toMatchObject({ kind: 'executed', value: 'second' });
  });

  it('keeps trying to free it while the store is down, and frees it once the store is back', async () => {
    const clock = new VirtualClock();
    const { store, state } = losingStore(clock);
    const guard = idempotency<string>({ store, clock, leaseMs: LEASE_MS, fingerprint: () => 'f' });
    state.lose = true;
    state.down = true;
    await expect(guard.run('k', null, () => 'first')).rejects.toMatchObject({
      code: 'ERR_STORE_UNAVAILABLE',
    });
    state.lose = false;
    await clock.advance(2_000);
    expect(guard.pendingCompletions).toBe(1);
    state.down = false;
    await clock.advance(LEASE_MS / 6);
    expect(guard.pendingCompletions).toBe(0);
    const retry = await guard.run('k', null, () => 'second');
    expect(retry).toMatchObject({ kind: 'executed', value: 'second' });
  });

  it("never frees another owner's key: a begin that never landed releases nothing", async () => {
    const clock = new VirtualClock();
    const inner = memoryStore({ clock });
    let fail = false;
    const store: IdempotencyStore = {
      begin: (request) => (fail ? Promise.reject(new Error('ECONNREFUSED')) : inner.begin(request)),
      renew: (...a) => inner.renew(...a),
      complete: (...a) => inner.complete(...a),
      release: (...a) => inner.release(...a),
    };
    const owner = idempotency<string>({ store, clock, leaseMs: LEASE_MS, fingerprint: () => 'f' });
    const other = idempotency<string>({ store, clock, leaseMs: LEASE_MS, fingerprint: () => 'f' });
    const held = await owner.begin('k', 'f');
    expect(held.kind).toBe('acquired');
    fail = true;
    await expect(other.begin('k', 'f')).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' });
    fail = false;
    await clock.advance(1_000);
    expect((await other.begin('k', 'f')).kind).toBe('in-progress');
    if (held.kind === 'acquired') expect(await held.lease.complete('done')).toBe('stored');
    expect(await other.begin('k', 'f')).toMatchObject({ kind: 'replayed', value: 'done' });
  });
});
