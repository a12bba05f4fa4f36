import { seededRandom, type Timer, type TimerOptions, VirtualClock } from '@bulwark/clock';
import { DeadlineTimers, deadlineTimers } from '@bulwark/clock/authoring';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

describe('DeadlineTimers', () => {
  it('never fires a deadline before its instant', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.double({ min: 0, max: 500, noNaN: true }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.double({ min: 0.01, max: 50, noNaN: true }), { minLength: 1, maxLength: 40 }),
        async (instants, steps) => {
          const clock = new VirtualClock();
          const timers = new DeadlineTimers(clock);
          const fired: Array<{ at: number; now: number }> = [];
          for (const at of instants) timers.schedule(at, () => fired.push({ at, now: clock.now() }));
          for (const step of steps) await clock.advance(step);
          await clock.advance(600);
          expect(fired).toHaveLength(instants.length);
          for (const { at, now } of fired) {
            expect(now).toBeGreaterThanOrEqual(at);
            // at most one millisecond slot late on a virtual clock
            expect(now).toBeLessThanOrEqual(Math.ceil(at));
          }
          expect(timers.pending).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('does not fire cleared deadlines and counts only live ones', async () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    const fired: number[] = [];
    const handles = Array.from({ length: 10 }, (_, i) => timers.schedule(10 + i, () => fired.push(i)));
    expect(timers.pending).toBe(10);
    for (let i = 0; i < 10; i += 2) handles[i]!.clear();
    handles[0]!.clear();
    expect(timers.pending).toBe(5);
    await clock.advance(100);
    expect(fired).toEqual([1, 3, 5, 7, 9]);
    expect(timers.pending).toBe(0);
  });

  it('uses one clock timer however many deadlines are pending', () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    for (let i = 0; i < 1_000; i++) timers.schedule(1_000 + i * 3, () => {});
    expect(timers.pending).toBe(1_000);
    expect(clock.pendingTimers).toBe(1);
  });

  it('re-arms for an earlier deadline scheduled after a later one', async () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    const seen: string[] = [];
    timers.schedule(1_000, () => seen.push('late'));
    timers.schedule(5, () => seen.push('early'));
    await clock.advance(5);
    expect(seen).toEqual(['early']);
    await clock.advance(995);
    expect(seen).toEqual(['early', 'late']);
  });

  it('keeps firing the others when one callback throws', async () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    const seen: string[] = [];
    const errors: unknown[] = [];
    const onError = (e: unknown) => errors.push(e);
    process.on('uncaughtException', onError);
    try {
      timers.schedule(3, () => {
        throw new Error('boom');
      });
      timers.schedule(3, () => seen.push('second'));
      await clock.advance(3);
      expect(seen).toEqual(['second']);
      expect(errors).toEqual([expect.objectContaining({ message: 'boom' })]);
    } finally {
      process.off('uncaughtException', onError);
    }
  });

  it('shares one instance per clock', () => {
    const clock = new VirtualClock();
    expect(deadlineTimers(clock)).toBe(deadlineTimers(clock));
    expect(deadlineTimers(clock)).not.toBe(deadlineTimers(new VirtualClock()));
  });
});

describe('seededRandom', () => {
  it('repeats the same sequence for the same seed, within [0, 1)', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 1_000 }, () => a());
    expect(Array.from({ length: 1_000 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(new Set(xs).size).toBeGreaterThan(990);
  });
});

describe('DeadlineTimers within one slot', () => {
  it('fires deadlines of the same millisecond in the order they were scheduled', async () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    const seen: string[] = [];
    timers.schedule(10.2, () => seen.push('first'));
    timers.schedule(10.9, () => seen.push('second'));
    timers.schedule(10, () => seen.push('earlier slot'));
    timers.schedule(10.5, () => seen.push('third'));
    await clock.advance(11);
    expect(seen).toEqual(['earlier slot', 'first', 'second', 'third']);
  });

  it('does not fire a deadline that an earlier callback of the same slot cleared', async () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    const seen: string[] = [];
    const errors: unknown[] = [];
    const onError = (e: unknown) => errors.push(e);
    process.on('uncaughtException', onError);
    try {
      let victim: { clear(): void } | undefined;
      timers.schedule(5.1, () => {
        seen.push('first');
        victim?.clear();
      });
      victim = timers.schedule(5.2, () => seen.push('cleared, must not fire'));
      timers.schedule(5.3, () => seen.push('third'));
      // A callback that schedules into the slot being fired: it still fires.
      timers.schedule(5.4, () => timers.schedule(5, () => seen.push('late addition')));
      await clock.advance(6);
      expect(seen).toEqual(['first', 'third', 'late addition']);
      expect(timers.pending).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      process.off('uncaughtException', onError);
    }
  });
});

/**
 * A VirtualClock that remembers which of its pending timers would keep a Node.js
 * process alive (created without `unref`, or `ref()`'d since).
 */
class RefTrackingClock extends VirtualClock {
  readonly #refed = new Set<object>();
  override setTimeout(callback: () => void, ms: number, options?: TimerOptions): Timer {
    const refed = this.#refed;
    let handle: Timer | undefined;
    const inner = super.setTimeout(() => {
      refed.delete(handle!);
      callback();
    }, ms);
    handle = {
      clear: () => {
        refed.delete(handle!);
        inner.clear();
      },
      ref: () => void refed.add(handle!),
      unref: () => void refed.delete(handle!),
    };
    if (options?.unref !== true) refed.add(handle);
    return handle;
  }
  /** Whether some pending timer would keep the process alive. */
  get holdsProcess(): boolean {
    return this.#refed.size > 0;
  }
}

describe('DeadlineTimers and the process lifetime', () => {
  it('keeps the process alive exactly while a deadline scheduled without unref is pending', async () => {
    const clock = new RefTrackingClock();
    const timers = new DeadlineTimers(clock);
    const fired: string[] = [];
    const background = timers.schedule(50, () => fired.push('background'), { unref: true });
    expect(clock.holdsProcess).toBe(false);
    const awaited = timers.schedule(100, () => fired.push('awaited'));
    expect(clock.holdsProcess).toBe(true);
    awaited.clear();
    expect(clock.holdsProcess).toBe(false);
    timers.schedule(100, () => fired.push('awaited again'));
    expect(clock.holdsProcess).toBe(true);
    // The shared timer fires the unref'd one at 50 and re-arms, still holding the process.
    await clock.advance(60);
    expect(fired).toEqual(['background']);
    expect(clock.holdsProcess).toBe(true);
    await clock.advance(40);
    expect(fired).toEqual(['background', 'awaited again']);
    expect(clock.holdsProcess).toBe(false);
    background.clear();
  });

  it('lets an idle timer (every deadline cleared) not hold the process', () => {
    const clock = new RefTrackingClock();
    const timers = new DeadlineTimers(clock);
    const handles = Array.from({ length: 5 }, (_, i) => timers.schedule(10 + i, () => {}));
    expect(clock.holdsProcess).toBe(true);
    for (const handle of handles) handle.clear();
    expect(timers.pending).toBe(0);
    expect(clock.holdsProcess).toBe(false);
  });
});

describe('DeadlineTimers slot bookkeeping', () => {
  it('fires every uncleared deadline once and never early, while idle slots are dropped in between', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            at: fc.oneof(fc.double({ min: 0, max: 3_000, noNaN: true }), fc.constant(1e15)),
            clearAfter: fc.option(fc.integer({ min: 0, max: 2_999 }), { nil: undefined }),
          }),
          { minLength: 1, maxLength: 3_000 },
        ),
        async (plan) => {
          const clock = new VirtualClock();
          const timers = new DeadlineTimers(clock);
          const fired = new Map<number, number>();
          const handles = plan.map(({ at }, i) =>
            timers.schedule(at, () => fired.set(i, (fired.get(i) ?? 0) + (clock.now() >= at ? 1 : 1_000))),
          );
          // Clear in a shuffled but deterministic order, so slots go idle all over the range.
          const order = plan
            .map((step, i) => ({ i, after: step.clearAfter }))
            .filter((c): c is { i: number; after: number } => c.after !== undefined)
            .sort((a, b) => a.after - b.after);
          for (const { i } of order) {
            handles[i]!.clear();
            expect(timers.slots).toBeLessThanOrEqual(2 * Math.max(timers.pending, 1_024));
          }
          await clock.advance(3_001);
          const cleared = new Set(order.map((c) => c.i));
          plan.forEach(({ at }, i) => {
            const expected = cleared.has(i) || at > 3_001 ? undefined : 1;
            expect(fired.get(i)).toBe(expected);
          });
          expect(timers.pending).toBe(plan.filter(({ at }, i) => !cleared.has(i) && at > 3_001).length);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('keeps memory bounded when a callback clears deadlines of the slot being fired', async () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    const seen: number[] = [];
    for (let round = 0; round < 3_000; round++) {
      const at = clock.now() + 1;
      let victim: Timer | undefined;
      timers.schedule(at, () => {
        seen.push(round);
        victim?.clear();
      });
      victim = timers.schedule(at, () => seen.push(-1));
      timers.schedule(clock.now() + 1e15, () => {}).clear();
      await clock.advance(1);
    }
    expect(seen).toHaveLength(3_000);
    expect(seen.includes(-1)).toBe(false);
    expect(timers.pending).toBe(0);
    expect(timers.slots).toBeLessThanOrEqual(2_048);
  });
});
