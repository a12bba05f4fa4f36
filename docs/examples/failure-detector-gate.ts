import { circuitBreaker } from '@bulwark/circuit-breaker';
import { pipeline } from '@bulwark/core';
import { heartbeatMonitor, httpPinger, phiAccrual, suspicionGate } from '@bulwark/failure-detector';
import { retry } from '@bulwark/retry';

const monitor = heartbeatMonitor({ detector: () => phiAccrual({ firstHeartbeatEstimateMs: 500 }) });
// Probe the replica's health endpoint twice a second; each 2xx is a heartbeat.
httpPinger({ url: 'http://replica-2.internal:8080/health', peerId: 'replica-2', monitor, intervalMs: 500 });

// The gate refuses calls (ERR_PEER_SUSPECTED) while replica-2 is suspected, before the breaker
// has seen a single failure; the breaker still guards against a replica that answers heartbeats
// but fails requests. retry() does not retry ERR_PEER_SUSPECTED (it is not a transient error).
const policy = pipeline(retry(), suspicionGate(monitor, 'replica-2'), circuitBreaker({ name: 'replica-2' }));

export async function query(sql: string): Promise<Response> {
  return policy.execute((ctx) =>
    fetch('http://replica-2.internal:8080/query', { method: 'POST', body: sql, signal: ctx.signal }),
  );
}
