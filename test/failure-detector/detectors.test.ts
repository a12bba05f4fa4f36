import { type Clock, VirtualClock } from '@bulwark/clock';
import {
  CHEN_DEFAULTS,
  chenDetector,
  type Detector,
  fixedTimeout,
  PHI_ACCRUAL_DEFAULTS,
  phiAccrual,
  phiOf,
  TWO_WINDOW_DEFAULTS,
  twoWindowDetector,
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

  it('floors the deviation at a tenth of the mean interval when the heartbeats are very regular', async () => {
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

  it('scales the default floor with the interval: 10 ms for 100 ms heartbeats, unless minStdDeviationMs is given', async () => {
    const clock = new VirtualClock();
    const scaled = phiAccrual({ clock, maxSamples: 10, firstHeartbeatEstimateMs: 100 });
    const fixedFloor = phiAccrual({
      clock,
      maxSamples: 10,
      firstHeartbeatEstimateMs: 100,
      minStdDeviationMs: 25,
    });
    for (const d of [scaled, fixedFloor]) d.heartbeat();
    for (let i = 0; i < 20; i++) {
      await clock.advance(100);
      for (const d of [scaled, fixedFloor]) d.heartbeat();
    }
    expect(scaled.stdDeviationMs).toBe(0);
    expect(scaled.stdDeviationFloorMs).toBeCloseTo(10, 9);
    expect(fixedFloor.stdDeviationFloorMs).toBe(25);
    await clock.advance(130);
    expect(scaled.phi()).toBeCloseTo(PHI_AT_3_SD, 9); // y = 30 / 10
    expect(fixedFloor.phi()).toBeCloseTo(phiOf(130, 100, 25), 12); // y = 1.2
    // phi 8 suspects 5.226 floors after the expected arrival: 52 ms late, not 522 ms.
    expect(scaled.suspectAt() - scaled.lastHeartbeatAt!).toBeCloseTo(100 + 5.225986644093562 * 10, 6);
  });

  it('with the short-window setting (maxSamples 100) follows a change of conditions the default window averages away', async () => {
    const clock = new VirtualClock();
    const short = phiAccrual({ clock, maxSamples: 100, threshold: 4 });
    const long = phiAccrual({ clock });
    const detectors = [short, long];
    for (const d of detectors) d.heartbeat();
    // 900 calm intervals (1000 ± 20 ms), then 100 congested ones (1000 ± 300 ms).
    for (let i = 0; i < 1000; i++) {
      const spread = i < 900 ? 20 : 300;
      await clock.advance(i % 2 === 0 ? 1000 - spread : 1000 + spread);
      for (const d of detectors) d.heartbeat();
    }
    // The short window holds only congested intervals; the long one is 9/10 calm.
    expect(short.stdDeviationMs).toBeCloseTo(300, 6);
    expect(long.stdDeviationMs).toBeCloseTo(Math.sqrt(0.9 * 20 ** 2 + 0.1 * 300 ** 2), 6);
    expect(short.meanIntervalMs).toBeCloseTo(1000, 6);
    // So its allowed silence widened to the congestion; the long window's barely moved.
    const y4 = 3.3333; // phi 4 is about 3.33 standard deviations above the mean
    expect(short.suspectAt() - clock.now()).toBeGreaterThan(1000 + y4 * 300 - 5);
    expect(long.suspectAt() - clock.now()).toBeLessThan(1000 + 5.23 * 100);
  });

  it('relearns when heartbeats keep arriving while suspected (a burst, not coalesced, filled its window with zero intervals)', async () => {
    const clock = new VirtualClock();
    const d = phiAccrual({ clock, maxSamples: 10, coalesceBursts: false });
    d.heartbeat();
    await clock.advance(1000);
    // Twelve queued heartbeats delivered at one instant: the window holds ten 0 ms intervals.
    for (let i = 0; i < 12; i++) d.heartbeat();
    expect(d.meanIntervalMs).toBe(0);
    // Now every heartbeat, a second apart, arrives while the peer is suspected.
    await clock.advance(1000);
    expect(d.isAvailable()).toBe(false);
    d.heartbeat(); // the first one may end an outage: not recorded
    expect(d.meanIntervalMs).toBe(0);
    await clock.advance(1000);
    expect(d.isAvailable()).toBe(false);
    d.heartbeat(); // the second in a row: the history is wrong, so it is recorded
    expect(d.meanIntervalMs).toBe(100);
    let suspectedArrivals = 0;
    for (let i = 0; i < 20; i++) {
      await clock.advance(1000);
      if (!d.isAvailable()) suspectedArrivals++;
      d.heartbeat();
    }
    expect(suspectedArrivals).toBeLessThan(10);
    await clock.advance(1000);
    expect(d.isAvailable()).toBe(true);
  });

  it('ignores a heartbeat whose sequence number does not increase', async () => {
    const clock = new VirtualClock();
    const d = phiAccrual({ clock });
    d.heartbeat(1);
    await clock.advance(1000);
    d.heartbeat(2);
    await clock.advance(10);
    d.heartbeat(2); // a duplicate: no 10 ms interval is recorded
    d.heartbeat(1);
    expect(d.samples).toBe(3);
    expect(d.lastHeartbeatAt).toBe(1000);
    await clock.advance(990);
    d.heartbeat(3);
    expect(d.samples).toBe(4);
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
      minStdDeviationFraction: 0.1,
      acceptablePauseMs: 0,
      firstHeartbeatEstimateMs: 1000,
      coalesceBursts: true,
      burstFraction: 0.01,
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
    // Bursts not coalesced, as in the 2002 algorithm (see test/regressions/failure-detector-bursts.test.ts).
    const d = chenDetector({ clock, safetyMarginMs: 0, coalesceBursts: false });
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

  it('ignores a heartbeat whose sequence number does not increase, keeping its window and deadline', async () => {
    const clock = new VirtualClock();
    const d = chenDetector({ clock, safetyMarginMs: 0 });
    for (let s = 10; s <= 12; s++) {
      d.heartbeat(s);
      await clock.advance(1000);
    }
    // Lateness −10 000 three times; the next (13) is expected at −10 000 + 13 000.
    expect(d.expectedArrival()).toBe(3000);
    d.heartbeat(1);
    d.heartbeat(12);
    expect(d.staleHeartbeats).toBe(2);
    expect(d.samples).toBe(3);
    expect(d.sequence).toBe(12);
    expect(d.lastHeartbeatAt).toBe(2000);
    expect(d.expectedArrival()).toBe(3000);
    expect(d.isAvailable()).toBe(false); // a stale message does not clear the suspicion
  });
});

/**
 * Arrivals from a sender that behaves as bulwark's UDP sender does: one
 * heartbeat per second, each taking 100 ms; it stalls for 4 s after sending
 * heartbeat 9 (at 9000), sends 10 when it wakes (13 000) and keeps its cadence
 * from there (11 at 14 000, ...), so every later heartbeat is 3 s behind the
 * old schedule.
 */
const RESTARTING_SENDER: ReadonlyArray<{ sequence: number; at: number }> = Array.from(
  { length: 60 },
  (_, s) => ({ sequence: s, at: (s < 10 ? s * 1000 : 13_000 + (s - 10) * 1000) + 100 }),
);

/** Replays arrivals, and returns the sequence numbers of the heartbeats that arrived after the detector suspected. */
async function lateArrivals(
  clock: VirtualClock,
  d: Detector,
  arrivals: ReadonlyArray<{ sequence: number; at: number }>,
): Promise<number[]> {
  const late: number[] = [];
  for (const { sequence, at } of arrivals) {
    if (d.lastHeartbeatAt !== undefined && d.suspectAt() <= at) late.push(sequence);
    await clock.advance(at - clock.now());
    d.heartbeat(sequence);
  }
  return late;
}

describe('under a sender that re-anchors its schedule after a stall', () => {
  it('chenDetector restarts its window on the shift: one false suspicion for the stall, none after', async () => {
    const clock = new VirtualClock();
    const d = chenDetector({ clock, safetyMarginMs: 500 });
    const late = await lateArrivals(clock, d, RESTARTING_SENDER.slice(0, 11));
    // 0…9 have lateness 100: suspected at 100 + 10 000 + 500, long before 10 arrives at 13 100.
    expect(late).toEqual([10]);
    // 10 is late (lateness 3100 > 100 + 500): the next is expected an interval after it.
    expect(d.expectedArrival()).toBe(14_100);
    expect(d.suspectAt()).toBe(14_600);
    expect(await lateArrivals(clock, d, RESTARTING_SENDER.slice(11))).toEqual([]);
    // 11 was late too, an interval after 10: the window restarted from {3100, 3100}.
    expect(d.reanchors).toBe(1);
    expect(d.samples).toBe(50);
    expect(d.expectedArrival()).toBe(3100 + 60_000);
  });

  it('chenDetector without reanchor keeps the old schedule and suspects before every heartbeat', async () => {
    const clock = new VirtualClock();
    const d = chenDetector({ clock, safetyMarginMs: 500, reanchor: false });
    const late = await lateArrivals(clock, d, RESTARTING_SENDER);
    // The window's mean creeps up by ~3000 / n per heartbeat: 50 heartbeats later it is still
    // well under 3100 − 500, so every one of them arrives after the freshness point.
    expect(late).toEqual(RESTARTING_SENDER.slice(10).map((a) => a.sequence));
    expect(d.reanchors).toBe(0);
  });

  it('twoWindowDetector follows the shift with its short window from the next heartbeat', async () => {
    const clock = new VirtualClock();
    const d = twoWindowDetector({ clock, safetyMarginMs: 500 });
    expect(await lateArrivals(clock, d, RESTARTING_SENDER.slice(0, 11))).toEqual([10]);
    // Long window: (10 × 100 + 3100) / 11 + 11 000; short window: 3100 + 11 000.
    expect(d.longWindowArrival()).toBeCloseTo(4100 / 11 + 11_000, 9);
    expect(d.shortWindowArrival()).toBe(14_100);
    expect(d.suspectAt()).toBe(14_600);
    expect(await lateArrivals(clock, d, RESTARTING_SENDER.slice(11))).toEqual([]);
  });
});

describe('twoWindowDetector', () => {
  it('suspects α after the later of the long- and short-window estimates (hand-computed)', async () => {
    const clock = new VirtualClock();
    const d = twoWindowDetector({ clock, safetyMarginMs: 200 });
    const two = twoWindowDetector({ clock, safetyMarginMs: 200, shortWindowSize: 2 });
    expect(d.isAvailable()).toBe(true);
    expect(d.suspectAt()).toBe(Number.POSITIVE_INFINITY);
    // Arrivals 0, 1000, 2000, 3400 with η = 1000: lateness 0, 0, 0, 400.
    for (const at of [0, 1000, 2000, 3400]) {
      await clock.advance(at - clock.now());
      d.heartbeat();
      two.heartbeat();
    }
    expect(d.sequence).toBe(3);
    expect(d.longWindowArrival()).toBe(4100); // mean 100 + 4 × 1000
    expect(d.shortWindowArrival()).toBe(4400); // the last lateness alone: 400 + 4000
    expect(d.expectedArrival()).toBe(4400);
    expect(d.suspectAt()).toBe(4600);
    expect(two.shortWindowArrival()).toBe(4200); // (0 + 400) / 2 + 4000
    expect(two.suspectAt()).toBe(4400);
    await clock.advance(600); // 600 of the allowed 1200 ms
    expect(d.suspicion()).toBe(0.5);
    await clock.advance(599);
    expect(d.isAvailable()).toBe(true);
    await clock.advance(1);
    expect(d.isAvailable()).toBe(false);
    expect(d.suspicion()).toBe(1);
  });

  it('takes the long window when the last heartbeat was early (hand-computed)', async () => {
    const clock = new VirtualClock();
    const d = twoWindowDetector({ clock, safetyMarginMs: 100, intervalMs: 500 });
    // Arrivals 0, 600, 1000, 1450 with η = 500: lateness 0, 100, 0, −50; mean 12.5.
    for (const at of [0, 600, 1000, 1450]) {
      await clock.advance(at - clock.now());
      d.heartbeat();
    }
    expect(d.longWindowArrival()).toBe(2012.5);
    expect(d.shortWindowArrival()).toBe(1950);
    expect(d.suspectAt()).toBe(2112.5);
  });

  it('estimates from the last longWindowSize arrivals only', async () => {
    const clock = new VirtualClock();
    const d = twoWindowDetector({ clock, safetyMarginMs: 0, longWindowSize: 3, shortWindowSize: 1 });
    for (const at of [0, 700, 1500, 2600]) {
      await clock.advance(at - clock.now());
      d.heartbeat();
    }
    // Lateness 0, −300, −500, −400; the long window keeps the last three: mean −400.
    expect(d.samples).toBe(3);
    expect(d.longWindowArrival()).toBe(3600);
    expect(d.shortWindowArrival()).toBe(3600);
  });

  it('uses the sequence numbers it is given and ignores stale ones', async () => {
    const clock = new VirtualClock();
    const d = twoWindowDetector({ clock, safetyMarginMs: 0 });
    d.heartbeat(4);
    await clock.advance(2500);
    d.heartbeat(6); // 5 was lost: lateness −4000 and 2500 − 6000 = −3500
    expect(d.longWindowArrival()).toBe(-3750 + 7000);
    expect(d.shortWindowArrival()).toBe(-3500 + 7000);
    await clock.advance(100);
    d.heartbeat(5); // reordered behind 6: stale
    d.heartbeat(6);
    expect(d.staleHeartbeats).toBe(2);
    expect(d.lastHeartbeatAt).toBe(2500);
    expect(d.suspectAt()).toBe(3500);
  });

  it('exposes its defaults', () => {
    expect(TWO_WINDOW_DEFAULTS).toEqual({
      longWindowSize: 1000,
      shortWindowSize: 1,
      intervalMs: 1000,
      coalesceBursts: true,
      burstFraction: 0.01,
    });
    expect(Object.isFrozen(TWO_WINDOW_DEFAULTS)).toBe(true);
    expect(CHEN_DEFAULTS).toEqual({
      windowSize: 1000,
      intervalMs: 1000,
      reanchor: true,
      coalesceBursts: true,
      burstFraction: 0.01,
    });
    const d = twoWindowDetector({ safetyMarginMs: 0 });
    expect([d.longWindowSize, d.shortWindowSize, d.intervalMs]).toEqual([1000, 1, 1000]);
  });
});

describe('stale sequence numbers', () => {
  it('every detector ignores a heartbeat whose sequence number does not increase', async () => {
    const clock = new VirtualClock();
    const detectors: Detector[] = [
      fixedTimeout({ clock, timeoutMs: 1500 }),
      phiAccrual({ clock }),
      chenDetector({ clock, safetyMarginMs: 500 }),
      twoWindowDetector({ clock, safetyMarginMs: 500 }),
    ];
    for (const d of detectors) d.heartbeat(7);
    await clock.advance(1000);
    const before = detectors.map((d) => d.suspectAt());
    await clock.advance(2000);
    for (const d of detectors) {
      expect(d.isAvailable()).toBe(false);
      d.heartbeat(7); // a duplicate
      d.heartbeat(3); // a replay of an older one
    }
    expect(detectors.map((d) => d.suspectAt())).toEqual(before);
    expect(detectors.map((d) => d.lastHeartbeatAt)).toEqual([0, 0, 0, 0]);
    expect(detectors.every((d) => !d.isAvailable())).toBe(true);
    for (const d of detectors) d.heartbeat(8);
    expect(detectors.every((d) => d.isAvailable())).toBe(true);
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
