// The two-window detector plugs into the monitor, the UDP receiver, the HTTP
// pinger and suspicionGate() the way the other detectors do.
import { VirtualClock } from '@bulwark/clock';
import {
  encodeHeartbeat,
  heartbeatMonitor,
  httpPinger,
  PeerSuspectedError,
  suspicionGate,
  TwoWindowDetector,
  twoWindowDetector,
  udpHeartbeatReceiver,
} from '@bulwark/failure-detector';
import { afterEach, describe, expect, it } from 'vitest';

const open: Array<{ dispose(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0)) o.dispose();
});

function monitorOf(clock: VirtualClock, intervalMs = 1000) {
  const monitor = heartbeatMonitor({
    clock,
    peers: ['node-a'],
    checkIntervalMs: 50,
    detector: () => twoWindowDetector({ clock, intervalMs, safetyMarginMs: 200 }),
  });
  open.push(monitor);
  return monitor;
}

describe('twoWindowDetector in the monitor and transports', () => {
  it('drives the monitor: suspect at the later estimate plus α, recover on the next heartbeat', async () => {
    const clock = new VirtualClock();
    const monitor = monitorOf(clock);
    const events: string[] = [];
    monitor.onSuspect(({ peerId, silentMs }) => events.push(`suspect ${peerId} ${silentMs}`));
    monitor.onRecover(({ peerId }) => events.push(`recover ${peerId}`));
    for (let s = 1; s <= 3; s++) {
      monitor.heartbeat('node-a', s);
      await clock.advance(1000);
    }
    expect(monitor.detector('node-a')).toBeInstanceOf(TwoWindowDetector);
    // Last heartbeat at 2000 (sequence 3): the next is expected at 3000, suspected from 3200.
    expect(monitor.status('node-a')).toBe('available');
    await clock.advance(200);
    expect(monitor.status('node-a')).toBe('suspect');
    await clock.advance(50);
    expect(events).toEqual(['suspect node-a 1200']);
    monitor.heartbeat('node-a', 2); // stale: ignored
    expect(monitor.status('node-a')).toBe('suspect');
    monitor.heartbeat('node-a', 4);
    expect(events).toEqual(['suspect node-a 1200', 'recover node-a']);
    expect(monitor.status('node-a')).toBe('available');
  });

  it('takes sequence numbers from the UDP receiver, across a restart of the sender', async () => {
    const clock = new VirtualClock();
    const monitor = monitorOf(clock);
    const receiver = udpHeartbeatReceiver({ monitor });
    open.push(receiver);
    const from = { address: '127.0.0.1', port: 40000 };
    const send = (incarnation: string, sequence: number) =>
      receiver.receive(
        encodeHeartbeat({ peerId: 'node-a', incarnation, sequence, sentAt: 0 }, undefined),
        from,
      );
    expect(send('0000000100000000', 1)).toBe('accepted');
    await clock.advance(1000);
    expect(send('0000000100000000', 2)).toBe('accepted');
    await clock.advance(5000);
    // The sender restarted (a higher incarnation, counting from 1): still a fresh heartbeat for the detector.
    expect(send('0000000200000000', 1)).toBe('accepted');
    const detector = monitor.detector('node-a') as TwoWindowDetector;
    expect(detector.sequence).toBe(3);
    expect(detector.staleHeartbeats).toBe(0);
    expect(monitor.status('node-a')).toBe('available');
  });

  it('takes heartbeats from the HTTP pinger and gates calls while suspected', async () => {
    const clock = new VirtualClock();
    const monitor = heartbeatMonitor({
      clock,
      detector: () => twoWindowDetector({ clock, intervalMs: 100, safetyMarginMs: 50 }),
    });
    open.push(monitor);
    let healthy = true;
    const pinger = httpPinger({
      url: 'http://db.internal:8080/health',
      peerId: 'db',
      monitor,
      clock,
      intervalMs: 100,
      fetch: async () => ({ status: healthy ? 200 : 503 }),
    });
    open.push(pinger);
    const gate = suspicionGate(monitor, 'db');
    await clock.advance(1000);
    expect(monitor.status('db')).toBe('available');
    expect(await gate.execute(() => 'ok')).toBe('ok');
    healthy = false;
    await clock.advance(200);
    expect(monitor.status('db')).toBe('suspect');
    await expect(gate.execute(() => 'not called')).rejects.toBeInstanceOf(PeerSuspectedError);
    healthy = true;
    await clock.advance(100);
    expect(await gate.execute(() => 'back')).toBe('back');
  });
});
