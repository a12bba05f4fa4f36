// The pure parts of the outage benchmark (bench/scenarios/engine.ts): seeded
// arrivals and draws, and the figures computed from a run's timeline. The
// benchmark itself (sockets, minutes of traffic) is not run here.
import { seededRandom } from '@bulwark/clock';
import { describe, expect, it } from 'vitest';
import {
  amplification,
  goodputOver,
  lognormal,
  poissonArrivals,
  quantile,
  type RequestRecord,
  recoveryMs,
  type ServerWindow,
  verdict,
  type Window,
  windows,
} from '../../bench/scenarios/engine.ts';

/** Windows with the given goodput shares, 20 arrivals each. */
const shares = (...values: number[]): Window[] =>
  values.map((v) => ({ arrivals: 20, good: Math.round(v * 20) }));

describe('seeded arrivals', () => {
  it('gives the same arrival times for the same seed and different ones for another', () => {
    const a = poissonArrivals(seededRandom(1), 100, 10_000);
    const b = poissonArrivals(seededRandom(1), 100, 10_000);
    const c = poissonArrivals(seededRandom(2), 100, 10_000);
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
  });

  it('are ascending, within the run, and about rate × duration in number', () => {
    const a = poissonArrivals(seededRandom(7), 100, 60_000);
    for (let i = 1; i < a.length; i++) expect(a[i]!).toBeGreaterThan(a[i - 1]!);
    expect(a[0]!).toBeGreaterThanOrEqual(0);
    expect(a.at(-1)!).toBeLessThan(60_000);
    // Poisson: 6000 expected, standard deviation about 77.
    expect(a.length).toBeGreaterThan(6_000 - 4 * 77);
    expect(a.length).toBeLessThan(6_000 + 4 * 77);
  });

  it('rejects a rate that is not positive, naming it', () => {
    expect(() => poissonArrivals(seededRandom(1), 0, 1_000)).toThrow(/ratePerSecond must be > 0, got 0/);
  });

  it('draws lognormal latencies with the median and p99 asked for', () => {
    const random = seededRandom(3);
    const draws = Array.from({ length: 40_000 }, () => lognormal(random, 300, 3_000));
    expect(quantile(draws, 0.5)).toBeGreaterThan(300 * 0.95);
    expect(quantile(draws, 0.5)).toBeLessThan(300 * 1.05);
    expect(quantile(draws, 0.99)).toBeGreaterThan(3_000 * 0.9);
    expect(quantile(draws, 0.99)).toBeLessThan(3_000 * 1.1);
  });
});

describe('goodput windows', () => {
  it('counts a caller by arrival window and as good only for a success within the SLO', () => {
    const records: RequestRecord[] = [
      { startMs: 10, latencyMs: 100, ok: true }, // good
      { startMs: 200, latencyMs: 1_500, ok: true }, // good: exactly the SLO
      { startMs: 260, latencyMs: 1_501, ok: true }, // late
      { startMs: 300, latencyMs: 50, ok: false }, // failed
      { startMs: 600, latencyMs: Number.POSITIVE_INFINITY, ok: false }, // never answered
      { startMs: 999, latencyMs: 10, ok: true }, // good, last window
    ];
    const ws = windows(records, 1_000, 250, 1_500);
    expect(ws).toEqual([
      { arrivals: 2, good: 2 },
      { arrivals: 2, good: 0 },
      { arrivals: 1, good: 0 },
      { arrivals: 1, good: 1 },
    ]);
    expect(goodputOver(ws)).toBeCloseTo(3 / 6);
    expect(goodputOver(ws, 0, 1)).toBe(1);
    expect(goodputOver([{ arrivals: 0, good: 0 }])).toBeNaN();
  });
});

describe('recovery after a fault', () => {
  // 250 ms windows, four of them (1 s) to hold; the fault ends at 1,000 ms (the start of window 4).
  it('is the time from the fault end to the first window of a run of four at >= 90% of baseline', () => {
    const ws = shares(1, 1, 0, 0, 0, 0.5, 1, 1, 1, 1, 1);
    expect(recoveryMs(ws, 1_000, 1, 250, 4)).toBe(500);
  });

  it('is 0 when callers who arrived during the fault were answered through its end', () => {
    const ws = shares(1, 1, 1, 1, 1, 1, 1, 1);
    expect(recoveryMs(ws, 1_000, 1, 250, 4)).toBe(0);
  });

  it('does not count a recovery that a dip breaks within its first second', () => {
    const ws = shares(1, 1, 0, 0, 1, 1, 1, 0.5, 1, 1, 1, 1);
    expect(recoveryMs(ws, 1_000, 1, 250, 4)).toBe(1_000);
  });

  it('judges against the baseline, not against 100%', () => {
    const ws = shares(0.8, 0.8, 0, 0, 0.75, 0.75, 0.75, 0.75);
    expect(recoveryMs(ws, 1_000, 0.8, 250, 4)).toBe(0);
    expect(recoveryMs(ws, 1_000, 1, 250, 4)).toBeNull();
  });

  it('is null when goodput never holds for a second before the run ends', () => {
    expect(recoveryMs(shares(1, 1, 0, 0, 0, 0, 1, 1, 1), 1_000, 1, 250, 4)).toBeNull();
  });
});

describe('amplification and the metastability verdict', () => {
  const server = (received: number, queued: number): ServerWindow => ({ received, queued, abandoned: 0 });

  it('divides server requests by logical requests over the same windows', () => {
    const ws = shares(1, 1, 0, 0);
    const sw = [server(20, 0), server(20, 0), server(80, 0), server(60, 0)];
    expect(amplification(sw, ws)).toBeCloseTo(180 / 80);
    expect(amplification(sw, ws, 2, 4)).toBeCloseTo(140 / 40);
  });

  it('calls a client metastable only when it did not recover and the server stayed saturated', () => {
    const saturated = [server(50, 10), server(50, 300), server(50, 250)];
    const idle = [server(50, 10), server(5, 0), server(5, 0)];
    expect(verdict(null, saturated, 400, 2)).toBe('metastable');
    expect(verdict(null, idle, 400, 2)).toBe('not recovered');
    expect(verdict(750, saturated, 400, 2)).toBe('recovered');
    // One window below half the bound in the tail: the server drained for a moment.
    expect(verdict(null, [server(50, 300), server(50, 150), server(50, 300)], 400, 2)).toBe('not recovered');
  });

  it('takes nearest-rank quantiles', () => {
    expect(quantile([5, 1, 4, 2, 3], 0.5)).toBe(3);
    expect(quantile([5, 1, 4, 2, 3], 0.99)).toBe(5);
    expect(quantile([], 0.5)).toBeNaN();
  });
});
