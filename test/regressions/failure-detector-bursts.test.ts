// On a FIFO channel (TCP, HTTP) one long delay holds up every heartbeat sent
// behind it, and they all arrive at one instant. Chen's detector and the
// two-window detector took the lateness of each queued heartbeat (the wait
// behind the first: 5 s, 4 s, … for a 5 s delay) as an observation of the
// channel, and phi took each zero interval as one, so the detection time stayed
// high for a whole window afterwards: on the QoS benchmark's FIFO Pareto trace
// (seed 25) a single 153 s delay made Chen 0.6x of a fixed timeout at equal
// detection time. A burst now counts as one observation, by its freshest
// heartbeat; `coalesceBursts: false` keeps the published algorithms.
import { VirtualClock } from '@bulwark/clock';
import { chenDetector, type Detector, phiAccrual, twoWindowDetector } from '@bulwark/failure-detector';
import { describe, expect, it } from 'vitest';

const PHI_AT_MEAN = Math.log10(2);

interface Arrival {
  readonly sequence: number;
  readonly at: number;
}

/**
 * One heartbeat a second, each 100 ms on the way, on a FIFO channel:
 * heartbeat 10 (sent at 10 000) is held up 5 s, so 10…15 arrive together at
 * 15 100 (lateness Aᵢ − η·sᵢ: 5100, 4100, 3100, 2100, 1100, 100); 16 arrives
 * at 16 100.
 */
const FIFO_BURST: readonly Arrival[] = [
  ...Array.from({ length: 10 }, (_, s) => ({ sequence: s, at: s * 1000 + 100 })),
  ...[10, 11, 12, 13, 14, 15].map((sequence) => ({ sequence, at: 15_100 })),
  { sequence: 16, at: 16_100 },
];

async function replay(
  clock: VirtualClock,
  detectors: readonly Detector[],
  arrivals: readonly Arrival[],
  withSequence = true,
): Promise<void> {
  for (const { sequence, at } of arrivals) {
    await clock.advance(at - clock.now());
    for (const d of detectors) d.heartbeat(withSequence ? sequence : undefined);
  }
}

describe('a burst of queued heartbeats counts once, by its freshest heartbeat', () => {
  it('chenDetector expects the next heartbeat from the burst at 16 100, not at the 2002 estimate of 17 037.5', async () => {
    const clock = new VirtualClock();
    const d = chenDetector({ clock, safetyMarginMs: 500 });
    const published = chenDetector({ clock, safetyMarginMs: 500, reanchor: false, coalesceBursts: false });
    const reanchorOnly = chenDetector({ clock, safetyMarginMs: 500, coalesceBursts: false });
    await replay(clock, [d, published, reanchorOnly], FIFO_BURST.slice(0, 16));
    // Window: ten arrivals with lateness 100, and the burst as one sample, its freshest (100).
    expect(d.expectedArrival()).toBe(100 + 16_000);
    expect(d.suspectAt()).toBe(16_600);
    expect(d.samples).toBe(11);
    expect(d.sequence).toBe(15);
    expect(d.coalescedHeartbeats).toBe(5);
    // The head of the burst was late (5100 > 100 + 500), but the freshest is not: no re-anchoring.
    expect(d.reanchors).toBe(0);
    // As published: sixteen samples, 10 × 100 + 5100 + 4100 + 3100 + 2100 + 1100 + 100 = 16 600.
    expect(published.samples).toBe(16);
    expect(published.expectedArrival()).toBe(16_600 / 16 + 16_000);
    expect(reanchorOnly.expectedArrival()).toBe(16_600 / 16 + 16_000);
    // A crash right after heartbeat 15 is suspected at 16 600, not 17 537.5.
    await clock.advance(16_599 - clock.now());
    expect(d.isAvailable()).toBe(true);
    await clock.advance(1);
    expect(d.isAvailable()).toBe(false);
    expect(published.isAvailable()).toBe(true);
    await clock.advance(17_537.5 - clock.now());
    expect(published.isAvailable()).toBe(false);
  });

  it('chenDetector without sequence numbers keeps its phase through a burst (17 100, not 20 923.5)', async () => {
    const clock = new VirtualClock();
    const d = chenDetector({ clock, safetyMarginMs: 500 });
    const published = chenDetector({ clock, safetyMarginMs: 500, reanchor: false, coalesceBursts: false });
    await replay(clock, [d, published], FIFO_BURST, false);
    // The 6 s silence before the burst counts as five lost heartbeats: the head is number 15
    // (lateness 100), and the rest of the burst (the five counted as lost) gets no new number.
    // 16 then has lateness 100: twelve samples of 100, next expected at 100 + 17 000.
    expect(d.sequence).toBe(16);
    expect(d.samples).toBe(12);
    expect(d.expectedArrival()).toBe(17_100);
    // As published, the burst gets numbers 16…20 (lateness −900 … −4900) and 16 becomes 21
    // (−4900): the sum is 1100 − 14 500 − 4900 = −18 300 over 17 samples, plus 22 × 1000.
    expect(published.sequence).toBe(21);
    expect(published.expectedArrival()).toBeCloseTo(22_000 - 18_300 / 17, 9);
  });

  it('chenDetector re-anchors when the freshest of a late burst and the next heartbeat are both late', async () => {
    const clock = new VirtualClock();
    const d = chenDetector({ clock, safetyMarginMs: 500 });
    // The sender stalls after 9 and restarts its schedule 3 s later: 10 leaves at 13 000 and is
    // held up 1100 ms, 11 (14 000) is queued behind it; 12 leaves at 15 000 and takes 100 ms.
    await replay(
      clock,
      [d],
      [
        ...FIFO_BURST.slice(0, 10),
        { sequence: 10, at: 14_100 },
        { sequence: 11, at: 14_100 },
        { sequence: 12, at: 15_100 },
      ],
    );
    // 10 is late (4100 > 100 + 500); 11, the freshest of the burst, is late too (3100), and takes
    // its place; 12 (3100) is late a full interval later: the window restarts from {3100, 3100}.
    expect(d.reanchors).toBe(1);
    expect(d.samples).toBe(2);
    expect(d.expectedArrival()).toBe(3100 + 13_000);
  });

  it('twoWindowDetector keeps the burst out of its long window: suspects at 16 600, not 17 537.5', async () => {
    const clock = new VirtualClock();
    const d = twoWindowDetector({ clock, safetyMarginMs: 500 });
    const published = twoWindowDetector({ clock, safetyMarginMs: 500, coalesceBursts: false });
    await replay(clock, [d, published], FIFO_BURST.slice(0, 16));
    expect(d.suspectAt()).toBe(16_600);
    expect(d.longWindowArrival()).toBe(16_100);
    expect(d.shortWindowArrival()).toBe(16_100);
    expect(d.samples).toBe(11);
    expect(d.coalescedHeartbeats).toBe(5);
    expect(published.longWindowArrival()).toBe(16_600 / 16 + 16_000);
    expect(published.shortWindowArrival()).toBe(16_100);
    expect(published.suspectAt()).toBe(16_600 / 16 + 16_500);
  });

  it('phiAccrual records no zero intervals for a burst: its history stays mean 1000, sd √(125 000 / 11)', async () => {
    const clock = new VirtualClock();
    const d = phiAccrual({ clock });
    const akka = phiAccrual({ clock, coalesceBursts: false });
    await replay(clock, [d, akka], FIFO_BURST.slice(0, 16));
    // Bootstrap 750 and 1250, nine 1000 ms intervals; the 6 s silence ended a suspicion (not
    // recorded), and the five heartbeats queued behind the head record nothing.
    expect(d.meanIntervalMs).toBe(1000);
    expect(d.stdDeviationMs).toBeCloseTo(Math.sqrt(125_000 / 11), 9);
    expect(d.samples).toBe(11);
    expect(d.coalescedHeartbeats).toBe(5);
    // Recording every interval, as Akka does, adds five zeros: mean 11 000 / 16 = 687.5.
    expect(akka.samples).toBe(16);
    expect(akka.meanIntervalMs).toBe(687.5);
    expect(akka.stdDeviationMs).toBeCloseTo(Math.sqrt(11_125_000 / 16 - 687.5 ** 2), 9);
    expect(akka.suspectAt()).toBeGreaterThan(d.suspectAt() + 1500);
    // One interval after the burst phi is at the mean; the next interval counts from the burst.
    await clock.advance(1000);
    expect(d.phi()).toBeCloseTo(PHI_AT_MEAN, 12);
    d.heartbeat(16);
    expect(d.samples).toBe(12);
    expect(d.meanIntervalMs).toBe(1000);
  });

  it('a heartbeat a hundredth of an interval after the previous one is not part of a burst', async () => {
    const clock = new VirtualClock();
    const d = chenDetector({ clock, safetyMarginMs: 500 });
    const two = twoWindowDetector({ clock, safetyMarginMs: 500 });
    d.heartbeat(0);
    two.heartbeat(0);
    await clock.advance(1990); // 1 is 990 ms late, 2 on time: 10 ms apart, η / 100
    d.heartbeat(1);
    two.heartbeat(1);
    await clock.advance(10);
    d.heartbeat(2);
    two.heartbeat(2);
    expect(d.samples).toBe(3);
    expect(two.samples).toBe(3);
    await clock.advance(9.999);
    d.heartbeat(3);
    expect(d.samples).toBe(3);
    expect(d.coalescedHeartbeats).toBe(1);
  });
});
