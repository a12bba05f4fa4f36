import { seededRandom } from '@bulwark/clock';
import { InvalidOptionsError } from '@bulwark/core';
import { constant, exponential, fromFunction, JITTER_KINDS, type Jitter } from '@bulwark/retry';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/** A random source that plays back a script, so delays can be stated exactly. */
const scripted = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};

/** The delays for attempts 1..n, feeding each delay back as the previous one. */
function sequence(jitter: Jitter, n: number, random: () => number): number[] {
  const backoff = exponential({ initialMs: 100, maxMs: 1000, factor: 2, jitter });
  const out: number[] = [];
  let previous = 0;
  for (let attempt = 1; attempt <= n; attempt++) {
    previous = backoff.delayMs(attempt, previous, random);
    out.push(previous);
  }
  return out;
}

describe('exponential()', () => {
  it('without jitter doubles from initialMs and stays at maxMs', () => {
    expect(sequence('none', 7, scripted(0.5))).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
  });

  it('with full jitter picks r × base', () => {
    expect(sequence('full', 5, scripted(0.5, 0.25, 0.75, 0, 0.999))).toEqual([50, 50, 300, 0, 999]);
  });

  it('with equal jitter picks base/2 + r × base/2', () => {
    expect(sequence('equal', 5, scripted(0.5, 0.25, 0.75, 0, 0.5))).toEqual([75, 125, 350, 400, 750]);
  });

  it('with decorrelated jitter picks between initialMs and three times the previous delay, capped', () => {
    expect(sequence('decorrelated', 5, scripted(0.5, 0.25, 0.75, 0, 1 - 2 ** -53))).toEqual([
      200,
      225,
      531.25,
      100,
      // previous 100 → upper 300: the top of the range, just below it
      100 + (1 - 2 ** -53) * 200,
    ]);
  });

  it('uses the documented defaults: 100 ms, 10 s cap, factor 2, full jitter', () => {
    const backoff = exponential();
    expect([backoff.initialMs, backoff.maxMs, backoff.factor, backoff.jitter]).toEqual([
      100,
      10_000,
      2,
      'full',
    ]);
    expect(Object.isFrozen(backoff)).toBe(true);
  });

  it('is deterministic for a seeded random source', () => {
    expect(sequence('full', 20, seededRandom(42))).toEqual(sequence('full', 20, seededRandom(42)));
    expect(sequence('full', 20, seededRandom(42))).not.toEqual(sequence('full', 20, seededRandom(43)));
  });

  it('gives a finite delay in [0, maxMs] for any attempt up to 10^6 and any previous delay', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1e9, noNaN: true }),
        fc.double({ min: 0, max: 1e9, noNaN: true }),
        fc.double({ min: 1, max: 1e4, noNaN: true }),
        fc.constantFrom(...JITTER_KINDS),
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.double({ min: 0, max: Number.MAX_VALUE, noNaN: true }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (a, b, factor, jitter, attempt, previous, r) => {
          const backoff = exponential({ initialMs: Math.min(a, b), maxMs: Math.max(a, b), factor, jitter });
          const ms = backoff.delayMs(attempt, previous, () => r);
          expect(Number.isFinite(ms)).toBe(true);
          expect(ms).toBeGreaterThanOrEqual(0);
          expect(ms).toBeLessThanOrEqual(backoff.maxMs);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('stays finite when fed its own output for a million attempts', () => {
    for (const jitter of JITTER_KINDS) {
      const backoff = exponential({ initialMs: 1, maxMs: 30_000, factor: 3, jitter });
      const random = seededRandom(7);
      let previous = 0;
      for (let attempt = 1; attempt <= 1_000_000; attempt++) {
        previous = backoff.delayMs(attempt, previous, random);
        if (!(previous >= 0 && previous <= 30_000)) throw new Error(`${jitter}: ${previous} at ${attempt}`);
      }
      expect(previous).toBeLessThanOrEqual(30_000);
    }
  });

  it('rejects bad options all at once, naming each value', () => {
    let caught: unknown;
    try {
      exponential({ initialMs: 500, maxMs: 100, factor: Number.NaN, jitter: 'random' as Jitter });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidOptionsError);
    expect(caught).toBeInstanceOf(RangeError);
    const error = caught as InvalidOptionsError;
    expect(error.violations.map((v) => v.option).sort()).toEqual(['factor', 'initialMs', 'jitter']);
    expect(error.message).toContain('initialMs must be <= maxMs (100), got 500');
    expect(error.message).toContain('got NaN');
    expect(error.message).toContain('"random"');
    expect(() => exponential({ initialMs: -1 })).toThrow(/initialMs must be .*>= 0, got -1/);
  });
});

describe('constant() and fromFunction()', () => {
  it('constant gives the same delay every time and rejects a negative or NaN one', () => {
    const backoff = constant(250);
    expect([1, 2, 50].map((_n) => backoff.delayMs())).toEqual([250, 250, 250]);
    expect(() => constant(-5)).toThrow(InvalidOptionsError);
    expect(() => constant(Number.NaN)).toThrow(/ms must be .*got NaN/);
  });

  it('fromFunction passes attempt, previous delay and the random source', () => {
    const seen: [number, number][] = [];
    const backoff = fromFunction((attempt, previous, random) => {
      seen.push([attempt, previous]);
      return attempt * 10 + random();
    });
    expect(backoff.delayMs(3, 20, () => 0.5)).toBe(30.5);
    expect(seen).toEqual([[3, 20]]);
  });

  it('fromFunction refuses a result that is not a finite delay >= 0', () => {
    expect(() => fromFunction(() => Number.NaN).delayMs(1, 0, Math.random)).toThrow(/got NaN for attempt 1/);
    expect(() => fromFunction(() => -1).delayMs(2, 0, Math.random)).toThrow(/got -1 for attempt 2/);
    expect(() => fromFunction('x' as never)).toThrow(InvalidOptionsError);
  });
});
