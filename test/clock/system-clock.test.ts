// The system clock is the one place that touches real time, so these tests wait
// on it for a few milliseconds at most.
import { systemClock } from '@bulwark/clock';
import { describe, expect, it } from 'vitest';

describe('systemClock', () => {
  it('never goes backwards', () => {
    let previous = systemClock.now();
    for (let i = 0; i < 10_000; i++) {
      const now = systemClock.now();
      expect(now).toBeGreaterThanOrEqual(previous);
      previous = now;
    }
  });

  it('never fires a timer early', async () => {
    const results = await Promise.all(
      [1, 3, 7, 15].map(
        (ms) =>
          new Promise<number>((resolve) => {
            const start = systemClock.now();
            systemClock.setTimeout(() => resolve(systemClock.now() - start - ms), ms);
          }),
      ),
    );
    for (const lateness of results) expect(lateness).toBeGreaterThanOrEqual(0);
  });

  it('does not fire a delay above 2^31-1 ms after 1 ms, as bare Node timers do', async () => {
    let fired = false;
    const timer = systemClock.setTimeout(
      () => {
        fired = true;
      },
      2 ** 31 + 10,
      { unref: true },
    );
    await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 20));
    timer.clear();
    expect(fired).toBe(false);
  });

  it('cancels a cleared timer', async () => {
    let fired = false;
    const timer = systemClock.setTimeout(() => {
      fired = true;
    }, 2);
    timer.clear();
    await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 10));
    expect(fired).toBe(false);
  });

  it('rejects a NaN delay', () => {
    expect(() => systemClock.setTimeout(() => {}, Number.NaN)).toThrow(/got NaN/);
  });
});
