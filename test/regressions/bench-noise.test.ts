// bench/harness.ts once clamped every overhead at 0: a subject whose best round
// beat the baseline's got an overhead of 0, and a target such as "ours / theirs
// <= 0.5" then read 0 and was met whatever the subject really cost. Overheads now
// keep their sign, and a target built on one at or below 0 is reported as NOISE
// and missed.
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';
import { pairedRatio, printSuite, type SuiteResult, target } from '../../bench/harness.ts';

let log: MockInstance<typeof console.log>;
beforeEach(() => {
  log = vi.spyOn(console, 'log').mockImplementation(() => {});
});
afterEach(() => {
  vi.restoreAllMocks();
});
const printed = (): string => log.mock.calls.map((args) => args.join(' ')).join('\n');

describe('target()', () => {
  it('meets a positive figure within its limit, and misses one above it', () => {
    expect(target('ratio', 0.4, 0.5)).toBe(true);
    expect(target('ratio', 0.6, 0.5)).toBe(false);
    expect(printed()).toContain('MET  ratio: 0.400 (limit 0.500)');
    expect(printed()).toContain('MISS ratio: 0.600 (limit 0.500)');
    expect(printed()).not.toContain('NOISE');
  });

  it.each([
    ['a ratio of 0 (our overhead measured as 0)', 0],
    ['a negative ratio (one overhead below the baseline)', -0.25],
    ['NaN (0 / 0)', Number.NaN],
  ])('misses with a NOISE warning on %s', (_, actual) => {
    expect(target('ours / theirs', actual, 0.5)).toBe(false);
    expect(printed()).toMatch(/^MISS ours \/ theirs: .* NOISE: /);
  });

  it('misses with a NOISE warning when an overhead it was computed from is at or below 0', () => {
    // Two negative overheads give a positive ratio: only the operands reveal it.
    expect(target('ours / theirs', -3 / -10, 0.5, [-3, -10])).toBe(false);
    expect(printed()).toContain('NOISE');
    log.mockClear();
    expect(target('ours / theirs', 3 / 10, 0.5, [3, 10])).toBe(true);
    expect(printed()).not.toContain('NOISE');
  });

  it('still meets a count whose limit is 0 when the count is 0', () => {
    expect(target('timers per idle keyed breaker <= 0', 0, 0)).toBe(true);
    expect(printed()).not.toContain('NOISE');
  });
});

describe('printSuite()', () => {
  it('prints a negative overhead as it is, and flags the subject as NOISE', () => {
    const result: SuiteResult = {
      suite: 'noise-check',
      node: 'v24',
      baseline: 'bare call',
      batch: 10,
      rounds: 3,
      measurements: [
        { name: 'bare call', nsPerCall: 35, overheadNs: 0, iqrNs: 2 },
        { name: 'cheap wrapper', nsPerCall: 33, overheadNs: -2, iqrNs: 3 },
        { name: 'costly wrapper', nsPerCall: 135, overheadNs: 100, iqrNs: 4 },
      ],
    };
    printSuite(result);
    const out = printed();
    expect(out).toMatch(/\| cheap wrapper\s+\|\s+33 \|\s+-2 \|/);
    expect(out).toContain('NOISE cheap wrapper: overhead -2.0 ns is at or below the baseline (bare call)');
    expect(out).not.toContain('NOISE costly wrapper');
    expect(out).not.toContain('NOISE bare call');
  });
});

// The fetch suite once compared the best round of createFetch() with the best
// round of the bare fetch, which were lucky in different rounds; it now takes
// the median of their ratios round by round.
describe('pairedRatio()', () => {
  it('divides round by round and takes the median, so that a round slow for both cancels out', () => {
    const result: SuiteResult = {
      suite: 'paired-check',
      node: 'v24',
      baseline: 'bare',
      batch: 10,
      rounds: 5,
      statistic: 'median',
      measurements: [
        {
          name: 'bare',
          nsPerCall: 100,
          overheadNs: 0,
          iqrNs: 0,
          roundsNs: [100, 300, 100, 100, 50],
          cpuRoundsNs: [90, 90, 90, 90, 90],
        },
        {
          name: 'ours',
          nsPerCall: 120,
          overheadNs: 20,
          iqrNs: 0,
          roundsNs: [120, 360, 130, 110, 80],
          cpuRoundsNs: [99, 108, 117, 99, 90],
        },
      ],
    };
    // Ratios 1.2, 1.2, 1.3, 1.1, 1.6: median 1.2, quartiles 1.2 and 1.3.
    const wall = pairedRatio(result, 'ours', 'bare');
    expect(wall.median).toBeCloseTo(1.2);
    expect(wall.q1).toBeCloseTo(1.2);
    expect(wall.q3).toBeCloseTo(1.3);
    // CPU ratios 1.1, 1.2, 1.3, 1.1, 1.0: median 1.1.
    expect(pairedRatio(result, 'ours', 'bare', true).median).toBeCloseTo(1.1);
    expect(() => pairedRatio(result, 'missing', 'bare')).toThrow(/no rounds of missing/);
  });

  it('titles a median suite as such', () => {
    printSuite({
      suite: 'median-check',
      node: 'v24',
      baseline: 'bare',
      batch: 10,
      rounds: 3,
      statistic: 'median',
      measurements: [{ name: 'bare', nsPerCall: 35, overheadNs: 0, iqrNs: 2 }],
    });
    expect(printed()).toContain('median-check (Node v24, median of 3 rounds × 10 calls)');
  });
});
