import { type Clock, VirtualClock } from '@bulwark/clock';
import {
  chenDetector,
  fixedTimeout,
  PHI_ACCRUAL_DEFAULTS,
  phiAccrual,
  phiOf,
} from '@bulwark/failure-detector';
import { describe, expect, it } from 'vitest';

// Hand-computed with phi = log10(1 + e^z), z = y (1.5976 + 0.070566 y²), y = (t − mean) / std.
const PHI_AT_MEAN = 0.3010299956639812; // y = 0: log10(2)
const PHI_AT_2_SD = 1.6428278854871123; // y = 2: z = 3.759728
const PHI_AT_3_SD = 2.9094753264849538; // y = 3: z = 6.697182

describe('phiOf', () => {
  it('gives log10(2) at the mean and the hand-computed values above it', () => {
    expect(phiOf(1000, 1000, 250)).toBeCloseTo(PHI_AT_MEAN, 12);
    expect(phiOf(1500, 1000, 250)).toBeCloseTo(PHI_AT_2_SD, 12);
    expect(phiOf(1300, 1000, 100)).toBeCloseTo(PHI_AT_3_SD, 12);
  });

  it('stays within 0.003 of -log10 of the exact normal tail at 2 standard deviations', () => {
    // 1 − Φ(2) = 0.022750131948179; −log10 of it = 1.6430160801409368.
    expect(Math.abs(phiOf(1200, 1000, 100) - 1.6430160801409368)).toBeLessThan(0.003);
  });

  it('keeps growing, finite, during very long silences', () => {
    const a = phiOf(60_000, 1000, 100);
    const b = phiOf(600_000, 1000, 100);
    expect(Number.isFinite(b)).toBe(true);
    expect(b).toBeGreaterThan(a);
    expect(phiOf(0, 1000, 100)).toBeGreaterThanOrEqual(0);
  });
});

describe('phiAccrual', () => {
  it('bootstraps the history with the first-heartbeat estimate ± a quarter of it', () => {
    const clock = new VirtualClock();
    const d = phiAccrual({ clock });
    expect(d.samples).toBe(2);
    expect(d.meanIntervalMs).toBe(1000);
    expect(d.stdDeviationMs).toBe(250);
    const custom = phiAccrual({ clock, firstHeartbeatEstimateMs: 400 });
    expect(custom.meanIntervalMs).toBe(400);
    expect(custom.stdDeviationMs).toBe(100);
  });

  it('is available with phi 0 before the first heartbeat, and never suspects then', async () => {
    const clock = new VirtualClock();
    const d = phiAccrual({ clock });
    await clock.advance(1_000_000);
    expect(d.phi()).toBe(0);
    expect(d.isAvailable()).toBe(true);
    expect(d.lastHeartbeatAt).toBeUndefined();
    expect(d.suspectAt()).toBe(Number.POSITIVE_INFINITY);
  });

  it('judges the first interval against the bootstrap distribution (mean 1000, sd 250)', async () => {
    const clock = new VirtualClock();
    const d = phiAccrual({ clock });
    d.heartbeat();
    await clock.advance(1000);
    expect(d.phi()).toBeCloseTo(PHI_AT_MEAN, 12);
    await clock.advance(500);
    expect(d.phi()).toBeCloseTo(PHI_AT_2_SD, 12);
    expect(d.suspicion()).toBe(d.phi());
    expect(d.isAvailable()).toBe(true);
  });

  it('fits the measured intervals: two 1000 ms intervals give sd 250·√(2/4)', async () => {
    const clock = new VirtualClock();
    const d = phiAccrual({ clock });
    d.heartbeat();
    await clock.advance(1000);
    d.heartbeat();
    await clock.advance(1000);
    d.heartbeat();
    expect(d.samples).toBe(4);
    expect(d.meanIntervalMs).toBeCloseTo(1000, 9);
    expect(d.stdDeviationMs).toBeCloseTo(250 * Math.sqrt(0.5), 9);
    await clock.advance(1200);
    expect(d.phi()).toBeCloseTo(0.8893493816009678, 9);
  });

  it('applies minStdDeviationMs when the heartbeats are very regular', async () => {
    const clock = new VirtualClock();
    const d = phiAccrual({ clock, maxSamples: 10 });
    d.heartbeat();
    for (let i = 0; i < 20; i++) {
      await clock.advance(1000);
      d.heartbeat();
    }
    expect(d.stdDeviationMs).toBe(0); // the bootstrap samples were evicted
    await clock.advance(1300);
    expect(d.phi()).toBeCloseTo(PHI_AT_3_SD, 9); // sd 100, not 0
  });

  it('adds acceptablePauseMs to the mean', async () => {
    const clock = new VirtualClock();
    const d = phiAccrual({ clock, maxSamples: 10, acceptablePauseMs: 200 });
    d.heartbeat();
    for (let i = 0; i < 20; i++) {
      await clock.advance(1000);
      d.heartbeat();
    }
    await clock.advance(1300);
    expect(d.phi()).toBeCloseTo(0.7995083208395598, 9); // y = (1300 − 1200) / 100 = 1
  });

  it('suspects once phi reaches the threshold, at the instant suspectAt() predicts', async () => {
    const clock = new VirtualClock();
    const d = phiAccrual({ clock, threshold: 8 });
    d.heartbeat();
    // y at phi = 8 is 5.225986644 (root of 0.070566 y³ + 1.5976 y = ln(10⁸ − 1)).
    expect(d.suspectAt()).toBeCloseTo(1000 + 5.225986644093562 * 250, 6);
    await clock.advance(2306);
    expect(d.isAvailable()).toBe(true);
    expect(d.phi()).toBeLessThan(8);
    await clock.advance(1);
    expect(d.isAvailable()).toBe(false);
    expect(d.phi()).toBeGreaterThanOrEqual(8);
  });

  it('does not record the interval of a heartbeat that ends a suspicion', async () => {
    const clock = new VirtualClock();
    const d = phiAccrual({ clock });
    d.heartbeat();
    await clock.advance(1000);
    d.heartbeat();
    expect(d.samples).toBe(3);
    await clock.advance(30_000);
    expect(d.isAvailable()).toBe(false);
    d.heartbeat();
    expect(d.samples).toBe(3);
    expect(d.isAvailable()).toBe(true);
    expect(d.phi()).toBe(phiOf(0, d.meanIntervalMs, 250 * Math.sqrt(2 / 3)));
  });

  it('exposes its defaults', () => {
    expect(PHI_ACCRUAL_DEFAULTS).toEqual({
      threshold: 8,
      maxSamples: 1000,
      minStdDeviationMs: 100,
      acceptablePauseMs: 0,
      firstHeartbeatEstimateMs: 1000,
    });
    expect(Object.isFrozen(PHI_ACCRUAL_DEFAULTS)).toBe(true);
  });
});

describe('chenDetector', () => {
  it('expects the second heartbeat one interval after the first', async () => {
    const clock = new VirtualClock();
    const d = chenDetector({ clock, safetyMarginMs: 200, intervalMs: 500 });
    expect(d.isAvailable()).toBe(true);
    expect(d.suspicion()).toBe(0);
    expect(d.suspectAt()).toBe(Number.POSITIVE_INFINITY);
    d.heartbeat();
    expect(d.expectedArrival()).toBe(500);
    expect(d.suspectAt()).toBe(700);
    await clock.advance(350);
    expect(d.suspicion()).toBe(0.5);
  });

  it('computes mean(Aᵢ − η·sᵢ) + (s_last + 1)·η (hand-computed: 4000)', async () => {
    const clock = new VirtualClock();
    const d = chenDetector({ clock, safetyMarginMs: 250 });
    // Arrivals 0, 1100, 1900, 3000 with η = 1000, sequence 0…3: lateness 0, 100, −100, 0;
    // mean 0, plus 4 × 1000 = 4000.
    for (const at of [0, 1100, 1900, 3000]) {
      await clock.advance(at - clock.now());
      d.heartbeat();
    }
    expect(d.sequence).toBe(3);
    expect(d.expectedArrival()).toBe(4000);
    expect(d.suspectAt()).toBe(4250);
    await clock.advance(625); // 625 of the allowed 1250 ms
    expect(d.suspicion()).toBe(0.5);
    await clock.advance(624);
    expect(d.isAvailable()).toBe(true);
    await clock.advance(1);
    expect(d.isAvailable()).toBe(false);
    expect(d.suspicion()).toBe(1);
  });

  it('estimates from the last windowSize arrivals only', async () => {
    const clock = new VirtualClock();
    const d = chenDetector({ clock, windowSize: 3, safetyMarginMs: 5000 });
    for (const at of [0, 700, 1500, 2600]) {
      await clock.advance(at - clock.now());
      d.heartbeat();
    }
    // Lateness 0, −300, −500, −400; the window keeps the last three: mean −400,
    // expected −400 + 4 × 1000.
    expect(d.samples).toBe(3);
    expect(d.expectedArrival()).toBe(3600);
  });

  it('counts a long silence as lost heartbeats, so the phase survives the gap', async () => {
    const clock = new VirtualClock();
    const d = chenDetector({ clock, safetyMarginMs: 100, intervalMs: 800 });
    for (const at of [0, 800, 1600]) {
      await clock.advance(at - clock.now());
      d.heartbeat();
    }
    await clock.advance(10_000);
    expect(d.isAvailable()).toBe(false);
    d.heartbeat(); // at 11 600: 12.5 intervals later, rounded to 13: sequence 15
    expect(d.sequence).toBe(15);
    // Lateness 0, 0, 0, 11 600 − 12 000 = −400: mean −100; expected −100 + 16 × 800.
    expect(d.expectedArrival()).toBe(12_700);
    expect(d.isAvailable()).toBe(true);
  });
});

describe('chenDetector with sequence numbers', () => {
  it('uses the sequence numbers it is given instead of inferring them', async () => {
    const clock = new VirtualClock();
    const d = chenDetector({ clock, safetyMarginMs: 0 });
    // Heartbeat 1 is stalled 5 s, then 1…5 arrive together (a FIFO burst), then 6 on time.
    d.heartbeat(0);
    await clock.advance(5100);
    for (let s = 1; s <= 5; s++) d.heartbeat(s);
    await clock.advance(1000);
    d.heartbeat(6);
    // Lateness 0, 4100, 3100, 2100, 1100, 100, 100: mean 10 600 / 7; expected that + 7 × 1000.
    expect(d.sequence).toBe(6);
    expect(d.expectedArrival()).toBeCloseTo(10_600 / 7 + 7000, 9);
  });

  it('starts the window afresh when the sequence does not increase (a restarted sender)', async () => {
    const clock = new VirtualClock();
    const d = chenDetector({ clock, safetyMarginMs: 0 });
    for (let s = 10; s <= 12; s++) {
      d.heartbeat(s);
      await clock.advance(1000);
    }
    d.heartbeat(1);
    expect(d.samples).toBe(1);
    expect(d.expectedArrival()).toBe(clock.now() + 1000);
  });
});

describe('fixedTimeout', () => {
  it('suspects after exactly timeoutMs of silence, suspicion being the fraction used', async () => {
    const clock = new VirtualClock();
    const d = fixedTimeout({ clock, timeoutMs: 400 });
    expect(d.isAvailable()).toBe(true);
    d.heartbeat();
    await clock.advance(100);
    expect(d.suspicion()).toBe(0.25);
    await clock.advance(299);
    expect(d.isAvailable()).toBe(true);
    await clock.advance(1);
    expect(d.isAvailable()).toBe(false);
    expect(d.suspectAt()).toBe(400);
    d.heartbeat();
    expect(d.isAvailable()).toBe(true);
    expect(d.lastHeartbeatAt).toBe(400);
  });
});

describe('fixed memory', () => {
  // A clock the test moves by assignment: a million heartbeats through
  // VirtualClock.advance (which lets promises settle each time) would take
  // seconds, and detectors only read now().
  function steppedClock(): Clock & { t: number } {
    const virtual = new VirtualClock();
    const clock = {
      t: 0,
      now: () => clock.t,
      setTimeout: (cb: () => void, ms: number) => virtual.setTimeout(cb, ms),
    };
    return clock;
  }

  it('keeps phi accrual history at maxSamples after 10^6 heartbeats, with exact statistics', () => {
    const clock = steppedClock();
    const d = phiAccrual({ clock, maxSamples: 1000 });
    for (let i = 0; i < 1_000_000; i++) {
      d.heartbeat();
      clock.t += i % 2 === 0 ? 900 : 1100;
    }
    expect(d.samples).toBe(1000);
    expect(d.capacity).toBe(1000);
    expect(d.meanIntervalMs).toBeCloseTo(1000, 6);
    expect(d.stdDeviationMs).toBeCloseTo(100, 6);
  });

  it("keeps Chen's window at windowSize after 10^6 heartbeats, with an exact estimate", () => {
    const clock = steppedClock();
    const d = chenDetector({ clock, windowSize: 100, safetyMarginMs: 500 });
    for (let i = 0; i < 1_000_000; i++) {
      clock.t = i * 1000 + (i % 2 === 0 ? 0 : 100);
      d.heartbeat();
    }
    expect(d.samples).toBe(100);
    expect(d.sequence).toBe(999_999);
    // Lateness alternates 0 and 100: mean 50; the next heartbeat is due at 10^9 + 50.
    expect(d.expectedArrival()).toBeCloseTo(1_000_000 * 1000 + 50, 6);
  });
});
