import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { type Clock, systemClock, Ticker, wallClockNow } from '@bulwark/clock';
import type { Disposable, Listener } from '@bulwark/core';
import { EventHub, KeyedRegistry, OptionsChecker, optionKeys } from '@bulwark/core/authoring';
import type { Detector } from './detector.ts';
import { checkMonitor, type HeartbeatMonitor } from './monitor.ts';
import {
  type DropReason,
  decodeHeartbeat,
  encodeHeartbeat,
  type HeartbeatKey,
  type HeartbeatPacket,
  isValidKey,
  keyBytes,
} from './packet.ts';
import { droppedCounter } from './telemetry.ts';

const RECEIVER_KEYS = optionKeys<UdpHeartbeatReceiverOptions>({
  monitor: true,
  port: true,
  host: true,
  key: true,
  maxRetiredPeers: true,
});

const SENDER_KEYS = optionKeys<UdpHeartbeatSenderOptions>({
  peerId: true,
  targets: true,
  intervalMs: true,
  key: true,
  clock: true,
  wallClock: true,
});

/** Where a sender sends its heartbeats. */
export interface HeartbeatTarget {
  /** Default: `"127.0.0.1"`. */
  readonly host?: string | undefined;
  readonly port: number;
}

/** Options for {@link udpHeartbeatSender}. */
export interface UdpHeartbeatSenderOptions {
  /** The id this process announces (1 to 255 UTF-8 bytes). Required. */
  readonly peerId: string;
  /** The receivers to send to. Required (at least one). */
  readonly targets: readonly HeartbeatTarget[];
  /** Milliseconds between heartbeats: a finite number > 0. Default: 1000. */
  readonly intervalMs?: number | undefined;
  /** A shared HMAC-SHA256 key (at least 16 bytes); every packet then carries a MAC. Default: none. */
  readonly key?: HeartbeatKey | undefined;
  /** The clock of the send timer and of the send stamps. Default: the system clock. */
  readonly clock?: Clock | undefined;
  /**
   * Reads the wall clock (milliseconds since the Unix epoch), once, when the
   * sender is created, to order its incarnation after those of earlier runs.
   * Default: `wallClockNow` from @bulwark/clock.
   */
  readonly wallClock?: (() => number) | undefined;
}

/** The defaults of {@link udpHeartbeatSender}. */
export const UDP_SENDER_DEFAULTS = Object.freeze({ intervalMs: 1000, host: '127.0.0.1' });

/** Counts of a sender. */
export interface UdpSenderStats {
  /** Datagrams handed to the socket. */
  readonly sent: number;
  /** Sends the socket reported as failed. */
  readonly errors: number;
}

/** Bits of the incarnation taken by the sender's start time (milliseconds; they last until the year 2527). */
const START_BITS = 44n;
/** Low bits of the incarnation that are random, to tell apart senders started in the same millisecond. */
const RANDOM_BITS = 20n;

/**
 * A new incarnation: the start time in milliseconds in the high 44 bits and 20
 * random bits below, as 16 hex digits. Receivers accept only incarnations that
 * do not decrease, so a sender started later must get a higher one. The wall
 * clock is the one reading that survives a restart, and it is used here only
 * to order the runs of one sender, never to measure a duration. If it was
 * stepped back across a restart by more than the previous run lasted, the new
 * incarnation is lower and receivers drop its heartbeats (counted in
 * `staleIncarnation`) until the peer is removed from and re-added to their
 * monitors, or the sender restarts after its clock has caught up.
 */
function newIncarnation(startMs: number): string {
  const ms = Number.isFinite(startMs) && startMs > 0 ? BigInt(Math.trunc(startMs)) : 0n;
  const high = ms & ((1n << START_BITS) - 1n);
  const low = randomBytes(4).readUInt32BE(0) & Number((1n << RANDOM_BITS) - 1n);
  return ((high << RANDOM_BITS) | BigInt(low)).toString(16).padStart(16, '0');
}

function checkTarget(check: OptionsChecker, target: unknown, i: number): void {
  const t = target as HeartbeatTarget | undefined;
  check.expect(typeof t === 'object' && t !== null, `targets[${i}]`, target, 'an object { host?, port }');
  if (typeof t !== 'object' || t === null) return;
  check.number(`targets[${i}].port`, t.port, { integer: true, min: 1, max: 65535, required: true });
  check.string(`targets[${i}].host`, t.host);
}

/**
 * Sends a heartbeat to every target now and then every `intervalMs`, from
 * one timer on the injected clock. See {@link udpHeartbeatSender}.
 */
export class UdpHeartbeatSender implements Disposable {
  readonly peerId: string;
  readonly intervalMs: number;
  readonly clock: Clock;
  /**
   * This sender instance's incarnation, as 16 hex digits: its start time on the
   * wall clock (high bits) and random low bits, so a restarted sender has a higher one.
   */
  readonly incarnation: string;
  readonly #targets: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  readonly #key: Buffer | undefined;
  readonly #socket4: Socket | undefined;
  readonly #socket6: Socket | undefined;
  #sequence = 0;
  readonly #ticker: Ticker;
  #disposed = false;
  #sent = 0;
  #errors = 0;

  constructor(options: UdpHeartbeatSenderOptions) {
    const check = new OptionsChecker('udpHeartbeatSender()');
    check.knownKeys(options, SENDER_KEYS);
    const peerId = options?.peerId;
    check.expect(
      typeof peerId === 'string' &&
        Buffer.byteLength(peerId, 'utf8') >= 1 &&
        Buffer.byteLength(peerId) <= 255,
      'peerId',
      peerId,
      'a string of 1 to 255 UTF-8 bytes',
    );
    const targets = options?.targets;
    const targetsOk = Array.isArray(targets) && targets.length > 0;
    check.expect(targetsOk, 'targets', targets, 'a non-empty array of { host?, port }');
    if (targetsOk) for (const [i, t] of targets.entries()) checkTarget(check, t, i);
    check.number('intervalMs', options?.intervalMs, { above: 0 });
    check.expect(
      options?.key === undefined || isValidKey(options.key),
      'key',
      options?.key === undefined ? undefined : '<redacted>',
      'a string or Uint8Array of at least 16 bytes',
    );
    check.clock('clock', options?.clock, true);
    check.func('wallClock', options?.wallClock);
    check.done();
    this.peerId = peerId;
    this.intervalMs = options.intervalMs ?? UDP_SENDER_DEFAULTS.intervalMs;
    this.clock = options.clock ?? systemClock;
    this.#key = options.key === undefined ? undefined : keyBytes(options.key);
    this.#targets = targets.map((t) => ({ host: t.host ?? UDP_SENDER_DEFAULTS.host, port: t.port }));
    this.incarnation = newIncarnation((options.wallClock ?? wallClockNow)());
    const onError = (): void => {
      this.#errors++;
    };
    if (this.#targets.some((t) => !isIPv6(t.host))) {
      this.#socket4 = createSocket('udp4').on('error', onError);
      this.#socket4.unref();
    }
    if (this.#targets.some((t) => isIPv6(t.host))) {
      this.#socket6 = createSocket('udp6').on('error', onError);
      this.#socket6.unref();
    }
    // Keeps the cadence; after a stall (a paused process), sends once and resumes from then.
    this.#ticker = new Ticker(() => this.sendNow(), {
      intervalMs: this.intervalMs,
      clock: this.clock,
    }).start();
  }

  /** Counts of this sender. */
  get stats(): UdpSenderStats {
    return { sent: this.#sent, errors: this.#errors };
  }

  /** The sequence number of the last heartbeat sent (0 before the first). */
  get sequence(): number {
    return this.#sequence;
  }

  /** Sends one heartbeat to every target now, outside the schedule. */
  sendNow(): void {
    if (this.#disposed) return;
    const packet: HeartbeatPacket = {
      peerId: this.peerId,
      incarnation: this.incarnation,
      sequence: ++this.#sequence,
      sentAt: this.clock.now(),
    };
    const data = encodeHeartbeat(packet, this.#key);
    for (const target of this.#targets) {
      const socket = isIPv6(target.host) ? this.#socket6! : this.#socket4!;
      this.#sent++;
      socket.send(data, target.port, target.host, (error) => {
        if (error) this.#errors++;
      });
    }
  }

  /** Stops sending and closes the sockets. Calling it again does nothing. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#ticker.stop();
    this.#socket4?.close();
    this.#socket6?.close();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * Sends UDP heartbeats (peer id, incarnation, sequence number, monotonic send
 * stamp, and an HMAC-SHA256 when `key` is given) to every target, every
 * `intervalMs`, starting now. Its timer and sockets do not keep the process
 * alive; `dispose()` stops it.
 */
export function udpHeartbeatSender(options: UdpHeartbeatSenderOptions): UdpHeartbeatSender {
  return new UdpHeartbeatSender(options);
}

/** Options for {@link udpHeartbeatReceiver}. */
export interface UdpHeartbeatReceiverOptions {
  /** The monitor accepted heartbeats are fed to. Required. */
  readonly monitor: HeartbeatMonitor;
  /** The port to listen on (0: any free port). Default: 0. */
  readonly port?: number | undefined;
  /** The address to listen on. Default: `"127.0.0.1"`. */
  readonly host?: string | undefined;
  /**
   * The shared HMAC-SHA256 key (at least 16 bytes). With it, only packets with
   * a valid MAC are accepted. Default: none (packets are not authenticated).
   */
  readonly key?: HeartbeatKey | undefined;
  /**
   * How many peers that the monitor stopped tracking keep their replay floor
   * (the highest incarnation and sequence number accepted), so that their
   * recorded packets are still dropped if they are added again: an integer
   * >= 0. The floors of the peers removed longest ago are forgotten first.
   * Each takes about 100 bytes plus the peer id. Default: 1024.
   */
  readonly maxRetiredPeers?: number | undefined;
}

/** The defaults of {@link udpHeartbeatReceiver}. */
export const UDP_RECEIVER_DEFAULTS = Object.freeze({ port: 0, host: '127.0.0.1', maxRetiredPeers: 1024 });

/** Counts of a receiver. */
export interface UdpReceiverStats {
  /** Datagrams received. */
  readonly received: number;
  /** Heartbeats passed to the monitor and accepted by it. */
  readonly accepted: number;
  /** Datagrams that were not well-formed heartbeats. */
  readonly malformed: number;
  /** Heartbeats without a valid MAC (only with a key). */
  readonly unauthenticated: number;
  /** Heartbeats whose sequence did not increase, or from an incarnation lower than the peer's current one. */
  readonly replayed: number;
  /**
   * Of `replayed`, those from an incarnation lower than the peer's current one:
   * replays of an earlier run of the sender, or a sender restarted after its
   * wall clock was stepped back.
   */
  readonly staleIncarnation: number;
  /** Heartbeats from peers the monitor does not track (with `autoAdd` off). */
  readonly unknownPeer: number;
  /** Peers the receiver keeps replay state for; only peers the monitor tracks. */
  readonly replayStates: number;
  /** Peers the monitor no longer tracks whose replay floor is kept (at most `maxRetiredPeers`). */
  readonly retiredFloors: number;
}

/** Payload of `onDrop`. */
export interface HeartbeatDropEvent {
  readonly reason: DropReason;
  /** The sender's address and port. */
  readonly from: { readonly address: string; readonly port: number };
  /** The peer id, when the packet could be decoded. */
  readonly peerId: string | undefined;
}

/** Payload of `onHeartbeat`. */
export interface HeartbeatReceivedEvent {
  readonly packet: HeartbeatPacket;
  /** The receiver's clock (the monitor's) when it arrived. */
  readonly receivedAt: number;
}

/** What must be above a peer's next packet: it outlives the peer's removal from the monitor. */
interface ReplayFloor {
  /**
   * The highest incarnation accepted, as 16 lowercase hex digits (they sort as
   * the numbers do); `''` after `resetReplayFloor()`, below every incarnation.
   */
  incarnation: string;
  /** The highest sequence number accepted from that incarnation. */
  sequence: number;
  /** Added to the packets' sequence numbers of this incarnation before they go to the monitor. */
  offset: number;
  /** The last sequence number passed to the monitor (`offset + sequence`). */
  passed: number;
}

interface ReplayState extends ReplayFloor {
  /** The monitor's detector of the peer when the state was made: a new one means the peer was removed and re-added. */
  detector: Detector;
}

/** The least size of the replay map at which it is swept of peers the monitor no longer tracks. */
const MIN_SWEEP_AT = 16;

/**
 * Receives UDP heartbeats and feeds them to a monitor. See {@link udpHeartbeatReceiver}.
 */
export class UdpHeartbeatReceiver implements Disposable {
  readonly monitor: HeartbeatMonitor;
  readonly host: string;
  readonly #port: number;
  readonly #key: Buffer | undefined;
  #socket: Socket;
  readonly #replay = new Map<string, ReplayState>();
  /** Floors of peers the monitor stopped tracking, oldest retirement first, at most maxRetiredPeers. */
  readonly #retired: KeyedRegistry<string, ReplayFloor>;
  readonly #maxRetired: number;
  #sweepAt = MIN_SWEEP_AT;
  readonly #onDrop = new EventHub<HeartbeatDropEvent>('udpHeartbeatReceiver.onDrop');
  readonly #onHeartbeat = new EventHub<HeartbeatReceivedEvent>('udpHeartbeatReceiver.onHeartbeat');
  #listening: Promise<{ address: string; port: number }> | undefined;
  #closed = false;
  #received = 0;
  #accepted = 0;
  #malformed = 0;
  #unauthenticated = 0;
  #replayed = 0;
  #staleIncarnation = 0;
  #unknownPeer = 0;

  constructor(options: UdpHeartbeatReceiverOptions) {
    const check = new OptionsChecker('udpHeartbeatReceiver()');
    check.knownKeys(options, RECEIVER_KEYS);
    const monitor = options?.monitor;
    checkMonitor(check, monitor);
    check.number('port', options?.port, { integer: true, min: 0, max: 65535 });
    check.string('host', options?.host);
    check.expect(
      options?.key === undefined || isValidKey(options.key),
      'key',
      options?.key === undefined ? undefined : '<redacted>',
      'a string or Uint8Array of at least 16 bytes',
    );
    check.number('maxRetiredPeers', options?.maxRetiredPeers, { integer: true, min: 0 });
    check.done();
    this.monitor = monitor;
    this.#maxRetired = options.maxRetiredPeers ?? UDP_RECEIVER_DEFAULTS.maxRetiredPeers;
    // With maxRetiredPeers 0 nothing is ever retired (see #retire), so the bound of 1 is never reached.
    this.#retired = new KeyedRegistry({ maxKeys: Math.max(1, this.#maxRetired) });
    this.host = options.host ?? UDP_RECEIVER_DEFAULTS.host;
    this.#port = options.port ?? UDP_RECEIVER_DEFAULTS.port;
    this.#key = options.key === undefined ? undefined : keyBytes(options.key);
    this.#socket = this.#createSocket();
  }

  /**
   * Binds the socket; resolves with the address and port it listens on. When
   * binding fails (`EADDRINUSE`, say) it rejects with the socket's error and
   * closes that socket, and a later call binds a fresh one.
   */
  listen(): Promise<{ address: string; port: number }> {
    if (this.#listening === undefined) {
      const attempt = this.#bind();
      this.#listening = attempt;
      // Forget a failed attempt so the next call retries; the caller still sees the rejection.
      attempt.catch(() => {
        if (this.#listening === attempt) this.#listening = undefined;
      });
    }
    return this.#listening;
  }

  /** Counts of this receiver. */
  get stats(): UdpReceiverStats {
    return {
      received: this.#received,
      accepted: this.#accepted,
      malformed: this.#malformed,
      unauthenticated: this.#unauthenticated,
      replayed: this.#replayed,
      staleIncarnation: this.#staleIncarnation,
      unknownPeer: this.#unknownPeer,
      replayStates: this.#sweep(),
      retiredFloors: this.#retired.size,
    };
  }

  /** Called for every datagram dropped, with the reason. */
  onDrop(listener: Listener<HeartbeatDropEvent>): Disposable {
    return this.#onDrop.subscribe(listener);
  }

  /** Called for every heartbeat the monitor accepted. */
  onHeartbeat(listener: Listener<HeartbeatReceivedEvent>): Disposable {
    return this.#onHeartbeat.subscribe(listener);
  }

  /**
   * Handles one datagram as if it had arrived on the socket (the socket calls
   * it; tests and other transports may too). Returns what became of it.
   */
  receive(data: Uint8Array, from: { address: string; port: number }): DropReason | 'accepted' {
    return this.#receive(data, from);
  }

  /**
   * Forgets the replay floor of `peerId`, so that its next packet is accepted
   * whatever its incarnation. It is for a sender whose wall clock was stepped
   * back across a restart (its heartbeats are dropped as `staleIncarnation`);
   * removing and re-adding the peer does not do it, because the floor outlives
   * the removal. Until the sender sends again, a recording of any of its
   * packets would be accepted once. Returns whether there was a floor.
   */
  resetReplayFloor(peerId: string): boolean {
    const retired = this.#retired.delete(peerId);
    const state = this.#replay.get(peerId);
    if (state === undefined) return retired;
    // Keep the sequence numbers the monitor sees increasing; only the floor goes.
    state.incarnation = '';
    state.sequence = 0;
    return true;
  }

  /** Closes the socket. Calling it again does nothing. */
  dispose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#replay.clear();
    this.#retired.clear();
    try {
      this.#socket.close();
    } catch {
      // already closed by the platform
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #createSocket(): Socket {
    const socket = createSocket(isIPv6(this.host) ? 'udp6' : 'udp4');
    // A receive error is reported by the socket; it must never crash the process.
    socket.on('error', () => {});
    socket.on('message', (data, rinfo) => {
      try {
        this.#receive(data, { address: rinfo.address, port: rinfo.port });
      } catch {
        this.#drop('malformed', { address: rinfo.address, port: rinfo.port }, undefined);
      }
    });
    return socket;
  }

  #bind(): Promise<{ address: string; port: number }> {
    return new Promise((resolve, reject) => {
      const socket = this.#socket;
      const onError = (error: Error): void => {
        // A socket whose bind failed cannot bind again: close it and make a
        // fresh one for the next listen() (unless the receiver is disposed).
        socket.off('error', onError);
        try {
          socket.close();
        } catch {
          // already closed
        }
        if (!this.#closed && this.#socket === socket) this.#socket = this.#createSocket();
        reject(error);
      };
      socket.once('error', onError);
      try {
        socket.bind(this.#port, this.host, () => {
          socket.off('error', onError);
          const address = socket.address();
          resolve({ address: address.address, port: address.port });
        });
      } catch (error) {
        onError(error as Error);
      }
    });
  }

  /**
   * Retires the replay state of peers the monitor no longer tracks, or tracks
   * anew since the state was made, and returns how many peers keep some.
   */
  #sweep(): number {
    for (const [peerId, state] of this.#replay) {
      if (this.monitor.detector(peerId) !== state.detector) this.#retire(peerId, state);
    }
    this.#sweepAt = Math.max(MIN_SWEEP_AT, 2 * this.#replay.size);
    return this.#replay.size;
  }

  /** Moves a peer's state to the bounded set of retired floors. */
  #retire(peerId: string, state: ReplayState): void {
    this.#replay.delete(peerId);
    if (this.#maxRetired === 0) return;
    this.#retired.set(peerId, {
      incarnation: state.incarnation,
      sequence: state.sequence,
      offset: state.offset,
      passed: state.passed,
    });
  }

  #receive(data: Uint8Array, from: { address: string; port: number }): DropReason | 'accepted' {
    this.#received++;
    const decoded = decodeHeartbeat(data, this.#key);
    if (!decoded.ok) return this.#drop(decoded.reason, from, undefined);
    const packet = decoded.packet;
    const peerId = packet.peerId;
    const monitor = this.monitor;
    const tracked = monitor.detector(peerId);
    const state = this.#replay.get(peerId);
    // State made while the monitor tracked the peer earlier (it has been removed,
    // and maybe re-added since) is retired: its floor still holds.
    if (state !== undefined && state.detector !== tracked) this.#retire(peerId, state);
    if (tracked === undefined && !monitor.autoAdd) {
      monitor.heartbeat(peerId); // counted and ignored by the monitor
      this.#unknownPeer++;
      if (this.#onDrop.listening) this.#onDrop.emit({ reason: 'unknown-peer', from, peerId });
      return 'unknown-peer';
    }
    const floor: ReplayFloor | undefined =
      state !== undefined && state.detector === tracked ? state : this.#retired.peek(peerId);
    // Incarnations are 16 lowercase hex digits, so comparing the strings compares the numbers.
    let offset = 0;
    if (floor !== undefined) {
      if (packet.incarnation < floor.incarnation) {
        this.#staleIncarnation++;
        return this.#drop('replayed', from, peerId);
      }
      if (packet.incarnation === floor.incarnation) {
        if (packet.sequence <= floor.sequence) return this.#drop('replayed', from, peerId);
        offset = floor.offset;
      } else {
        // A restarted sender counts from 1 again; the monitor's detectors ignore sequence numbers
        // that do not increase, so this incarnation's numbers follow the last one passed.
        offset = floor.passed;
      }
    }
    const passed = offset + packet.sequence;
    if (!monitor.heartbeat(peerId, passed)) {
      this.#unknownPeer++;
      return 'unknown-peer';
    }
    const detector = monitor.detector(peerId);
    if (detector !== undefined) {
      if (floor === state && state !== undefined && state.detector === detector) {
        state.incarnation = packet.incarnation;
        state.sequence = packet.sequence;
        state.offset = offset;
        state.passed = passed;
      } else {
        this.#retired.delete(peerId);
        this.#replay.set(peerId, {
          incarnation: packet.incarnation,
          sequence: packet.sequence,
          offset,
          passed,
          detector,
        });
        if (this.#replay.size >= this.#sweepAt) this.#sweep();
      }
    }
    this.#accepted++;
    if (this.#onHeartbeat.listening) this.#onHeartbeat.emit({ packet, receivedAt: monitor.clock.now() });
    return 'accepted';
  }

  #drop(
    reason: 'malformed' | 'unauthenticated' | 'replayed',
    from: { address: string; port: number },
    peerId: string | undefined,
  ): DropReason {
    if (reason === 'malformed') this.#malformed++;
    else if (reason === 'unauthenticated') this.#unauthenticated++;
    else this.#replayed++;
    droppedCounter.add(1, { reason });
    if (this.#onDrop.listening) this.#onDrop.emit({ reason, from, peerId });
    return reason;
  }
}

/**
 * Receives UDP heartbeats and feeds the accepted ones to `monitor`. A datagram
 * that is malformed, fails authentication (with `key`), or replays an old
 * sequence number or an incarnation lower than the peer's current one (a
 * sender's incarnation grows with each restart) is dropped and counted (`stats`, `onDrop`,
 * and the `bulwark.failure_detector.dropped` counter); nothing a peer sends
 * can make it throw. A peer's replay floor outlives its removal from the
 * monitor (for the last `maxRetiredPeers` removed peers), so recordings of a
 * removed peer are still dropped after it is added again. The sequence
 * numbers passed to the monitor keep increasing across the sender's restarts.
 * Call `listen()` to bind, `dispose()` to close.
 */
export function udpHeartbeatReceiver(options: UdpHeartbeatReceiverOptions): UdpHeartbeatReceiver {
  return new UdpHeartbeatReceiver(options);
}
