import { VirtualClock } from '@bulwark/clock';
import { chenDetector, fixedTimeout, phiAccrual, twoWindowDetector } from '@bulwark/failure-detector';

// The detectors alone, driven by hand on a virtual clock: one heartbeat per second.
const clock = new VirtualClock();
const phi = phiAccrual({ clock, threshold: 8 });
const chen = chenDetector({ clock, safetyMarginMs: 500, intervalMs: 1000 });
const twoWindow = twoWindowDetector({ clock, safetyMarginMs: 500, intervalMs: 1000 });
const fixed = fixedTimeout({ clock, timeoutMs: 3000 });
const detectors = [phi, chen, twoWindow, fixed];

for (let second = 0; second < 60; second++) {
  for (const d of detectors) d.heartbeat(second); // the sequence number, when the transport has one
  await clock.advance(1000);
}
await clock.advance(1500); // 2.5 s of silence in all
export const report = detectors.map((d) => ({
  suspicion: d.suspicion(), // phi for phi accrual; the fraction of the allowed silence for the others
  available: d.isAvailable(),
  suspectsAt: d.suspectAt() - clock.now(), // ms from now until it suspects, absent a heartbeat
}));
export const currentPhi = phi.phi();
