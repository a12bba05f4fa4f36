import type { Clock } from '@bulwark/clock';

/**
 * A heartbeat failure detector for one peer: it turns the arrival times of the
 * peer's heartbeats into a suspicion level, measured on its clock.
 *
 * Every detector starts out available with suspicion 0 and knows nothing until
 * the first heartbeat: a peer that was never heard from is not suspected (a
 * monitor reports it as `'unknown'`).
 */
export interface Detector {
  /** The clock the arrival times are read from. */
  readonly clock: Clock;
  /**
   * The suspicion level at which the detector suspects the peer:
   * {@link isAvailable} is false while `suspicion() >= threshold`.
   */
  readonly threshold: number;
  /** The instant (on {@link clock}) of the last heartbeat, or undefined before the first. */
  readonly lastHeartbeatAt: number | undefined;
  /**
   * Records a heartbeat arriving now. `sequence` is the heartbeat's sequence
   * number when the transport carries one (the UDP receiver passes it). A
   * heartbeat whose sequence number is not above the last one recorded is
   * stale (a duplicate, reordered or replayed message) and is ignored; the
   * sequence-based estimates (Chen, two-window) also use the numbers to tell a
   * loss from a delay.
   */
  heartbeat(sequence?: number): void;
  /**
   * How strongly the peer is suspected now: 0 right after a heartbeat (or
   * before the first), growing while nothing arrives. Its scale depends on the
   * detector (phi for phi accrual, the fraction of the allowed silence used for
   * the others).
   */
  suspicion(): number;
  /** False when the detector suspects the peer now. */
  isAvailable(): boolean;
  /**
   * The instant (on {@link clock}) at which the detector will start to suspect
   * the peer if no heartbeat arrives before it: Chen et al.'s freshness point.
   * Infinity before the first heartbeat.
   */
  suspectAt(): number;
}

/**
 * The suspicion of a detector that expects the next heartbeat by `suspectAt`:
 * the share of the allowed silence (`suspectAt - last`) used by `now` (1 and
 * above: suspected); 0 before the first heartbeat (`last` undefined).
 */
export function silenceSuspicion(now: number, last: number | undefined, suspectAt: number): number {
  if (last === undefined) return 0;
  const allowed = suspectAt - last;
  if (allowed <= 0) return Number.POSITIVE_INFINITY;
  return Math.max(0, now - last) / allowed;
}
