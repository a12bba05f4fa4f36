// The QoS benchmark's "UDP channel" kept a datagram that was overtaken and
// dropped the later ones that overtook it: after one 5 s delay the receiver saw
// a 5 s silence and then nothing of what arrived meanwhile, as on a FIFO
// channel. bulwark's UDP receiver does the opposite: the later datagrams are
// delivered on their own time and the overtaken one is stale when it arrives.
import { seededRandom } from '@bulwark/clock';
import { describe, expect, it } from 'vitest';
import { makeTrace } from '../../bench/suites/failure-detector-qos.ts';

// Heartbeat 2 (sent at 2000) takes 5000 ms; every other one 100 ms.
const delay = (_random: () => number, sentAt: number) => (sentAt === 2000 ? 5000 : 100);

describe('the QoS benchmark channels', () => {
  it('UDP: the overtaken datagram is dropped and the ones that overtook it arrive on their own time', () => {
    const trace = makeTrace('udp', 1, { delay, channel: 'udp' }, seededRandom(1));
    expect([...trace.arrived.subarray(0, 9)]).toEqual([
      100,
      1100,
      Number.NaN,
      3100,
      4100,
      5100,
      6100,
      7100,
      8100,
    ]);
  });

  it('FIFO: the heartbeats behind the delayed one arrive with it', () => {
    const trace = makeTrace('fifo', 1, { delay }, seededRandom(1));
    expect([...trace.arrived.subarray(0, 9)]).toEqual([100, 1100, 7000, 7000, 7000, 7000, 7000, 7100, 8100]);
  });
});
