import { getEventListeners } from 'node:events';
import { BulkheadPolicy, BulkheadRejectedError, bulkhead } from '@bulwark/bulkhead';
import { checkBulkheadOptions } from '@bulwark/bulkhead/authoring';
import { VirtualClock } from '@bulwark/clock';
import { InvalidOptionsError, isBulwarkError } from '@bulwark/core';
import { describe, expect, it } from 'vitest';

/** A call that finishes when `release()` is called. */
function gate() {
  let release!: () => void;
  const done = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { done, release };
}

describe('bulkhead()', () => {
  it('runs up to maxConcurrent calls at once and sheds the next when there is no queue', async () => {
    const b = bulkhead({ maxConcurrent: 2, clock: new VirtualClock() });
    const g = gate();
    const running = [b.execute(() => g.done), b.execute(() => g.done)];
    expect(b.active).toBe(2);
    const error = await b.execute(() => 'x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BulkheadRejectedError);
    expect(isBulwarkError(error, 'ERR_BULKHEAD_FULL')).toBe(true);
    expect((error as BulkheadRejectedError).reason).toBe('queue-full');
    expect((error as Error).message).toContain('2 running, 0 queued');
    g.release();
    await Promise.all(running);
    expect(b.active).toBe(0);
  });

  it('queues in FIFO order and hands each freed slot to the oldest waiter', async () => {
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 3, clock: new VirtualClock() });
    const order: number[] = [];
    const g = gate();
    const first = b.execute(() => g.done);
    const queued = [1, 2, 3].map((n) => b.execute(() => order.push(n)));
    expect(b.queued).toBe(3);
    g.release();
    await Promise.all([first, ...queued]);
    expect(order).toEqual([1, 2, 3]);
    expect(b.stats()).toMatchObject({ active: 0, queued: 0, admitted: 4, rejected: 0 });
  });

  it('takes a queued call out of the queue the moment its signal aborts, with the caller’s reason', async () => {
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 2, clock: new VirtualClock() });
    const g = gate();
    const first = b.execute(() => g.done);
    const controller = new AbortController();
    const reason = new Error('caller gave up');
    const waiting = b.execute(() => 'never', { signal: controller.signal }).catch((e: unknown) => e);
    expect(b.queued).toBe(1);
    controller.abort(reason);
    expect(await waiting).toBe(reason);
    expect(b.queued).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    g.release();
    await first;
  });

  it('rejects a call that waits longer than queueTimeoutMs, and holds no timer otherwise', async () => {
    const clock = new VirtualClock();
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeoutMs: 250, clock });
    const g = gate();
    const first = b.execute(() => g.done);
    expect(clock.pendingTimers).toBe(0);
    const waiting = b.execute(() => 'late').catch((e: unknown) => e);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(249);
    expect(b.queued).toBe(1);
    await clock.advance(1);
    const error = (await waiting) as BulkheadRejectedError;
    expect(error.reason).toBe('queue-timeout');
    expect(error.message).toContain('waited 250 ms');
    expect(b.stats().queueTimeouts).toBe(1);
    g.release();
    await first;
    expect(clock.pendingTimers).toBe(0);
  });

  it('releases the slot whether the call resolves, rejects or throws synchronously', async () => {
    const b = bulkhead({ maxConcurrent: 1, clock: new VirtualClock() });
    await b.execute(() => 1);
    await b.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
    await b
      .execute(() => {
        throw new Error('sync');
      })
      .catch(() => undefined);
    expect(b.active).toBe(0);
    expect(await b.execute(() => 'still works')).toBe('still works');
  });

  it('releases the slot, and counts the call once, for a thenable that misbehaves', async () => {
    const b = bulkhead({ maxConcurrent: 1, clock: new VirtualClock() });
    const boom = new Error('then getter');
    const hostile = Object.defineProperty({}, 'then', {
      get() {
        throw boom;
      },
    }) as PromiseLike<number>;
    await expect(b.execute(() => hostile)).rejects.toBe(boom);
    expect(b.active).toBe(0);
    const twice: PromiseLike<number> = {
      // biome-ignore lint/suspicious/noThenProperty: a hand-made thenable is what is tested
      then(onValue) {
        onValue?.(1);
        onValue?.(2);
        return Promise.resolve() as never;
      },
    };
    expect(await b.execute(() => twice)).toBe(1);
    expect(b.active).toBe(0);
    expect(b.stats().admitted).toBe(2);
    expect(await b.execute(() => 'still works')).toBe('still works');
  });

  it('tryAcquire gives a permit or nothing and never queues; acquire waits', async () => {
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 1, clock: new VirtualClock() });
    const permit = b.tryAcquire();
    expect(permit).toBeDefined();
    expect(b.tryAcquire()).toBeUndefined();
    const next = b.acquire();
    expect(b.queued).toBe(1);
    permit!.success();
    const second = await next;
    expect(b.active).toBe(1);
    second.release();
    expect(b.active).toBe(0);
  });

  it('treats a second release as a no-op that frees nothing and warns', () => {
    const b = bulkhead({ maxConcurrent: 2, clock: new VirtualClock() });
    const warnings: string[] = [];
    b.onWarning((e) => warnings.push(e.message));
    const a = b.tryAcquire()!;
    b.tryAcquire();
    a.release();
    a.release();
    a.success();
    expect(b.active).toBe(1);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain('released more than once');
  });

  it('leaves no listeners on a long-lived signal across many queued calls', async () => {
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 10, clock: new VirtualClock() });
    const controller = new AbortController();
    for (let i = 0; i < 20; i++) {
      const g = gate();
      const first = b.execute(() => g.done, { signal: controller.signal });
      const second = b.execute(() => i, { signal: controller.signal });
      g.release();
      await Promise.all([first, second]);
    }
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('keeps listener counts flat over 100,000 calls sharing one long-lived signal, half of them queued', async () => {
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 1, clock: new VirtualClock() });
    const controller = new AbortController();
    const signal = controller.signal;
    let peak = 0;
    for (let i = 0; i < 50_000; i++) {
      const first = b.execute(async () => i, { signal });
      const second = b.acquire({ signal });
      peak = Math.max(peak, getEventListeners(signal, 'abort').length);
      await first;
      (await second).release();
    }
    // While a call waited, its listener was there; none outlives its call.
    expect(peak).toBeGreaterThanOrEqual(1);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    expect(b.stats()).toMatchObject({ active: 0, queued: 0, admitted: 100_000 });
  });

  it('acquire({ signal }) leaves the queue the moment the signal aborts, and frees its place at once', async () => {
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 1, clock: new VirtualClock() });
    const held = b.tryAcquire()!;
    const controller = new AbortController();
    const waiting = b.acquire({ signal: controller.signal });
    expect(b.queued).toBe(1);
    const reason = { why: 'client disconnected' };
    controller.abort(reason);
    // Synchronously gone: the place is free for the next caller before any promise settles.
    expect(b.queued).toBe(0);
    const next = b.acquire();
    expect(b.queued).toBe(1);
    await expect(waiting).rejects.toBe(reason);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    held.release();
    (await next).release();
    expect(b.stats()).toMatchObject({ active: 0, queued: 0, rejected: 0 });
  });

  it('rejects at once, without queueing, when the signal has already aborted', async () => {
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 1, clock: new VirtualClock() });
    const held = b.tryAcquire()!;
    const reason = new Error('already gone');
    await expect(b.acquire({ signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    await expect(b.execute(() => 1, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(b.queued).toBe(0);
    held.release();
  });

  it('does not start a queued call whose caller aborted just after it was handed a slot', async () => {
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 1, clock: new VirtualClock() });
    const held = b.tryAcquire()!;
    const controller = new AbortController();
    let ran = false;
    const waiting = b.execute(
      () => {
        ran = true;
      },
      { signal: controller.signal },
    );
    held.release(); // hands the slot to the waiter...
    controller.abort(new Error('left')); // ...whose caller leaves before it starts
    await expect(waiting).rejects.toThrow('left');
    await Promise.resolve();
    expect(ran).toBe(false);
    expect(b.active).toBe(0);
  });

  it('keeps the slot of a running call whose caller gave up until the call itself settles', async () => {
    const b = bulkhead({ maxConcurrent: 1, clock: new VirtualClock() });
    const g = gate();
    const controller = new AbortController();
    const reason = new Error('caller gave up');
    const running = b.execute(() => g.done, { signal: controller.signal });
    controller.abort(reason);
    await expect(running).rejects.toBe(reason);
    // The function is still running on the dependency: its slot is still taken.
    expect(b.active).toBe(1);
    expect(b.tryAcquire()).toBeUndefined();
    g.release();
    await g.done;
    await Promise.resolve();
    expect(b.active).toBe(0);
  });

  it('never hands a second slot to a waiter when a permit is released twice', async () => {
    const b = bulkhead({ maxConcurrent: 2, maxQueue: 2, clock: new VirtualClock() });
    const warnings: string[] = [];
    b.onWarning((e) => warnings.push(e.message));
    const a = b.tryAcquire()!;
    b.tryAcquire()!;
    const first = b.acquire();
    const second = b.acquire();
    a.release();
    a.release();
    a.failure();
    expect(warnings).toHaveLength(2);
    expect(b.active).toBe(2);
    expect(b.queued).toBe(1);
    (await first).release();
    (await second).release();
  });

  it('does not let tryAcquire jump ahead of calls already waiting', async () => {
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 1, clock: new VirtualClock() });
    const held = b.tryAcquire()!;
    const waiting = b.acquire();
    held.release();
    // The freed slot went to the waiter, not to whoever asks next.
    expect(b.tryAcquire()).toBeUndefined();
    (await waiting).release();
    expect(b.tryAcquire()).toBeDefined();
  });

  it('reports queue timeouts to onReject too, and the queued call never runs', async () => {
    const clock = new VirtualClock();
    const b = bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeoutMs: 10, name: 'db', clock });
    const seen: string[] = [];
    b.onReject((e) => seen.push(e.reason));
    const held = b.tryAcquire()!;
    let ran = false;
    const late = b
      .execute(() => {
        ran = true;
      })
      .catch((e: unknown) => e);
    await clock.advance(10);
    const error = (await late) as BulkheadRejectedError;
    expect(isBulwarkError(error, 'ERR_BULKHEAD_FULL')).toBe(true);
    expect(error.reason).toBe('queue-timeout');
    expect(error.bulkhead).toBe('db');
    held.release();
    expect(ran).toBe(false);
    expect(seen).toEqual(['queue-timeout']);
  });

  it('reports rejections to onReject', async () => {
    const b = bulkhead({ maxConcurrent: 1, name: 'db', clock: new VirtualClock() });
    const seen: string[] = [];
    b.onReject((e) => seen.push(`${e.name}:${e.reason}`));
    const g = gate();
    const first = b.execute(() => g.done);
    await b.execute(() => 1).catch(() => undefined);
    g.release();
    await first;
    expect(seen).toEqual(['db:queue-full']);
  });

  it('rejects bad options all at once, naming each value', () => {
    let caught: unknown;
    try {
      bulkhead({ maxConcurrent: 1.5, maxQueue: -1, queueTimeoutMs: Number.NaN });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidOptionsError);
    const message = (caught as Error).message;
    expect(message).toContain('maxConcurrent must be an integer >= 1, got 1.5');
    expect(message).toContain('maxQueue must be an integer >= 0, got -1');
    expect(message).toContain('queueTimeoutMs');
    expect(() => bulkhead({ maxConcurrent: 0 })).toThrow(/got 0/);
    expect(() => bulkhead({ maxConcurrent: { limit: 3 } as never })).toThrow(
      /maxConcurrent must be an integer >= 1 or a limit source/,
    );
    expect(() => bulkhead({} as never)).toThrow(/maxConcurrent/);
  });
});

describe('checkBulkheadOptions()', () => {
  it('resolves options into a frozen object with every default, which a bulkhead takes as it is', () => {
    const clock = new VirtualClock();
    const resolved = checkBulkheadOptions('pool()', { maxConcurrent: 3, name: 'db', clock });
    expect(Object.isFrozen(resolved)).toBe(true);
    expect(resolved).toEqual({
      maxConcurrent: 3,
      maxQueue: 0,
      queueTimeoutMs: Number.POSITIVE_INFINITY,
      name: 'db',
      clock,
      refusalStacks: true,
    });
    const b = new BulkheadPolicy(resolved);
    expect([b.limit, b.maxQueue, b.name, b.clock]).toEqual([3, 0, 'db', clock]);
  });

  it("refuses bad options in one error named after the component, with the holder's own checks", () => {
    let caught: unknown;
    try {
      checkBulkheadOptions(
        'pool()',
        { maxConcurrent: -2, maxQueue: 1.5, size: 3 } as never,
        new Set(['maxConcurrent', 'maxQueue', 'size']),
        (check) => check.number('size', 3, { max: 2 }),
      );
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidOptionsError);
    const message = (caught as Error).message;
    expect(message).toContain('pool()');
    expect(message).toContain('maxConcurrent must be an integer >= 1, got -2');
    expect(message).toContain('maxQueue must be an integer >= 0, got 1.5');
    expect(message).toMatch(/size .*got 3/);
  });

  it('refuses keys it does not know', () => {
    expect(() => checkBulkheadOptions('bulkhead()', { maxConcurrent: 1, limit: 2 } as never)).toThrow(
      /limit/,
    );
  });
});
