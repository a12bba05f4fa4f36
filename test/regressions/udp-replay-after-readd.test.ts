// A dead peer's recorded UDP heartbeats must not make it look alive, even after
// the peer has been removed from the monitor and added again: the receiver's
// replay floor outlives the removal (for the last maxRetiredPeers removed peers).
// Before, re-adding a peer reset its replay state, and a recording of its last
// run was accepted packet by packet, keeping the dead peer 'available' for the
// whole replay.
import { VirtualClock } from '@bulwark/clock';
import {
  encodeHeartbeat,
  fixedTimeout,
  type HeartbeatMonitor,
  heartbeatMonitor,
  type PeerStatus,
  type UdpHeartbeatReceiver,
  udpHeartbeatReceiver,
} from '@bulwark/failure-detector';
import { afterEach, describe, expect, it } from 'vitest';

const KEY = 'a shared secret of 32 bytes.....';
const FROM = { address: '127.0.0.1', port: 40000 };
const INCARNATION = '0000018f00000007';

const open: Array<{ dispose(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0)) o.dispose();
});

/** Twenty genuine heartbeats of node-a, one a second, recorded by an attacker on the path. */
async function liveThenDead(autoAdd: boolean): Promise<{
  clock: VirtualClock;
  monitor: HeartbeatMonitor;
  receiver: UdpHeartbeatReceiver;
  recording: Buffer[];
}> {
  const clock = new VirtualClock();
  const monitor = heartbeatMonitor({
    clock,
    autoAdd,
    peers: ['node-a'],
    detector: () => fixedTimeout({ clock, timeoutMs: 1500 }),
  });
  const receiver = udpHeartbeatReceiver({ monitor, key: KEY });
  open.push(receiver, monitor);
  const recording: Buffer[] = [];
  for (let sequence = 1; sequence <= 20; sequence++) {
    const datagram = encodeHeartbeat(
      { peerId: 'node-a', incarnation: INCARNATION, sequence, sentAt: 0 },
      KEY,
    );
    recording.push(datagram);
    expect(receiver.receive(datagram, FROM)).toBe('accepted');
    await clock.advance(1000);
  }
  // node-a dies: suspected, then removed by the operator.
  await clock.advance(5000);
  expect(monitor.status('node-a')).toBe('suspect');
  expect(monitor.remove('node-a')).toBe(true);
  return { clock, monitor, receiver, recording };
}

async function replay(
  clock: VirtualClock,
  monitor: HeartbeatMonitor,
  receiver: UdpHeartbeatReceiver,
  recording: Buffer[],
) {
  const outcomes: string[] = [];
  const statuses: PeerStatus[] = [];
  for (const datagram of recording) {
    outcomes.push(receiver.receive(datagram, FROM));
    statuses.push(monitor.status('node-a'));
    await clock.advance(1000);
  }
  return { outcomes, statuses };
}

describe('UDP heartbeat replay after a dead peer is removed and added again', () => {
  it('drops every recorded packet, so the dead peer never looks alive', async () => {
    const { clock, monitor, receiver, recording } = await liveThenDead(false);
    monitor.add('node-a');
    const { outcomes, statuses } = await replay(clock, monitor, receiver, recording);
    expect(outcomes).toEqual(recording.map(() => 'replayed'));
    expect(statuses.every((s) => s !== 'available')).toBe(true);
    expect(receiver.stats.replayed).toBe(20);
  });

  it('drops them with autoAdd too, without adding the peer back', async () => {
    const { clock, monitor, receiver, recording } = await liveThenDead(true);
    const { outcomes, statuses } = await replay(clock, monitor, receiver, recording);
    expect(outcomes).toEqual(recording.map(() => 'replayed'));
    expect(statuses).toEqual(recording.map(() => 'unknown'));
    expect(monitor.has('node-a')).toBe(false);
  });

  it('still accepts the peer when it really comes back (a restarted sender, a higher incarnation)', async () => {
    const { monitor, receiver } = await liveThenDead(false);
    monitor.add('node-a');
    const restarted = encodeHeartbeat(
      { peerId: 'node-a', incarnation: '0000019000000001', sequence: 1, sentAt: 0 },
      KEY,
    );
    expect(receiver.receive(restarted, FROM)).toBe('accepted');
    expect(monitor.status('node-a')).toBe('available');
  });
});
