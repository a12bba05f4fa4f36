// BucketedWindow against a reference model: every count is kept with the
// bucket it landed in, and the window's sums must equal the counts whose
// bucket is one of the newest `buckets` as of the last slide.

import { VirtualClock } from '@bulwark/clock';
import { BucketedWindow } from '@bulwark/core/authoring';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

type Step =
  | { readonly kind: 'advance'; readonly ms: number }
  | { readonly kind: 'add'; readonly field: number; readonly n: number }
  | { readonly kind: 'slide' }
  | { readonly kind: 'reset' };

describe('BucketedWindow', () => {
  it('sums exactly the counts of its newest buckets, for any sequence of adds, slides and waits', async () => {
    const step = (fields: number): fc.Arbitrary<Step> =>
      fc.oneof(
        fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 400 }) }),
        fc.record({
          kind: fc.constant('add' as const),
          field: fc.integer({ min: 0, max: fields - 1 }),
          n: fc.integer({ min: 0, max: 5 }),
        }),
        fc.constant({ kind: 'slide' as const }),
        fc.constant({ kind: 'reset' as const }),
      );
    const scenario = fc
      .record({
        bucketMs: fc.constantFrom(1, 7, 10, 2.5, 33.3),
        buckets: fc.integer({ min: 1, max: 12 }),
        fields: fc.integer({ min: 1, max: 3 }),
        eager: fc.boolean(),
        startMs: fc.integer({ min: 0, max: 1000 }),
      })
      .chain((s) => fc.record({ s: fc.constant(s), steps: fc.array(step(s.fields), { maxLength: 80 }) }));

    await fc.assert(
      fc.asyncProperty(scenario, async ({ s, steps }) => {
        const clock = new VirtualClock(s.startMs);
        const window = new BucketedWindow(clock, s.bucketMs, s.buckets, s.fields, s.eager);
        const counts: { bucket: number; field: number; n: number }[] = [];
        let head = Number.NEGATIVE_INFINITY;
        const expectSums = (): void => {
          for (let f = 0; f < s.fields; f++) {
            const expected = counts
              .filter((c) => c.field === f && c.bucket > head - s.buckets && c.bucket <= head)
              .reduce((sum, c) => sum + c.n, 0);
            expect(window.sum(f)).toBe(expected);
          }
        };
        window.slide();
        head = Math.floor(clock.now() / s.bucketMs);
        for (const st of steps) {
          if (st.kind === 'advance') await clock.advance(st.ms);
          else if (st.kind === 'slide') {
            window.slide();
            head = Math.max(head, Math.floor(clock.now() / s.bucketMs));
          } else if (st.kind === 'add') {
            window.add(st.field, st.n);
            counts.push({ bucket: head, field: st.field, n: st.n });
          } else {
            window.reset();
            counts.length = 0;
            window.slide();
            head = Math.floor(clock.now() / s.bucketMs);
          }
          expectSums();
        }
      }),
      { numRuns: 300 },
    );
  });

  it('clears at most one window of buckets however long it sat idle', async () => {
    const clock = new VirtualClock();
    const window = new BucketedWindow(clock, 100, 10, 1);
    window.slide();
    window.add(0, 3);
    await clock.advance(999);
    window.slide();
    expect(window.sum(0)).toBe(3);
    await clock.advance(1);
    window.slide();
    expect(window.sum(0)).toBe(0);
    // A slide after a very long idle time costs no more than one over a window.
    await clock.advance(1e12);
    window.slide();
    window.add(0);
    expect(window.sum(0)).toBe(1);
  });

  it('never moves back when slid to an earlier time', () => {
    const clock = new VirtualClock(5_000);
    const window = new BucketedWindow(clock, 100, 2);
    window.slide();
    window.add(0, 2);
    window.slide(0);
    expect(window.sum(0)).toBe(2);
  });

  it('starts empty and forgets every count on reset', () => {
    const clock = new VirtualClock();
    const window = new BucketedWindow(clock, 10, 4, 2);
    window.slide();
    expect([window.sum(0), window.sum(1)]).toEqual([0, 0]);
    window.add(1, 4);
    window.reset();
    expect(window.sum(1)).toBe(0);
  });

  it('rejects a bucket length, bucket count or field count it cannot use, naming the value', () => {
    const clock = new VirtualClock();
    expect(() => new BucketedWindow(clock, 0, 10)).toThrow(/bucketMs must be a finite number > 0, got 0/);
    expect(() => new BucketedWindow(clock, Number.NaN, 10)).toThrow(/got NaN/);
    expect(() => new BucketedWindow(clock, 10, 1.5)).toThrow(/buckets must be an integer >= 1, got 1.5/);
    expect(() => new BucketedWindow(clock, 10, 2, 0)).toThrow(/fields must be an integer >= 1, got 0/);
    // A clock that is not a Clock is refused when the window is made, not at its first slide.
    expect(() => new BucketedWindow({} as never, 10, 2)).toThrow(
      new TypeError('BucketedWindow: clock must be a Clock (an object with now()), got {}'),
    );
    expect(() => new BucketedWindow(undefined as never, 10, 2)).toThrow(TypeError);
  });
});
