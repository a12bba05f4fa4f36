// The distributed bulkhead against an in-memory semaphore store on a
// VirtualClock: what it does when the store's answer is lost or comes after
// the caller has gone.
import {
  distributedBulkhead,
  type SemaphoreAcquireResult,
  type SemaphoreHolder,
  type SemaphoreStore,
} from '@bulwark/bulkhead';
import { VirtualClock } from '@bulwark/clock';
import { describe, expect, it } from 'vitest';

/** Permits in a map; `grant` decides how an acquire answers once the permit is recorded. */
class MemorySemaphore implements SemaphoreStore {
  readonly holders = new Map<string, number>();
  grant: (result: SemaphoreAcquireResult) => Promise<SemaphoreAcquireResult> = (r) => Promise.resolve(r);
  async acquire(
    _key: string,
    holder: string,
    limit: number,
    suspects: readonly SemaphoreHolder[],
  ): Promise<SemaphoreAcquireResult> {
    for (const s of suspects) if (this.holders.get(s.holder) === s.renewals) this.holders.delete(s.holder);
    if (this.holders.size >= limit) {
      return {
        acquired: false,
        holders: [...this.holders].map(([h, renewals]) => ({ holder: h, renewals })),
      };
    }
    this.holders.set(holder, 0);
    return this.grant({ acquired: true });
  }
  async renew(_key: string, holder: string): Promise<boolean> {
    const n = this.holders.get(holder);
    if (n === undefined) return false;
    this.holders.set(holder, n + 1);
    return true;
  }
  async release(_key: string, holder: string): Promise<boolean> {
    return this.holders.delete(holder);
  }
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('distributedBulkhead', () => {
  it('gives back a permit the store granted when the answer is lost, and rejects with the store error', async () => {
    const store = new MemorySemaphore();
    const lost = new Error('connection reset before the answer');
    store.grant = () => Promise.reject(lost);
    const limit = distributedBulkhead({ maxConcurrent: 1, store, clock: new VirtualClock() });
    await expect(limit.execute(() => 'ran')).rejects.toBe(lost);
    await flush();
    expect(store.holders.size).toBe(0); // recorded in the store, and released right behind
    store.grant = (r) => Promise.resolve(r);
    await expect(limit.execute(() => 'ran')).resolves.toBe('ran');
  });

  it('answers a caller that aborts while acquiring at once, and a permit granted later is released without running the work', async () => {
    const store = new MemorySemaphore();
    let answer!: () => void;
    store.grant = (r) => new Promise((resolve) => (answer = () => resolve(r)));
    const limit = distributedBulkhead({ maxConcurrent: 1, store, clock: new VirtualClock() });
    const caller = new AbortController();
    let ran = 0;
    const call = limit.execute(() => ran++, { signal: caller.signal });
    await flush();
    const reason = new Error('caller gave up');
    caller.abort(reason);
    await expect(call).rejects.toBe(reason);
    answer(); // the store grants it now
    await flush();
    expect(ran).toBe(0);
    expect(store.holders.size).toBe(0);
  });

  it('does not ask the store for a caller that has already aborted', async () => {
    const store = new MemorySemaphore();
    let asked = 0;
    store.grant = (r) => {
      asked++;
      return Promise.resolve(r);
    };
    const limit = distributedBulkhead({ maxConcurrent: 1, store, clock: new VirtualClock() });
    const reason = new Error('gone');
    await expect(limit.execute(() => 'ran', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(asked).toBe(0);
  });
});
