import { getEventListeners } from 'node:events';
import { Stopwatch, sleep, VirtualClock } from '@bulwark/clock';
import { describe, expect, it } from 'vitest';

describe('sleep', () => {
  it('resolves once the clock has moved by ms, not before', async () => {
    const clock = new VirtualClock();
    let done = false;
    const p = sleep(100, { clock }).then(() => {
      done = true;
    });
    await clock.advance(99);
    expect(done).toBe(false);
    await clock.advance(1);
    await p;
    expect(done).toBe(true);
  });

  it('rejects with the signal reason, unchanged, the moment the signal aborts', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    const reason = { why: 'caller gave up' };
    const p = sleep(1_000, { clock, signal: controller.signal });
    await clock.advance(10);
    controller.abort(reason);
    await expect(p).rejects.toBe(reason);
    expect(clock.pendingTimers).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('rejects at once when the signal has already aborted', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    controller.abort(new Error('already'));
    await expect(sleep(10, { clock, signal: controller.signal })).rejects.toThrow('already');
    expect(clock.pendingTimers).toBe(0);
  });

  it('removes its abort listener when it completes normally', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    const p = sleep(10, { clock, signal: controller.signal });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    await clock.advance(10);
    await p;
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('keeps listener counts flat across many sleeps on one long-lived signal', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    for (let i = 0; i < 200; i++) {
      const p = sleep(1, { clock, signal: controller.signal });
      await clock.advance(1);
      await p;
    }
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('rejects a NaN duration with a RangeError', async () => {
    await expect(sleep(Number.NaN, { clock: new VirtualClock() })).rejects.toThrow(RangeError);
  });
});

describe('Stopwatch', () => {
  it('measures elapsed time on the clock and restarts', async () => {
    const clock = new VirtualClock(500);
    const watch = Stopwatch.start(clock);
    await clock.advance(42);
    expect(watch.elapsed()).toBe(42);
    expect(watch.restart()).toBe(42);
    await clock.advance(8);
    expect(watch.elapsed()).toBe(8);
  });
});
