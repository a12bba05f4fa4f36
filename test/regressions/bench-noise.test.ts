// bench/harness.ts once clamped every overhead at 0: a subject whose best round
// beat the baseline's got an overhead of 0, and a target such as "ours / theirs
// <= 0.5" then read 0 and was met whatever the subject really cost. Overheads now
// keep their sign, and a target built on one at or below 0 is reported as NOISE
// and missed.
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';
import { printSuite, type SuiteResult, target } from '../../bench/harness.ts';

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
