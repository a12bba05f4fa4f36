import { getEventListeners } from 'node:events';
import { type Clock, Ticker, type TimerOptions, VirtualClock } from '@bulwark/clock';
import { describe, expect, it } from 'vitest';

/** A clock whose timers fire `lateBy` ms after they are due (a busy event loop), recording their options. */
class LateClock implements Clock {
  readonly inner = new VirtualClock();
  lateBy = 0;
  readonly options: (TimerOptions | undefined)[] = [];
  now(): number {
    return this.inner.now();
  }
  setTimeout(callback: () => void, ms: number, options?: TimerOptions) {
    this.options.push(options);
    return this.inner.setTimeout(callback, ms + this.lateBy);
  }
}

describe('Ticker', () => {
  it('ticks at once when started, then every intervalMs on the clock', async () => {
    const clock = new VirtualClock();
    const ticks: number[] = [];
    const ticker = new Ticker(() => ticks.push(clock.now()), { intervalMs: 100, clock });
    expect(ticker.running).toBe(false);
    expect(ticks).toEqual([]);
    ticker.start();
    expect(ticker.running).toBe(true);
    await clock.advance(350);
    expect(ticks).toEqual([0, 100, 200, 300]);
    expect(clock.pendingTimers).toBe(1);
  });

  it('with tickOnStart false, ticks first one intervalMs after start, then every intervalMs', async () => {
    const clock = new VirtualClock();
    const ticks: number[] = [];
    const ticker = new Ticker(() => ticks.push(clock.now()), { intervalMs: 100, clock, tickOnStart: false });
    ticker.start();
    expect(ticker.running).toBe(true);
    expect(ticks).toEqual([]);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(99);
    expect(ticks).toEqual([]);
    await clock.advance(251);
    expect(ticks).toEqual([100, 200, 300]);
    ticker.stop();
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(25);
    ticker.start();
    ticker.start(); // already running: no second timer
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(250);
    expect(ticks).toEqual([100, 200, 300, 475, 575]);
  });

  it('with tickOnStart false, stopped before its first tick, never ticks and leaves no timer', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    let ticks = 0;
    const ticker = new Ticker(() => ticks++, {
      intervalMs: 10,
      clock,
      signal: controller.signal,
      tickOnStart: false,
    }).start();
    controller.abort();
    expect(ticker.running).toBe(false);
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(100);
    expect(ticks).toBe(0);
  });

  it('with tickOnStart false, keeps the cadence of its start when its timers fire late', async () => {
    const clock = new LateClock();
    clock.lateBy = 3;
    const ticks: number[] = [];
    new Ticker(() => ticks.push(clock.now()), { intervalMs: 100, clock, tickOnStart: false }).start();
    await clock.inner.advance(410);
    expect(ticks).toEqual([103, 203, 303, 403]);
    expect(clock.options).toEqual([
      { unref: true },
      { unref: true },
      { unref: true },
      { unref: true },
      { unref: true },
    ]);
  });

  it('keeps its cadence when its timers fire late: the lateness does not add up', async () => {
    const clock = new LateClock();
    clock.lateBy = 3;
    const ticks: number[] = [];
    new Ticker(() => ticks.push(clock.now()), { intervalMs: 100, clock }).start();
    await clock.inner.advance(410);
    expect(ticks).toEqual([0, 103, 203, 303, 403]);
  });

  it('after a stall longer than an interval, ticks once and resumes its cadence from then', async () => {
    const clock = new LateClock();
    const ticks: number[] = [];
    clock.lateBy = 350; // the timer armed after the first tick fires 350 ms late
    const onTick = (): void => {
      if (ticks.push(clock.now()) === 2) clock.lateBy = 0;
    };
    new Ticker(onTick, { intervalMs: 100, clock }).start();
    await clock.inner.advance(700);
    expect(ticks).toEqual([0, 450, 550, 650]);
  });

  it('stops on stop() and leaves no timer; started again, it takes its cadence from the new start', async () => {
    const clock = new VirtualClock();
    const ticks: number[] = [];
    const ticker = new Ticker(() => ticks.push(clock.now()), { intervalMs: 100, clock }).start();
    await clock.advance(150);
    ticker.stop();
    ticker.stop();
    expect(ticker.running).toBe(false);
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(500);
    expect(ticks).toEqual([0, 100]);
    ticker.start();
    ticker.start(); // already running: no second tick, no second timer
    await clock.advance(100);
    expect(ticks).toEqual([0, 100, 650, 750]);
    expect(clock.pendingTimers).toBe(1);
    ticker[Symbol.dispose]();
    expect(clock.pendingTimers).toBe(0);
  });

  it('arms the next tick after onTick returns, so a timer onTick arms for the same instant fires first', async () => {
    const clock = new VirtualClock();
    const order: string[] = [];
    new Ticker(
      () => {
        order.push(`tick ${clock.now()}`);
        clock.setTimeout(() => order.push(`deadline ${clock.now()}`), 100);
      },
      { intervalMs: 100, clock },
    ).start();
    await clock.advance(200);
    expect(order).toEqual(['tick 0', 'deadline 100', 'tick 100', 'deadline 200', 'tick 200']);
  });

  it('may be stopped from inside a tick', async () => {
    const clock = new VirtualClock();
    let ticks = 0;
    const ticker = new Ticker(
      () => {
        if (++ticks === 3) ticker.stop();
      },
      { intervalMs: 10, clock },
    ).start();
    await clock.advance(100);
    expect(ticks).toBe(3);
    expect(clock.pendingTimers).toBe(0);
  });

  it('keeps ticking when a tick throws', async () => {
    const clock = new VirtualClock();
    let ticks = 0;
    const ticker = new Ticker(
      () => {
        ticks++;
        throw new Error('tick failed');
      },
      { intervalMs: 10, clock },
    );
    expect(() => ticker.start()).toThrow('tick failed');
    expect(ticker.running).toBe(true);
    await expect(clock.advance(10)).rejects.toThrow('tick failed');
    expect(ticks).toBe(2);
    expect(clock.pendingTimers).toBe(1);
    ticker.stop();
  });

  it('stops for good when its signal aborts, and removes its listener when stopped', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    let ticks = 0;
    const ticker = new Ticker(() => ticks++, { intervalMs: 10, clock, signal: controller.signal }).start();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    ticker.stop();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    ticker.start();
    await clock.advance(10);
    controller.abort();
    expect(ticker.running).toBe(false);
    expect(clock.pendingTimers).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    ticker.start();
    expect(ticker.running).toBe(false);
    await clock.advance(100);
    expect(ticks).toBe(3);
  });

  it('unrefs its timer unless told not to, so it never holds the process by default', async () => {
    const clock = new LateClock();
    const quiet = new Ticker(() => {}, { intervalMs: 10, clock }).start();
    quiet.stop();
    const holding = new Ticker(() => {}, { intervalMs: 10, clock, unref: false }).start();
    holding.stop();
    expect(clock.options).toEqual([{ unref: true }, undefined]);
  });

  it.each([
    ['intervalMs 0', () => new Ticker(() => {}, { intervalMs: 0 }), RangeError, /intervalMs .* got 0/],
    ['intervalMs NaN', () => new Ticker(() => {}, { intervalMs: Number.NaN }), RangeError, /got NaN/],
    ['intervalMs Infinity', () => new Ticker(() => {}, { intervalMs: Infinity }), RangeError, /got Infinity/],
    ['intervalMs "5"', () => new Ticker(() => {}, { intervalMs: '5' as never }), RangeError, /got "5"/],
    [
      'a clock without timers',
      () => new Ticker(() => {}, { intervalMs: 5, clock: { now: () => 0 } as never }),
      TypeError,
      /clock must be a Clock/,
    ],
    [
      'clock null',
      () => new Ticker(() => {}, { intervalMs: 5, clock: null as never }),
      TypeError,
      /got null/,
    ],
    [
      'signal {}',
      () => new Ticker(() => {}, { intervalMs: 5, signal: {} as never }),
      TypeError,
      /signal .* got \{\}/,
    ],
    [
      'unref "yes"',
      () => new Ticker(() => {}, { intervalMs: 5, unref: 'yes' as never }),
      TypeError,
      /unref .* got "yes"/,
    ],
    [
      'tickOnStart "no"',
      () => new Ticker(() => {}, { intervalMs: 5, tickOnStart: 'no' as never }),
      TypeError,
      /tickOnStart .* got "no"/,
    ],
    [
      'tickOnStart 0',
      () => new Ticker(() => {}, { intervalMs: 5, tickOnStart: 0 as never }),
      TypeError,
      /tickOnStart .* got 0/,
    ],
    [
      'an unknown key',
      () => new Ticker(() => {}, { intervalMs: 5, interval: 5 } as never),
      RangeError,
      /unknown option "interval"/,
    ],
    ['onTick not a function', () => new Ticker(5 as never, { intervalMs: 5 }), TypeError, /onTick .* got 5/],
    ['no options', () => new Ticker(() => {}, undefined as never), TypeError, /options .* got undefined/],
  ] as const)('refuses %s with an error naming the value', (_, build, type, message) => {
    expect(build).toThrow(type);
    expect(build).toThrow(message);
  });
});
