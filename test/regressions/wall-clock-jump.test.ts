// Wall clocks jump (NTP steps, manual changes); bulwark measures every duration
// on a monotonic clock, so a jump of Date.now in the middle of a deadline changes
// nothing.
import { systemClock, VirtualClock } from '@bulwark/clock';
import { pipeline } from '@bulwark/core';
import { Deadline, deadline } from '@bulwark/deadline';
import { constant, retry, retryBudget } from '@bulwark/retry';
import { afterEach, describe, expect, it, vi } from 'vitest';

const HOUR = 3_600_000;

afterEach(() => {
  vi.restoreAllMocks();
});

describe('a wall-clock jump during a deadline', () => {
  it('changes neither when a deadline policy fires nor what it reports', async () => {
    const clock = new VirtualClock();
    const realNow = Date.now();
    let offset = 0;
    const dateNow = vi.spyOn(Date, 'now').mockImplementation(() => realNow + offset);
    const p = deadline(1_000, { clock })
      .execute(
        (ctx) =>
          new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
      )
      .catch((e: unknown) => e);
    await clock.advance(300);
    offset = -HOUR;
    await clock.advance(300);
    offset = +HOUR;
    await clock.advance(399);
    let settled = false;
    void p.then(() => {
      settled = true;
    });
    await clock.advance(0);
    expect(settled).toBe(false);
    await clock.advance(1);
    expect(await p).toMatchObject({ code: 'ERR_DEADLINE_EXCEEDED', budgetMs: 1_000 });
    expect(clock.now()).toBe(1_000);
    expect(dateNow).not.toHaveBeenCalled();
  });

  it('changes neither the retry delays nor the retry budget window', async () => {
    const clock = new VirtualClock();
    const realNow = Date.now();
    let offset = 0;
    const dateNow = vi.spyOn(Date, 'now').mockImplementation(() => realNow + offset);
    const budget = retryBudget({ ratio: 0, minRetriesPerSecond: 1, windowMs: 2_000, clock });
    const starts: number[] = [];
    const p = pipeline(
      deadline(5_000, { clock }),
      retry({ clock, maxAttempts: 4, backoff: constant(500), budget, retryOn: () => true }),
    )
      .execute(() => {
        starts.push(clock.now());
        // Jump the wall clock an hour back, then an hour forward, between attempts.
        offset = offset === 0 ? -HOUR : offset < 0 ? HOUR : 0;
        throw new Error('down');
      })
      .catch((e: unknown) => e);
    await clock.advance(1_000);
    // Two retries fit the budget (1 per second over 2 s); the third is refused.
    expect(await p).toMatchObject({ message: 'down' });
    expect(starts).toEqual([0, 500, 1_000]);
    expect(budget.available()).toBe(0);
    await clock.advance(2_000);
    expect(budget.available()).toBe(2);
    expect(dateNow).not.toHaveBeenCalled();
  });

  it('leaves a system-clock deadline counting down normally', async () => {
    const realNow = Date.now();
    let offset = 0;
    vi.spyOn(Date, 'now').mockImplementation(() => realNow + offset);
    const d = Deadline.after(10_000, { clock: systemClock });
    const before = d.remaining();
    offset = -HOUR;
    const afterBackwards = d.remaining();
    offset = +HOUR;
    const afterForwards = d.remaining();
    expect(afterBackwards).toBeLessThanOrEqual(before);
    expect(afterForwards).toBeLessThanOrEqual(afterBackwards);
    expect(before - afterForwards).toBeLessThan(1_000);
    expect(d.expired()).toBe(false);
  });
});
