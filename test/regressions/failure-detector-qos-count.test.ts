// The failure-detector QoS benchmark once counted a new mistake whenever several
// heartbeats arrived at the same instant in the middle of a suspicion (the burst
// after a stall): the second heartbeat of the burst reset its "still suspecting"
// flag, so the next arrival started a second mistake. One unbroken suspicion is
// one mistake, however many heartbeats arrive at one instant inside it.
import type { Clock, VirtualClock } from '@bulwark/clock';
import { type Detector, fixedTimeout } from '@bulwark/failure-detector';
import { describe, expect, it } from 'vitest';
import { measureQos } from '../../bench/suites/failure-detector-qos.ts';

/** A detector that suspects 1500 ms after its first heartbeat and never trusts the peer again. */
function neverRecovers(clock: Clock): Detector {
  let first: number | undefined;
  let last: number | undefined;
  return {
    clock,
    threshold: 1,
    get lastHeartbeatAt() {
      return last;
    },
    heartbeat() {
      last = clock.now();
      first ??= last;
    },
    suspectAt: () => (first === undefined ? Number.POSITIVE_INFINITY : first + 1500),
    suspicion: () => (first !== undefined && clock.now() >= first + 1500 ? 1 : 0),
    isAvailable: () => first === undefined || clock.now() < first + 1500,
  };
}

describe('failure-detector QoS counting', () => {
  it('counts one mistake for one suspicion, across heartbeats that arrive at the same instant', async () => {
    // Heartbeats sent every second; 2 to 5 arrive together at 5100 (a burst), the rest 100 ms after sending.
    const sent = Float64Array.from([0, 1000, 2000, 3000, 4000, 5000, 6000]);
    const arrived = Float64Array.from([100, 1100, 5100, 5100, 5100, 5100, 6100]);
    const [stuck, fixed] = await measureQos(
      { sent, arrived },
      [neverRecovers, (clock: VirtualClock) => fixedTimeout({ clock, timeoutMs: 1500 })],
      0,
    );
    // Suspected from 1600 to the end (6100): one mistake of 4.5 s.
    expect(stuck!.mistakes).toBe(1);
    expect(stuck!.meanMistakeMs).toBe(4500);
    // The fixed timeout suspected from 2600 to 5100 only: the burst ended that one mistake.
    expect(fixed!.mistakes).toBe(1);
    expect(fixed!.meanMistakeMs).toBe(2500);
  });
});
