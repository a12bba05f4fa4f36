import { type Clock, systemClock, Ticker } from '@bulwark/clock';
import { CallbackError, type Disposable, type Listener } from '@bulwark/core';
import { EventHub, OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import type { Detector } from './detector.ts';
import { MonitorDisposedError } from './errors.ts';
import { droppedCounter, transitionsCounter } from './telemetry.ts';

const MONITOR_KEYS = optionKeys<HeartbeatMonitorOptions>({
  detector: true,
  clock: true,
  checkIntervalMs: true,
  autoAdd: true,
  peers: true,
  name: true,
});

/** What a monitor knows about a peer. */
export type PeerStatus = 'available' | 'suspect' | 'unknown';

/** Options for {@link heartbeatMonitor}. */
export interface HeartbeatMonitorOptions {
  /**
   * Makes the detector for a new peer. Every detector must run on the
   * monitor's clock, e.g. `() => phiAccrual({ clock })`. Required.
   */
  readonly detector: (peerId: string) => Detector;
  /** The clock of the monitor's timer; detectors must use the same one. Default: the system clock. */
  readonly clock?: Clock | undefined;
  /**
   * How often, in milliseconds, every peer is evaluated (from one timer) to
   * emit `onSuspect`: a finite number > 0. Default: 100.
   */
  readonly checkIntervalMs?: number | undefined;
  /**
   * Accept heartbeats from peers that were never added, adding them. When off,
   * such heartbeats are counted (`ignoredUnknown`) and ignored. Default: false.
   */
  readonly autoAdd?: boolean | undefined;
  /** Peers to track from the start. Default: none. */
  readonly peers?: Iterable<string> | undefined;
  /** A name for telemetry (`monitor` attribute). Default: `"unnamed"`. */
  readonly name?: string | undefined;
}

/** The defaults of {@link heartbeatMonitor}. */
export const HEARTBEAT_MONITOR_DEFAULTS = Object.freeze({
  checkIntervalMs: 100,
  autoAdd: false,
});

/** Payload of `onSuspect`. */
export interface SuspectEvent {
  readonly peerId: string;
  /** The detector's suspicion level when the check found the peer suspected. */
  readonly suspicion: number;
  /** Milliseconds since the peer's last heartbeat. */
  readonly silentMs: number;
}

/** Payload of `onRecover`. */
export interface RecoverEvent {
  readonly peerId: string;
  /** Milliseconds from the `onSuspect` event to this heartbeat. */
  readonly suspectedForMs: number;
}

/** Counts of a monitor. */
export interface HeartbeatMonitorStats {
  /** Peers tracked now. */
  readonly peers: number;
  /** Peers the last check (or heartbeat) left suspected. */
  readonly suspected: number;
  /** Heartbeats from unknown peers that were ignored (autoAdd off). */
  readonly ignoredUnknown: number;
}

interface Peer {
  readonly detector: Detector;
  suspected: boolean;
  suspectedAt: number;
}

/** Records a violation into `check` unless `monitor` is a heartbeat monitor (the transports' `monitor` option). */
export function checkMonitor(check: OptionsChecker, monitor: unknown): monitor is HeartbeatMonitor {
  const ok =
    typeof monitor === 'object' &&
    monitor !== null &&
    typeof (monitor as Partial<HeartbeatMonitor>).heartbeat === 'function';
  check.expect(ok, 'monitor', monitor, 'a heartbeat monitor');
  return ok;
}

/**
 * Tracks many peers, each with its own detector, and evaluates them all from
 * one timer. See {@link heartbeatMonitor}.
 *
 * The timer exists only while at least one peer is tracked, does not keep the
 * process alive, and is released by `dispose()`, after which the monitor holds
 * no peer, detector or listener.
 */
export class HeartbeatMonitor implements Disposable {
  readonly clock: Clock;
  readonly checkIntervalMs: number;
  readonly autoAdd: boolean;
  readonly name: string;
  readonly #factory: (peerId: string) => Detector;
  #peers = new Map<string, Peer>();
  /** Calls `check()` every `checkIntervalMs`, the first one interval after it starts; running only while peers are tracked. */
  readonly #ticker: Ticker;
  #disposed = false;
  #ignoredUnknown = 0;
  #suspected = 0;
  #onSuspect: EventHub<SuspectEvent> | undefined = new EventHub('heartbeatMonitor.onSuspect');
  #onRecover: EventHub<RecoverEvent> | undefined = new EventHub('heartbeatMonitor.onRecover');

  constructor(options: HeartbeatMonitorOptions) {
    const check = new OptionsChecker('heartbeatMonitor()');
    check.knownKeys(options, MONITOR_KEYS);
    check.func('detector', options?.detector, true);
    check.number('checkIntervalMs', options?.checkIntervalMs, { above: 0 });
    check.boolean('autoAdd', options?.autoAdd);
    check.clock('clock', options?.clock, true);
    check.string('name', options?.name);
    const peers = options?.peers;
    check.expect(
      peers === undefined ||
        (typeof peers === 'object' &&
          peers !== null &&
          typeof (peers as Iterable<string>)[Symbol.iterator] === 'function'),
      'peers',
      peers,
      'an iterable of peer ids',
    );
    check.done();
    this.clock = options.clock ?? systemClock;
    this.checkIntervalMs = options.checkIntervalMs ?? HEARTBEAT_MONITOR_DEFAULTS.checkIntervalMs;
    this.autoAdd = options.autoAdd ?? HEARTBEAT_MONITOR_DEFAULTS.autoAdd;
    this.name = options.name ?? 'unnamed';
    this.#factory = options.detector;
    this.#ticker = new Ticker(() => this.check(), {
      intervalMs: this.checkIntervalMs,
      clock: this.clock,
      tickOnStart: false,
    });
    if (peers !== undefined) for (const id of peers) this.add(id);
  }

  /** Called when a check finds a peer newly suspected. Throws {@link MonitorDisposedError} after `dispose()`. */
  onSuspect(listener: Listener<SuspectEvent>): Disposable {
    return this.#hub(this.#onSuspect, 'onSuspect').subscribe(listener);
  }

  /**
   * Called when a heartbeat arrives from a suspected peer and its detector trusts
   * it again. Throws {@link MonitorDisposedError} after `dispose()`.
   */
  onRecover(listener: Listener<RecoverEvent>): Disposable {
    return this.#hub(this.#onRecover, 'onRecover').subscribe(listener);
  }

  /**
   * Starts tracking `peerId` (its status is `'unknown'` until its first
   * heartbeat). Returns false when it was already tracked or the monitor is disposed.
   */
  add(peerId: string): boolean {
    if (typeof peerId !== 'string') {
      throw new TypeError(`heartbeatMonitor.add: peerId must be a string, got ${typeof peerId}`);
    }
    if (this.#disposed || this.#peers.has(peerId)) return false;
    let detector: Detector;
    try {
      detector = this.#factory(peerId);
    } catch (error) {
      throw new CallbackError('detector', error);
    }
    if (
      typeof detector !== 'object' ||
      detector === null ||
      typeof detector.heartbeat !== 'function' ||
      typeof detector.isAvailable !== 'function'
    ) {
      throw new CallbackError('detector', new TypeError(`it returned ${String(detector)}, not a detector`));
    }
    if (detector.clock !== this.clock) {
      throw new CallbackError(
        'detector',
        new TypeError(
          `the detector for "${peerId}" runs on another clock than the monitor; pass the monitor's clock to it`,
        ),
      );
    }
    this.#peers.set(peerId, { detector, suspected: false, suspectedAt: 0 });
    this.#ticker.start();
    return true;
  }

  /** Stops tracking `peerId`. Returns whether it was tracked. */
  remove(peerId: string): boolean {
    const peer = this.#peers.get(peerId);
    if (peer === undefined) return false;
    if (peer.suspected) this.#suspected--;
    this.#peers.delete(peerId);
    if (this.#peers.size === 0) this.#ticker.stop();
    return true;
  }

  /** Whether `peerId` is tracked. */
  has(peerId: string): boolean {
    return this.#peers.has(peerId);
  }

  /** The tracked peer ids. */
  peers(): string[] {
    return [...this.#peers.keys()];
  }

  /**
   * Records a heartbeat from `peerId`, with its sequence number when the
   * transport carries one (passed to the detector). Returns false when it was
   * ignored: the peer is unknown and `autoAdd` is off, or the monitor is disposed.
   */
  heartbeat(peerId: string, sequence?: number): boolean {
    if (this.#disposed) return false;
    let peer = this.#peers.get(peerId);
    if (peer === undefined) {
      if (!this.autoAdd || typeof peerId !== 'string') {
        this.#ignoredUnknown++;
        droppedCounter.add(1, { reason: 'unknown-peer', monitor: this.name });
        return false;
      }
      this.add(peerId);
      peer = this.#peers.get(peerId)!;
    }
    peer.detector.heartbeat(sequence);
    if (peer.suspected && peer.detector.isAvailable()) {
      peer.suspected = false;
      this.#suspected--;
      transitionsCounter.add(1, { to: 'available', monitor: this.name });
      const hub = this.#onRecover;
      if (hub?.listening) hub.emit({ peerId, suspectedForMs: this.clock.now() - peer.suspectedAt });
    }
    return true;
  }

  /**
   * What the monitor knows about `peerId` now: `'unknown'` when it is not
   * tracked or has not sent a heartbeat yet, else what its detector says at
   * this instant (which may run ahead of the events, emitted at the next check).
   */
  status(peerId: string): PeerStatus {
    const detector = this.#peers.get(peerId)?.detector;
    if (detector === undefined || detector.lastHeartbeatAt === undefined) return 'unknown';
    return detector.isAvailable() ? 'available' : 'suspect';
  }

  /** The suspicion level of `peerId` now, or undefined when it is not tracked. */
  suspicion(peerId: string): number | undefined {
    return this.#peers.get(peerId)?.detector.suspicion();
  }

  /** The detector of `peerId`, or undefined when it is not tracked. */
  detector(peerId: string): Detector | undefined {
    return this.#peers.get(peerId)?.detector;
  }

  /** Counts of this monitor. */
  get stats(): HeartbeatMonitorStats {
    return { peers: this.#peers.size, suspected: this.#suspected, ignoredUnknown: this.#ignoredUnknown };
  }

  /**
   * Evaluates every peer now and emits `onSuspect` for each newly suspected
   * one. The monitor's timer calls it every `checkIntervalMs`.
   */
  check(): void {
    const now = this.clock.now();
    for (const [peerId, peer] of this.#peers) {
      if (peer.suspected) continue;
      const detector = peer.detector;
      const last = detector.lastHeartbeatAt;
      if (last === undefined || detector.isAvailable()) continue;
      peer.suspected = true;
      peer.suspectedAt = now;
      this.#suspected++;
      transitionsCounter.add(1, { to: 'suspect', monitor: this.name });
      const hub = this.#onSuspect;
      if (hub?.listening) hub.emit({ peerId, suspicion: detector.suspicion(), silentMs: now - last });
    }
  }

  /** Whether the evaluation timer is armed (only while peers are tracked). */
  get timerActive(): boolean {
    return this.#ticker.running;
  }

  /** Stops the timer and forgets every peer, detector and listener. Calling it again does nothing. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#ticker.stop();
    this.#peers = new Map();
    this.#suspected = 0;
    this.#onSuspect = undefined;
    this.#onRecover = undefined;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Whether {@link dispose} was called. */
  get disposed(): boolean {
    return this.#disposed;
  }

  #hub<E>(hub: EventHub<E> | undefined, method: string): EventHub<E> {
    if (hub === undefined) throw new MonitorDisposedError(this.name, method);
    return hub;
  }
}

/**
 * Tracks many peers from one timer: `heartbeat(peerId)`, `status(peerId)`,
 * `remove(peerId)`, and the events `onSuspect` and `onRecover`.
 *
 * ```ts
 * const monitor = heartbeatMonitor({ detector: () => phiAccrual(), autoAdd: true });
 * monitor.onSuspect(({ peerId }) => console.warn(`${peerId} suspected`));
 * ```
 */
export function heartbeatMonitor(options: HeartbeatMonitorOptions): HeartbeatMonitor {
  return new HeartbeatMonitor(options);
}
