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

  it('unrefs a timer on request, so that it does not keep the process alive', () => {
    // Node lists the timers that keep the event loop alive; unref'd ones are not listed.
    const refd = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const base = refd();
    const unrefd = systemClock.setTimeout(() => {}, 60_000, { unref: true });
    expect(refd()).toBe(base);
    const plain = systemClock.setTimeout(() => {}, 60_000);
    expect(refd()).toBe(base + 1);
    plain.unref?.();
    expect(refd()).toBe(base);
    unrefd.ref?.();
    expect(refd()).toBe(base + 1);
    unrefd.clear();
    plain.clear();
    expect(refd()).toBe(base);
    // A long delay, chained in 2^31-1 ms steps, stays unref'd.
    const long = systemClock.setTimeout(() => {}, 2 ** 33, { unref: true });
    expect(refd()).toBe(base);
    long.clear();
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
