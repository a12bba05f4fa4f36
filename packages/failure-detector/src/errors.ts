import { BulwarkError } from '@bulwark/core';
import { formatMs } from '@bulwark/core/authoring';

/** A call was refused because the heartbeat monitor suspects the peer it goes to. */
export class PeerSuspectedError extends BulwarkError<'ERR_PEER_SUSPECTED'> {
  /** The suspected peer. */
  readonly peerId: string;
  /** The detector's suspicion level when the call was refused. */
  readonly suspicion: number;
  /** Not worth retrying at once: the peer stays suspected until its heartbeats resume. */
  readonly retryable = false;

  constructor(peerId: string, suspicion: number, silentMs: number | undefined) {
    const silence = silentMs === undefined ? '' : ` (no heartbeat for ${formatMs(silentMs)})`;
    super(
      'ERR_PEER_SUSPECTED',
      `call refused: peer "${peerId}" is suspected to have failed${silence}; calls resume when its heartbeats do`,
    );
    this.peerId = peerId;
    this.suspicion = suspicion;
  }
}

/**
 * A listener was added to a heartbeat monitor after `dispose()`. A disposed
 * monitor never checks its peers again, so the listener would never be called:
 * subscribe before disposing, or create a new monitor.
 */
export class MonitorDisposedError extends BulwarkError<'ERR_MONITOR_DISPOSED'> {
  /** The monitor's name (`'unnamed'` when none was given). */
  readonly monitor: string;

  constructor(monitor: string, method: string) {
    super(
      'ERR_MONITOR_DISPOSED',
      `heartbeatMonitor "${monitor}" is disposed: ${method}() would never call its listener; subscribe before dispose() or create a new monitor`,
    );
    this.monitor = monitor;
  }
}

declare module '@bulwark/core' {
  /** This package's error codes, for `isBulwarkError(e, code)` to narrow by. */
  interface BulwarkErrorMap {
    ERR_PEER_SUSPECTED: PeerSuspectedError;
    ERR_MONITOR_DISPOSED: MonitorDisposedError;
  }
}
