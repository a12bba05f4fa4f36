export {
  ARRIVAL_ESTIMATE_DEFAULTS,
  ArrivalEstimateDetector,
  type ArrivalEstimateOptions,
} from './arrival-estimate.ts';
export { CHEN_DEFAULTS, ChenDetector, type ChenDetectorOptions, chenDetector } from './chen.ts';
export type { Detector } from './detector.ts';
export { MonitorDisposedError, PeerSuspectedError } from './errors.ts';
export { FixedTimeoutDetector, type FixedTimeoutOptions, fixedTimeout } from './fixed-timeout.ts';
export { SuspicionGatePolicy, suspicionGate } from './gate.ts';
export {
  HTTP_PINGER_DEFAULTS,
  HttpPinger,
  type HttpPingerOptions,
  httpPinger,
  type PingerStats,
  type PingFetch,
  type PingResponse,
  type ProbeEvent,
  type ProbeOutcome,
} from './http-pinger.ts';
export {
  HEARTBEAT_MONITOR_DEFAULTS,
  HeartbeatMonitor,
  type HeartbeatMonitorOptions,
  type HeartbeatMonitorStats,
  heartbeatMonitor,
  type PeerStatus,
  type RecoverEvent,
  type SuspectEvent,
} from './monitor.ts';
export {
  type DecodeResult,
  type DropReason,
  decodeHeartbeat,
  encodeHeartbeat,
  type HeartbeatKey,
  type HeartbeatPacket,
  MIN_KEY_BYTES,
} from './packet.ts';
export {
  PHI_ACCRUAL_DEFAULTS,
  PhiAccrualDetector,
  type PhiAccrualOptions,
  phiAccrual,
  phiOf,
} from './phi-accrual.ts';
export {
  TWO_WINDOW_DEFAULTS,
  TwoWindowDetector,
  type TwoWindowDetectorOptions,
  twoWindowDetector,
} from './two-window.ts';
export {
  type HeartbeatDropEvent,
  type HeartbeatReceivedEvent,
  type HeartbeatTarget,
  UDP_RECEIVER_DEFAULTS,
  UDP_SENDER_DEFAULTS,
  UdpHeartbeatReceiver,
  type UdpHeartbeatReceiverOptions,
  UdpHeartbeatSender,
  type UdpHeartbeatSenderOptions,
  type UdpReceiverStats,
  type UdpSenderStats,
  udpHeartbeatReceiver,
  udpHeartbeatSender,
} from './udp.ts';
