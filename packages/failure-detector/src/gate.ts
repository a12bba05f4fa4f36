import type { ExecutionContext, Operation } from '@bulwark/core';
import { BasePolicy } from '@bulwark/core/authoring';
import { PeerSuspectedError } from './errors.ts';
import type { HeartbeatMonitor } from './monitor.ts';

/**
 * A policy that refuses calls to a peer while a heartbeat monitor suspects it,
 * with {@link PeerSuspectedError} (`ERR_PEER_SUSPECTED`), before the call is
 * made. See {@link suspicionGate}.
 */
export class SuspicionGatePolicy extends BasePolicy {
  readonly monitor: HeartbeatMonitor;
  readonly peerId: string;

  constructor(monitor: HeartbeatMonitor, peerId: string) {
    if (typeof monitor !== 'object' || monitor === null || typeof monitor.status !== 'function') {
      throw new TypeError(`suspicionGate(): monitor must be a heartbeat monitor, got ${String(monitor)}`);
    }
    if (typeof peerId !== 'string') {
      throw new TypeError(`suspicionGate(): peerId must be a string, got ${typeof peerId}`);
    }
    super(monitor.clock);
    this.monitor = monitor;
    this.peerId = peerId;
  }

  /** Whether a call would be let through now (the peer is available or unknown). */
  get admits(): boolean {
    return this.monitor.status(this.peerId) !== 'suspect';
  }

  run<T>(fn: Operation<T>, ctx: ExecutionContext): T | PromiseLike<T> {
    const monitor = this.monitor;
    const peerId = this.peerId;
    if (monitor.status(peerId) === 'suspect') {
      const last = monitor.detector(peerId)?.lastHeartbeatAt;
      return Promise.reject(
        new PeerSuspectedError(
          peerId,
          monitor.suspicion(peerId) ?? 0,
          last === undefined ? undefined : monitor.clock.now() - last,
        ),
      );
    }
    return fn(ctx);
  }
}

/**
 * Refuses calls to `peerId` while `monitor` suspects it. It is an ordinary
 * policy, so it composes in `pipeline()`: put it in front of a circuit breaker
 * and the breaker stops sending work to a peer whose heartbeats stopped,
 * before the first call fails. Peers the monitor does not know (or has not
 * heard from yet) are let through.
 */
export function suspicionGate(monitor: HeartbeatMonitor, peerId: string): SuspicionGatePolicy {
  return new SuspicionGatePolicy(monitor, peerId);
}
