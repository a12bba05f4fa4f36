import {
  heartbeatMonitor,
  phiAccrual,
  udpHeartbeatReceiver,
  udpHeartbeatSender,
} from '@bulwark/failure-detector';

// Each node announces itself to the others every second and watches them.
const key = process.env.HEARTBEAT_KEY ?? 'change me: a shared secret of 32+ bytes';
const monitor = heartbeatMonitor({
  name: 'cluster',
  peers: ['node-b', 'node-c'], // heartbeats from any other id are counted and ignored
  detector: () => phiAccrual({ threshold: 8, acceptablePauseMs: 500 }),
});
monitor.onSuspect(({ peerId, suspicion, silentMs }) =>
  console.warn(`${peerId} suspected (phi ${suspicion.toFixed(1)}, silent ${silentMs.toFixed(0)} ms)`),
);
monitor.onRecover(({ peerId }) => console.info(`${peerId} is back`));

const receiver = udpHeartbeatReceiver({ monitor, host: '0.0.0.0', port: 7946, key });
await receiver.listen();
receiver.onDrop(({ reason, from }) => console.warn(`dropped a heartbeat from ${from.address}: ${reason}`));

export const sender = udpHeartbeatSender({
  peerId: 'node-a',
  key,
  intervalMs: 1000,
  targets: [
    { host: '10.0.0.12', port: 7946 },
    { host: '10.0.0.13', port: 7946 },
  ],
});

export function shutdown(): void {
  sender.dispose();
  receiver.dispose();
  monitor.dispose();
}
