// The delays a retry policy actually waits, per jitter kind, with a seeded
// random source: each is checked against the AWS "Exponential Backoff and
// Jitter" formula computed here from the same random stream.
import { seededRandom, VirtualClock } from '@bulwark/clock';
import { exponential, JITTER_KINDS, type Jitter, retry } from '@bulwark/retry';
import { describe, expect, it } from 'vitest';

const INITIAL = 100;
const CAP = 2_000;
const ATTEMPTS = 12;

/** What AWS's article defines, for retry n = 1, 2, … (base = INITIAL, cap = CAP, factor 2). */
function reference(jitter: Jitter, seed: number): number[] {
  const random = seededRandom(seed);
  const delays: number[] = [];
  let sleep = INITIAL;
  for (let n = 1; n < ATTEMPTS; n++) {
    const b = Math.min(CAP, INITIAL * 2 ** (n - 1));
    switch (jitter) {
      case 'none':
        delays.push(b);
        break;
      case 'full':
        delays.push(random() * b);
        break;
      case 'equal':
        delays.push(b / 2 + random() * (b / 2));
        break;
      case 'decorrelated':
        sleep = Math.min(CAP, INITIAL + random() * (sleep * 3 - INITIAL));
        delays.push(sleep);
        break;
    }
  }
  return delays;
}

/** The instants at which a failing call's attempts start under a seeded retry policy. */
async function attemptStarts(jitter: Jitter, seed: number): Promise<number[]> {
  const clock = new VirtualClock();
  const starts: number[] = [];
  const policy = retry({
    clock,
    random: seededRandom(seed),
    maxAttempts: ATTEMPTS,
    backoff: exponential({ initialMs: INITIAL, maxMs: CAP, factor: 2, jitter }),
    retryOn: () => true,
  });
  const done = policy
    .execute(() => {
      starts.push(clock.now());
      throw new Error('down');
    })
    .catch(() => undefined);
  await clock.runAll();
  await done;
  return starts;
}

describe('the delays a retry policy waits, with a seeded random source', () => {
  for (const jitter of JITTER_KINDS) {
    it(`follow the AWS formula exactly for jitter "${jitter}"`, async () => {
      const seed = 20_260_101;
      const expected = reference(jitter, seed);
      const starts = await attemptStarts(jitter, seed);
      expect(starts).toHaveLength(ATTEMPTS);
      // The clock moves by exactly each delay: compare the instants, summed in the same order.
      let at = 0;
      const expectedStarts = [0, ...expected.map((d) => (at += d))];
      expect(starts).toEqual(expectedStarts);
      // And, independently of the reference, each delay bulwark waited lies in
      // the range the formula allows for that retry (b = min(cap, base × 2^(n-1))).
      const waited = starts.slice(1).map((s, i) => s - starts[i]!);
      waited.forEach((d, i) => {
        const b = Math.min(CAP, INITIAL * 2 ** i);
        const [low, high] =
          jitter === 'none'
            ? [b, b]
            : jitter === 'full'
              ? [0, b]
              : jitter === 'equal'
                ? [b / 2, b]
                : [INITIAL, CAP];
        // The instants are running sums, so a difference can be off by a rounding error.
        expect(d).toBeGreaterThanOrEqual(low - 1e-9);
        expect(d).toBeLessThanOrEqual(high + 1e-9);
      });
      // A seeded jittered schedule is not the plain doubling one.
      if (jitter !== 'none') expect(waited.some((d, i) => d !== Math.min(CAP, INITIAL * 2 ** i))).toBe(true);
    });
  }

  it('gives the literal doubling sequence without jitter', async () => {
    const starts = await attemptStarts('none', 1);
    const delays = starts.slice(1).map((s, i) => s - starts[i]!);
    expect(delays).toEqual([100, 200, 400, 800, 1600, 2000, 2000, 2000, 2000, 2000, 2000]);
  });

  it('repeats the same sequence for the same seed and changes with the seed', async () => {
    expect(await attemptStarts('full', 7)).toEqual(await attemptStarts('full', 7));
    expect(await attemptStarts('full', 7)).not.toEqual(await attemptStarts('full', 8));
  });

  it('caps decorrelated jitter after the draw, as AWS defines it', () => {
    // previous 900 → the range is [100, 2700), drawn at 0.75 → 2050, capped to 2000.
    const backoff = exponential({ initialMs: 100, maxMs: 2_000, jitter: 'decorrelated' });
    expect(backoff.delayMs(4, 900, () => 0.75)).toBe(2_000);
    // Below the cap the draw is used as it is: 100 + 0.25 × 2600.
    expect(backoff.delayMs(4, 900, () => 0.25)).toBe(750);
    // A previous delay far past the cap (a Retry-After hint) is held to it first.
    expect(backoff.delayMs(4, Number.MAX_VALUE, () => 0.1)).toBe(100 + 0.1 * 5_900);
    expect(backoff.delayMs(4, Number.MAX_VALUE, () => 0)).toBe(100);
    expect(backoff.delayMs(4, Number.NaN, () => 0.5)).toBe(200);
  });
});
