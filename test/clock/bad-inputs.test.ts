// Every bad argument to @bulwark/clock gets a typed error that names the
// argument and the value it was given.
import { type Clock, Stopwatch, seededRandom, sleep, VirtualClock } from '@bulwark/clock';
import { DeadlineTimers, deadlineTimers } from '@bulwark/clock/authoring';
import { describe, expect, it } from 'vitest';

/** Calls `fn` and returns what it threw. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('seededRandom', () => {
  it.each([
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, 'Infinity'],
    [Number.NEGATIVE_INFINITY, '-Infinity'],
    [1.5, '1.5'],
  ])('rejects the seed %s with a RangeError that names it', (seed, shown) => {
    const error = thrown(() => seededRandom(seed));
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toBe(`seededRandom: seed must be an integer, got ${shown}`);
  });

  it('rejects a seed that is not a number with a TypeError that names it', () => {
    const error = thrown(() => seededRandom('42' as unknown as number));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('seededRandom: seed must be an integer, got "42"');
  });

  it('accepts negative and large integer seeds, and one seed always gives one sequence', () => {
    const a = seededRandom(-1);
    const b = seededRandom(-1);
    const draws = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(draws);
    for (const x of draws) {
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
    // Taken modulo 2^32, as documented.
    expect(seededRandom(2 ** 32 + 7)()).toBe(seededRandom(7)());
  });
});

describe('sleep', () => {
  it.each([
    [-1, '-1'],
    [-0.001, '-0.001'],
    [Number.NEGATIVE_INFINITY, '-Infinity'],
    [Number.NaN, 'NaN'],
  ])('rejects the delay %s with a RangeError that names it, and arms no timer', async (ms, shown) => {
    const clock = new VirtualClock();
    const p = sleep(ms, { clock });
    await expect(p).rejects.toThrow(RangeError);
    await expect(p).rejects.toThrow(`sleep: ms must be a number of milliseconds >= 0, got ${shown}`);
    expect(clock.pendingTimers).toBe(0);
  });

  it('rejects a delay that is not a number with a TypeError that names it', async () => {
    const p = sleep('10' as unknown as number, { clock: new VirtualClock() });
    await expect(p).rejects.toThrow(TypeError);
    await expect(p).rejects.toThrow('sleep: ms must be a number of milliseconds >= 0, got "10"');
  });

  it('treats 0 and -0 as valid delays that resolve without the clock moving', async () => {
    const clock = new VirtualClock(100);
    await Promise.all([sleep(0, { clock }), sleep(-0, { clock }), clock.advance(0)]);
    expect(clock.now()).toBe(100);
  });

  it.each([
    [{}, '{}'],
    [{ now: () => 0 }, '{}'],
    [null, 'null'],
  ])(
    'rejects a clock without now() and setTimeout() with a TypeError that names it',
    async (clock, shown) => {
      const p = sleep(10, { clock: clock as never });
      await expect(p).rejects.toThrow(TypeError);
      await expect(p).rejects.toThrow(
        `sleep: clock must be a Clock (an object with now() and setTimeout()), got ${shown}`,
      );
    },
  );

  it('rejects an unknown option with a RangeError that names it, and arms no timer', async () => {
    const clock = new VirtualClock();
    const p = sleep(10, { clock, clokc: clock } as never);
    await expect(p).rejects.toThrow(RangeError);
    await expect(p).rejects.toThrow('sleep: unknown option "clokc"');
    expect(clock.pendingTimers).toBe(0);
  });

  it('rejects a signal that is not an AbortSignal, and options that are not an object', async () => {
    const clock = new VirtualClock();
    await expect(sleep(10, { clock, signal: {} as never })).rejects.toThrow(
      'sleep: signal must be an AbortSignal, got {}',
    );
    await expect(sleep(10, 5 as never)).rejects.toThrow('sleep: options must be an object, got 5');
    expect(clock.pendingTimers).toBe(0);
  });

  it('accepts Infinity as a sleep that only the signal ends', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    const p = sleep(Number.POSITIVE_INFINITY, { clock, signal: controller.signal });
    await clock.advance(1e9);
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(p).rejects.toBe(reason);
  });
});

describe('Stopwatch.start', () => {
  it.each([
    [null, 'null'],
    [42, '42'],
    [{}, '{}'],
  ])('rejects the clock %s with a TypeError that names it', (clock, shown) => {
    const error = thrown(() => Stopwatch.start(clock as unknown as Clock));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe(
      `Stopwatch.start: clock must be a Clock (an object with now()), got ${shown}`,
    );
  });

  it('still defaults to the system clock when no clock is given', () => {
    expect(Stopwatch.start().elapsed()).toBeGreaterThanOrEqual(0);
  });
});

describe('deadlineTimers', () => {
  it.each([
    [null, 'null'],
    ['clock', '"clock"'],
    [{ now: () => 0 }, '{}'],
  ])('rejects the clock %s with a TypeError that names it', (clock, shown) => {
    const error = thrown(() => deadlineTimers(clock as unknown as Clock));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe(
      `deadlineTimers: clock must be a Clock (an object with now() and setTimeout()), got ${shown}`,
    );
  });

  it('rejects a bad clock in the DeadlineTimers constructor the same way', () => {
    const error = thrown(() => new DeadlineTimers(null as unknown as Clock));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe(
      'DeadlineTimers: clock must be a Clock (an object with now() and setTimeout()), got null',
    );
  });

  it('returns one shared instance per valid clock', () => {
    const clock = new VirtualClock();
    expect(deadlineTimers(clock)).toBe(deadlineTimers(clock));
  });
});
