import { sleep, VirtualClock } from '@bulwark/clock';
import { describe, expect, it } from 'vitest';

describe('VirtualClock', () => {
  it('fires timers in due order, ties in creation order', async () => {
    const clock = new VirtualClock();
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b@20'), 20);
    clock.setTimeout(() => fired.push('a@10'), 10);
    clock.setTimeout(() => fired.push('c@20'), 20);
    clock.setTimeout(() => fired.push('d@10'), 10);
    await clock.advance(20);
    expect(fired).toEqual(['a@10', 'd@10', 'b@20', 'c@20']);
    expect(clock.now()).toBe(20);
  });

  it('drives async code that sleeps on it', async () => {
    const clock = new VirtualClock();
    const log: number[] = [];
    const task = (async () => {
      for (let i = 0; i < 3; i++) {
        await sleep(100, { clock });
        log.push(clock.now());
      }
    })();
    await clock.advance(1000);
    await task;
    expect(log).toEqual([100, 200, 300]);
  });
});

describe('VirtualClock and promise reactions', () => {
  it('settles every promise reaction a firing starts before the next timer fires, even at the same instant', async () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    // A chain of reactions several microtask turns deep behind the first timer.
    void (async () => {
      await gate;
      await Promise.resolve();
      await null;
      log.push('reaction chain done');
    })();
    clock.setTimeout(() => {
      log.push('first');
      release();
    }, 10);
    clock.setTimeout(() => log.push('second'), 10);
    await clock.advance(10);
    expect(log).toEqual(['first', 'reaction chain done', 'second']);
  });

  it('lets a reaction schedule a timer that fires within the same advance, at its own instant', async () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    const first = sleep(10, { clock }).then(() => {
      seen.push(clock.now());
      return sleep(5, { clock });
    });
    void first.then(() => seen.push(clock.now()));
    clock.setTimeout(() => seen.push(clock.now()), 12);
    await clock.advance(20);
    expect(seen).toEqual([10, 12, 15]);
    expect(clock.now()).toBe(20);
    expect(clock.pendingTimers).toBe(0);
  });

  it('counts pending timers as they are created, cleared and fired', async () => {
    const clock = new VirtualClock();
    const a = clock.setTimeout(() => {}, 5);
    clock.setTimeout(() => {}, 10);
    clock.setTimeout(() => {}, 15);
    expect(clock.pendingTimers).toBe(3);
    a.clear();
    expect(clock.pendingTimers).toBe(2);
    await clock.advance(10);
    expect(clock.pendingTimers).toBe(1);
    expect(clock.nextDue).toBe(15);
    await clock.runAll();
    expect(clock.pendingTimers).toBe(0);
    expect(clock.nextDue).toBeUndefined();
  });
});

describe('VirtualClock timers', () => {
  it('runs each callback at its own due instant while advancing', async () => {
    const clock = new VirtualClock(1000);
    const seen: number[] = [];
    clock.setTimeout(() => seen.push(clock.now()), 5);
    clock.setTimeout(() => seen.push(clock.now()), 250);
    await clock.advance(300);
    expect(seen).toEqual([1005, 1250]);
    expect(clock.now()).toBe(1300);
  });

  it('does not fire a cleared timer and stops counting it as pending', async () => {
    const clock = new VirtualClock();
    let fired = false;
    const timer = clock.setTimeout(() => {
      fired = true;
    }, 10);
    expect(clock.pendingTimers).toBe(1);
    timer.clear();
    timer.clear();
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(100);
    expect(fired).toBe(false);
  });

  it('fires timers scheduled by other timers within the same advance', async () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    clock.setTimeout(() => {
      seen.push(clock.now());
      clock.setTimeout(() => seen.push(clock.now()), 10);
    }, 10);
    await clock.advance(25);
    expect(seen).toEqual([10, 20]);
  });

  it('runAll fires every pending timer and moves time to the last one', async () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    clock.setTimeout(() => seen.push(clock.now()), 3_000);
    clock.setTimeout(() => seen.push(clock.now()), 70);
    await clock.runAll();
    expect(seen).toEqual([70, 3_000]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('runAll gives up on timers that reschedule themselves forever', async () => {
    const clock = new VirtualClock();
    const again = (): void => {
      clock.setTimeout(again, 1);
    };
    again();
    await expect(clock.runAll(50)).rejects.toThrow(/still 1 timers pending after firing 50/);
  });

  it('treats a negative delay as zero and never fires an infinite one', async () => {
    const clock = new VirtualClock();
    const seen: string[] = [];
    clock.setTimeout(() => seen.push('negative'), -5);
    clock.setTimeout(() => seen.push('infinite'), Number.POSITIVE_INFINITY);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(0);
    expect(seen).toEqual(['negative']);
  });

  it('rejects a NaN delay and an invalid advance with RangeErrors', async () => {
    const clock = new VirtualClock();
    expect(() => clock.setTimeout(() => {}, Number.NaN)).toThrow(RangeError);
    await expect(clock.advance(-1)).rejects.toThrow(/advance: ms must be a finite number >= 0, got -1/);
    expect(() => new VirtualClock(Number.NaN)).toThrow(/startMs must be finite, got NaN/);
  });
});
