import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { type Clock, systemClock, type Timer } from '@bulwark/clock';
import { type Disposable, EventHub, type Listener, OptionsChecker } from '@bulwark/core';
import type { HeartbeatMonitor } from './monitor.ts';
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

/** Where a sender sends its heartbeats. */
export interface HeartbeatTarget {
  /** Default: `"127.0.0.1"`. */
  readonly host?: string;
  readonly port: number;
}

/** Options for {@link udpHeartbeatSender}. */
export interface UdpHeartbeatSenderOptions {
  /** The id this process announces (1 to 255 UTF-8 bytes). Required. */
  readonly peerId: string;
  /** The receivers to send to. Required (at least one). */
  readonly targets: readonly HeartbeatTarget[];
  /** Milliseconds between heartbeats: a finite number > 0. Default: 1000. */
  readonly intervalMs?: number;
  /** A shared HMAC-SHA256 key (at least 16 bytes); every packet then carries a MAC. Default: none. */
  readonly key?: HeartbeatKey;
  /** The clock of the send timer and of the send stamps. Default: the system clock. */
  readonly clock?: Clock;
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

function checkTarget(check: OptionsChecker, target: unknown, i: number): void {
  const t = target as HeartbeatTarget | undefined;
  check.expect(typeof t === 'object' && t !== null, `targets[${i}]`, target, 'an object { host?, port }');
  if (typeof t !== 'object' || t === null) return;
  check.number(`targets[${i}].port`, t.port, { integer: true, min: 1, max: 65535, required: true });
  check.expect(t.host === undefined || typeof t.host === 'string', `targets[${i}].host`, t.host, 'a string');
}

/**
 * Sends a heartbeat to every target now and then every `intervalMs`, from
 * one timer on the injected clock. See {@link udpHeartbeatSender}.
 */
export class UdpHeartbeatSender implements Disposable {
  readonly peerId: string;
  readonly intervalMs: number;
  readonly clock: Clock;
  /** This sender instance's incarnation, as 16 hex digits. */
  readonly incarnation: string;
  readonly #targets: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  readonly #key: Buffer | undefined;
  readonly #socket4: Socket | undefined;
  readonly #socket6: Socket | undefined;
  #sequence = 0;
  #nextAt: number;
  #timer: Timer | undefined;
  #disposed = false;
  #sent = 0;
  #errors = 0;

  constructor(options: UdpHeartbeatSenderOptions) {
    const check = new OptionsChecker('udpHeartbeatSender()');
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
    check.done();
    this.peerId = peerId;
    this.intervalMs = options.intervalMs ?? UDP_SENDER_DEFAULTS.intervalMs;
    this.clock = options.clock ?? systemClock;
    this.#key = options.key === undefined ? undefined : keyBytes(options.key);
    this.#targets = targets.map((t) => ({ host: t.host ?? UDP_SENDER_DEFAULTS.host, port: t.port }));
    this.incarnation = randomBytes(8).toString('hex');
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
    this.#nextAt = this.clock.now();
    this.#tick();
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
    this.#timer?.clear();
    this.#timer = undefined;
    this.#socket4?.close();
    this.#socket6?.close();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  readonly #tick = (): void => {
    this.#timer = undefined;
    if (this.#disposed) return;
    this.sendNow();
    const now = this.clock.now();
    // Keep the cadence; after a stall (a paused process), send once and resume from now.
    this.#nextAt += this.intervalMs;
    if (this.#nextAt <= now) this.#nextAt = now + this.intervalMs;
    this.#timer = this.clock.setTimeout(this.#tick, this.#nextAt - now, { unref: true });
  };
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
  readonly port?: number;
  /** The address to listen on. Default: `"127.0.0.1"`. */
  readonly host?: string;
  /**
   * The shared HMAC-SHA256 key (at least 16 bytes). With it, only packets with
   * a valid MAC are accepted. Default: none (packets are not authenticated).
   */
  readonly key?: HeartbeatKey;
  /** How many past incarnations per peer are remembered to reject their replays: an integer >= 0. Default: 8. */
  readonly retiredIncarnations?: number;
}

/** The defaults of {@link udpHeartbeatReceiver}. */
export const UDP_RECEIVER_DEFAULTS = Object.freeze({ port: 0, host: '127.0.0.1', retiredIncarnations: 8 });

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
  /** Heartbeats whose sequence did not increase, or from a retired incarnation. */
  readonly replayed: number;
  /** Heartbeats from peers the monitor does not track (with `autoAdd` off). */
  readonly unknownPeer: number;
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

interface ReplayState {
  incarnation: string;
  sequence: number;
  retired: string[];
}

/**
 * Receives UDP heartbeats and feeds them to a monitor. See {@link udpHeartbeatReceiver}.
 */
export class UdpHeartbeatReceiver implements Disposable {
  readonly monitor: HeartbeatMonitor;
  readonly host: string;
  readonly retiredIncarnations: number;
  readonly #port: number;
  readonly #key: Buffer | undefined;
  readonly #socket: Socket;
  readonly #replay = new Map<string, ReplayState>();
  readonly #onDrop = new EventHub<HeartbeatDropEvent>('udpHeartbeatReceiver.onDrop');
  readonly #onHeartbeat = new EventHub<HeartbeatReceivedEvent>('udpHeartbeatReceiver.onHeartbeat');
  #listening: Promise<{ address: string; port: number }> | undefined;
  #closed = false;
  #received = 0;
  #accepted = 0;
  #malformed = 0;
  #unauthenticated = 0;
  #replayed = 0;
  #unknownPeer = 0;

  constructor(options: UdpHeartbeatReceiverOptions) {
    const check = new OptionsChecker('udpHeartbeatReceiver()');
    const monitor = options?.monitor;
    check.expect(
      typeof monitor === 'object' && monitor !== null && typeof monitor.heartbeat === 'function',
      'monitor',
      monitor,
      'a heartbeat monitor',
    );
    check.number('port', options?.port, { integer: true, min: 0, max: 65535 });
    check.expect(
      options?.host === undefined || typeof options.host === 'string',
      'host',
      options?.host,
      'a string',
    );
    check.expect(
      options?.key === undefined || isValidKey(options.key),
      'key',
      options?.key === undefined ? undefined : '<redacted>',
      'a string or Uint8Array of at least 16 bytes',
    );
    check.number('retiredIncarnations', options?.retiredIncarnations, { integer: true, min: 0 });
    check.done();
    this.monitor = monitor;
    this.host = options.host ?? UDP_RECEIVER_DEFAULTS.host;
    this.#port = options.port ?? UDP_RECEIVER_DEFAULTS.port;
    this.retiredIncarnations = options.retiredIncarnations ?? UDP_RECEIVER_DEFAULTS.retiredIncarnations;
    this.#key = options.key === undefined ? undefined : keyBytes(options.key);
    this.#socket = createSocket(isIPv6(this.host) ? 'udp6' : 'udp4');
    // A receive error is reported by the socket; it must never crash the process.
    this.#socket.on('error', () => {});
    this.#socket.on('message', (data, rinfo) => {
      try {
        this.#receive(data, { address: rinfo.address, port: rinfo.port });
      } catch {
        this.#drop('malformed', { address: rinfo.address, port: rinfo.port }, undefined);
      }
    });
  }

  /** Binds the socket; resolves with the address and port it listens on. */
  listen(): Promise<{ address: string; port: number }> {
    this.#listening ??= new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.#socket.once('error', onError);
      this.#socket.bind(this.#port, this.host, () => {
        this.#socket.off('error', onError);
        const address = this.#socket.address();
        resolve({ address: address.address, port: address.port });
      });
    });
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
      unknownPeer: this.#unknownPeer,
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

  /** Closes the socket. Calling it again does nothing. */
  dispose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#replay.clear();
    try {
      this.#socket.close();
    } catch {
      // already closed by the platform
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #receive(data: Uint8Array, from: { address: string; port: number }): DropReason | 'accepted' {
    this.#received++;
    const decoded = decodeHeartbeat(data, this.#key);
    if (!decoded.ok) return this.#drop(decoded.reason, from, undefined);
    const packet = decoded.packet;
    const peerId = packet.peerId;
    const monitor = this.monitor;
    if (!monitor.has(peerId) && !monitor.autoAdd) {
      monitor.heartbeat(peerId); // counted and ignored by the monitor
      this.#unknownPeer++;
      if (this.#onDrop.listening) this.#onDrop.emit({ reason: 'unknown-peer', from, peerId });
      return 'unknown-peer';
    }
    const state = this.#replay.get(peerId);
    if (state === undefined) {
      this.#replay.set(peerId, { incarnation: packet.incarnation, sequence: packet.sequence, retired: [] });
    } else if (state.incarnation === packet.incarnation) {
      if (packet.sequence <= state.sequence) return this.#drop('replayed', from, peerId);
      state.sequence = packet.sequence;
    } else {
      if (state.retired.includes(packet.incarnation)) return this.#drop('replayed', from, peerId);
      if (this.retiredIncarnations > 0) {
        state.retired.push(state.incarnation);
        if (state.retired.length > this.retiredIncarnations) state.retired.shift();
      }
      state.incarnation = packet.incarnation;
      state.sequence = packet.sequence;
    }
    if (!monitor.heartbeat(peerId, packet.sequence)) {
      this.#unknownPeer++;
      return 'unknown-peer';
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
 * sequence number or incarnation is dropped and counted (`stats`, `onDrop`,
 * and the `bulwark.failure_detector.dropped` counter); nothing a peer sends
 * can make it throw. Call `listen()` to bind, `dispose()` to close.
 */
export function udpHeartbeatReceiver(options: UdpHeartbeatReceiverOptions): UdpHeartbeatReceiver {
  return new UdpHeartbeatReceiver(options);
}
