import { heartbeatMonitor, phiAccrual, suspicionGate, udpHeartbeatReceiver } from '@bulwark/failure-detector';

const monitor = heartbeatMonitor({ autoAdd: true, detector: () => phiAccrual() }); // threshold 8
monitor.onSuspect(({ peerId }) => console.warn(`${peerId} stopped sending heartbeats`));
await udpHeartbeatReceiver({ monitor, port: 7946, key: process.env.HEARTBEAT_KEY }).listen();

// A policy that refuses calls to a suspected peer: put it in front of a breaker in pipeline().
export const gate = suspicionGate(monitor, 'node-b');
