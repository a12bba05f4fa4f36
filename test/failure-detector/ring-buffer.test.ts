import { RingBuffer } from '@bulwark/failure-detector/authoring';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

function naive(values: readonly number[]): { mean: number; variance: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return { mean, variance };
}

describe('RingBuffer', () => {
  it('reports the mean and population variance of what it holds', () => {
    const ring = new RingBuffer(4);
    for (const v of [2, 4, 4, 4]) ring.push(v);
    expect(ring.mean).toBe(3.5);
    expect(ring.variance).toBeCloseTo(0.75, 12);
    expect(ring.standardDeviation).toBeCloseTo(Math.sqrt(0.75), 12);
  });

  it('evicts the oldest sample once full, keeping its capacity', () => {
    const ring = new RingBuffer(3);
    for (const v of [10, 20, 30, 40, 50]) ring.push(v);
    expect(ring.size).toBe(3);
    expect(ring.capacity).toBe(3);
    expect(ring.toArray()).toEqual([30, 40, 50]);
    expect(ring.oldest).toBe(30);
    expect(ring.newest).toBe(50);
    expect(ring.mean).toBe(40);
    expect(ring.variance).toBeCloseTo(200 / 3, 9);
  });

  it('replaceNewest() swaps the newest sample in place, keeping size, order and exact statistics', () => {
    const ring = new RingBuffer(3);
    ring.replaceNewest(5); // empty: pushed
    expect(ring.toArray()).toEqual([5]);
    for (const v of [10, 20, 30]) ring.push(v);
    ring.replaceNewest(60);
    expect(ring.size).toBe(3);
    expect(ring.toArray()).toEqual([10, 20, 60]);
    expect(ring.newest).toBe(60);
    expect(ring.mean).toBe(30);
    expect(ring.variance).toBeCloseTo(((10 - 30) ** 2 + (20 - 30) ** 2 + (60 - 30) ** 2) / 3, 9);
    ring.push(70);
    expect(ring.toArray()).toEqual([20, 60, 70]);
    expect(ring.mean).toBe(50);
  });

  it('is empty after clear() and reports NaN statistics when empty', () => {
    const ring = new RingBuffer(2);
    expect(Number.isNaN(ring.mean)).toBe(true);
    ring.push(1);
    ring.clear();
    expect(ring.size).toBe(0);
    expect(ring.newest).toBeUndefined();
    expect(Number.isNaN(ring.variance)).toBe(true);
    ring.push(7);
    expect(ring.mean).toBe(7);
    expect(ring.variance).toBe(0);
  });

  it('keeps the variance exact for large values with a small spread', () => {
    const ring = new RingBuffer(100);
    const base = 1e12;
    for (let i = 0; i < 10_000; i++) ring.push(base + (i % 2 === 0 ? -1 : 1));
    expect(ring.mean).toBeCloseTo(base, 3);
    expect(ring.variance).toBeCloseTo(1, 6);
  });

  it('rejects a capacity that is not an integer >= 1', () => {
    expect(() => new RingBuffer(0)).toThrow(RangeError);
    expect(() => new RingBuffer(1.5)).toThrow(/capacity must be an integer >= 1, got 1.5/);
  });

  it('matches a naive computation over the last capacity samples, whatever the pushes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 200 }),
        (capacity, values) => {
          const ring = new RingBuffer(capacity);
          for (const v of values) ring.push(v);
          const window = values.slice(-capacity);
          const expected = naive(window);
          expect(ring.toArray()).toEqual(window);
          expect(ring.mean).toBeCloseTo(expected.mean, 3);
          // Rounding is relative to the magnitude of the values the sums were
          // centred on (recent ones, possibly evicted), not to their spread.
          const scale = Math.max(1, ...values.map((v) => v * v));
          expect(Math.abs(ring.variance - expected.variance)).toBeLessThanOrEqual(
            1e-10 * scale + 1e-9 * expected.variance,
          );
        },
      ),
    );
  });

  it('matches a naive computation whatever the mix of pushes and replaceNewest()', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.tuple(fc.boolean(), fc.double({ min: -1e6, max: 1e6, noNaN: true })), {
          minLength: 1,
          maxLength: 200,
        }),
        (capacity, ops) => {
          const ring = new RingBuffer(capacity);
          const model: number[] = [];
          for (const [replace, v] of ops) {
            if (replace && model.length > 0) {
              ring.replaceNewest(v);
              model[model.length - 1] = v;
            } else {
              ring.push(v);
              model.push(v);
              if (model.length > capacity) model.shift();
            }
          }
          const expected = naive(model);
          expect(ring.toArray()).toEqual(model);
          expect(ring.mean).toBeCloseTo(expected.mean, 3);
          const scale = Math.max(1, ...ops.map(([, v]) => v * v));
          expect(Math.abs(ring.variance - expected.variance)).toBeLessThanOrEqual(
            1e-10 * scale + 1e-9 * expected.variance,
          );
        },
      ),
    );
  });
});
