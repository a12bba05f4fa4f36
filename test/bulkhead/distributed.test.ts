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
import { runWithDeadline } from '@bulwark/core/authoring';
import { afterEach, describe, expect, it } from 'vitest';
import { installOtel, resetOtel } from '../support/otel.ts';

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

  it('answers with the outcome at the deadline when the release hangs, and the release still goes through behind it', async () => {
    const store = new MemorySemaphore();
    let releaseNow!: () => void;
    const hung = new Promise<void>((resolve) => (releaseNow = resolve));
    const release = store.release.bind(store);
    store.release = async (key, holder) => {
      await hung;
      return release(key, holder);
    };
    const clock = new VirtualClock();
    const limit = distributedBulkhead({ maxConcurrent: 1, store, clock });
    let settled: { value?: unknown; error?: unknown } | undefined;
    runWithDeadline(clock.now() + 500, clock, () => limit.execute(() => 'ran')).then(
      (value) => (settled = { value }),
      (error: unknown) => (settled = { error }),
    );
    await flush();
    expect(settled).toBeUndefined(); // waiting for the release while the deadline allows
    await clock.advance(500);
    await flush();
    expect(settled).toEqual({ value: 'ran' });
    expect(store.holders.size).toBe(1);
    releaseNow();
    await flush();
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

describe('distributedBulkhead telemetry', () => {
  afterEach(resetOtel);

  it('reports permits held, refusals by reason and permits lost while held, by reason', async () => {
    const otel = installOtel();
    const clock = new VirtualClock();
    const store = new MemorySemaphore();
    const limit = distributedBulkhead({ maxConcurrent: 2, leaseMs: 300, name: 'db', store, clock });
    const points = async (name: string) =>
      (await otel.collect()).points(name).filter((p) => p.bulkhead === 'db');

    const a = (await limit.tryAcquire())!;
    const b = (await limit.tryAcquire())!;
    expect(await limit.tryAcquire()).toBeUndefined(); // full
    expect(limit.held).toBe(2);
    expect(await points('bulwark.bulkhead.distributed.held')).toEqual([{ bulkhead: 'db', value: 2 }]);

    // Another process dropped a's permit: its next renewal finds it gone.
    store.holders.delete([...store.holders.keys()][0]!);
    await clock.advance(100);
    await flush();
    expect(a.signal.aborted).toBe(true);
    expect(await points('bulwark.bulkhead.distributed.held')).toEqual([{ bulkhead: 'db', value: 1 }]);

    // The store stops answering renewals: after a lease without a confirmed one, b is lost too.
    store.renew = () => Promise.reject(new Error('store down'));
    await clock.advance(300);
    await flush();
    await clock.advance(100);
    await flush();
    expect(b.signal.aborted).toBe(true);
    expect(limit.held).toBe(0);
    expect(await points('bulwark.bulkhead.distributed.held')).toEqual([{ bulkhead: 'db', value: 0 }]);
    expect(await points('bulwark.bulkhead.distributed.lease_losses')).toEqual(
      expect.arrayContaining([
        { bulkhead: 'db', reason: 'taken-over', value: 1 },
        { bulkhead: 'db', reason: 'unconfirmed', value: 1 },
      ]),
    );

    // A store failure refuses (fail closed), counted apart from a full limit.
    store.grant = () => Promise.reject(new Error('store down'));
    store.holders.clear();
    await expect(limit.execute(() => 'ran')).rejects.toThrow('store down');
    expect(await points('bulwark.bulkhead.distributed.rejections')).toEqual(
      expect.arrayContaining([
        { bulkhead: 'db', reason: 'full', value: 1 },
        { bulkhead: 'db', reason: 'store-unavailable', value: 1 },
      ]),
    );
    await a.release();
    await b.release(); // lost permits released: still counted once
    expect(await points('bulwark.bulkhead.distributed.held')).toEqual([{ bulkhead: 'db', value: 0 }]);
  });

  it('counts a released permit out once, and names a bulkhead without a name by its key', async () => {
    const otel = installOtel();
    const limit = distributedBulkhead({
      maxConcurrent: 1,
      key: 'payments',
      store: new MemorySemaphore(),
      clock: new VirtualClock(),
    });
    const permit = (await limit.tryAcquire())!;
    await permit.release();
    await permit.release();
    await expect(limit.execute(() => 'ran')).resolves.toBe('ran');
    expect(limit.held).toBe(0);
    expect((await otel.collect()).points('bulwark.bulkhead.distributed.held')).toEqual([
      { bulkhead: 'payments', value: 0 },
    ]);
  });
});
