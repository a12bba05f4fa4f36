import { describeValue } from './clock.ts';

/** A source of uniformly distributed numbers in [0, 1). */
export type Random = () => number;

/** The default random source, `Math.random`. Inject another one for tests. */
export const defaultRandom: Random = () => Math.random();

/**
 * A small, fast, seeded random source (mulberry32) for tests, simulations and
 * benchmarks. The same seed gives the same sequence on every platform. The
 * seed is an integer, taken modulo 2^32.
 * @throws TypeError when `seed` is not a number; RangeError when it is not an
 * integer (NaN, ±Infinity or a fraction would otherwise be truncated silently).
 */
export function seededRandom(seed: number): Random {
  if (typeof seed !== 'number')
    throw new TypeError(`seededRandom: seed must be an integer, got ${describeValue(seed)}`);
  if (!Number.isInteger(seed))
    throw new RangeError(`seededRandom: seed must be an integer, got ${describeValue(seed)}`);
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
