import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * One heartbeat on the wire.
 *
 * Layout (big-endian), 32 bytes of header, the peer id, then an optional
 * 32-byte HMAC-SHA256 over everything before it:
 *
 * | bytes | field |
 * |---|---|
 * | 0–3 | magic `BWHB` |
 * | 4 | version (1) |
 * | 5 | flags (bit 0: a MAC follows) |
 * | 6 | peer id length in bytes (1–255) |
 * | 7 | reserved (0) |
 * | 8–15 | incarnation (per sender instance: its start time in ms, then 20 random bits; unsigned, ordered) |
 * | 16–23 | sequence number (unsigned, 1 … 2^53 − 1) |
 * | 24–31 | send stamp: the sender's monotonic clock, float64 milliseconds |
 * | 32– | peer id, UTF-8 |
 */
export interface HeartbeatPacket {
  /** Who sent it. */
  readonly peerId: string;
  /**
   * The sender instance, as 16 lowercase hex digits of an unsigned 64-bit
   * number: a restarted sender has a higher one, and receivers drop packets
   * from an incarnation lower than the peer's current one.
   */
  readonly incarnation: string;
  /** Increases by one with every heartbeat of an incarnation, from 1. */
  readonly sequence: number;
  /** The sender's monotonic clock when it sent the packet, in milliseconds. */
  readonly sentAt: number;
}

/** Why a datagram was not accepted as a heartbeat. */
export type DropReason = 'malformed' | 'unauthenticated' | 'replayed' | 'unknown-peer';

/** The result of {@link decodeHeartbeat}. */
export type DecodeResult =
  | { readonly ok: true; readonly packet: HeartbeatPacket; readonly authenticated: boolean }
  | { readonly ok: false; readonly reason: 'malformed' | 'unauthenticated' };

/** A shared HMAC key: a string (UTF-8) or bytes, at least 16 bytes long. */
export type HeartbeatKey = string | Uint8Array;

const MAGIC = 0x42574842; // "BWHB"
const VERSION = 1;
const FLAG_MAC = 1;
const HEADER = 32;
const MAC = 32;
/** The least length, in bytes, of an HMAC key. */
export const MIN_KEY_BYTES = 16;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The key as bytes. */
export function keyBytes(key: HeartbeatKey): Buffer {
  return typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
}

/** Whether `key` is a usable HMAC key. */
export function isValidKey(key: unknown): key is HeartbeatKey {
  if (typeof key === 'string') return Buffer.byteLength(key, 'utf8') >= MIN_KEY_BYTES;
  return key instanceof Uint8Array && key.byteLength >= MIN_KEY_BYTES;
}

function mac(key: Buffer, data: Uint8Array): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/**
 * Encodes a heartbeat; with `key`, appends its HMAC-SHA256.
 * @throws RangeError when a field is out of range.
 */
export function encodeHeartbeat(packet: HeartbeatPacket, key?: HeartbeatKey): Buffer {
  const id = Buffer.from(packet.peerId, 'utf8');
  if (id.length < 1 || id.length > 255) {
    throw new RangeError(`encodeHeartbeat: peerId must be 1 to 255 UTF-8 bytes, got ${id.length}`);
  }
  if (!/^[0-9a-f]{16}$/.test(packet.incarnation)) {
    throw new RangeError(
      `encodeHeartbeat: incarnation must be 16 lowercase hex digits, got "${packet.incarnation}"`,
    );
  }
  if (!Number.isSafeInteger(packet.sequence) || packet.sequence < 1) {
    throw new RangeError(`encodeHeartbeat: sequence must be a safe integer >= 1, got ${packet.sequence}`);
  }
  if (!Number.isFinite(packet.sentAt)) {
    throw new RangeError(`encodeHeartbeat: sentAt must be finite, got ${packet.sentAt}`);
  }
  const body = Buffer.alloc(HEADER + id.length);
  body.writeUInt32BE(MAGIC, 0);
  body.writeUInt8(VERSION, 4);
  body.writeUInt8(key === undefined ? 0 : FLAG_MAC, 5);
  body.writeUInt8(id.length, 6);
  body.write(packet.incarnation, 8, 'hex');
  body.writeBigUInt64BE(BigInt(packet.sequence), 16);
  body.writeDoubleBE(packet.sentAt, 24);
  id.copy(body, HEADER);
  if (key === undefined) return body;
  return Buffer.concat([body, mac(keyBytes(key), body)]);
}

/**
 * Decodes a datagram. With `key`, only a packet carrying a valid HMAC under
 * that key is accepted (`'unauthenticated'` otherwise); without one, a MAC
 * present is not checked. It never throws: anything that is not a well-formed
 * heartbeat is `'malformed'`.
 */
export function decodeHeartbeat(data: Uint8Array, key?: HeartbeatKey): DecodeResult {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < HEADER + 1) return MALFORMED;
  if (buf.readUInt32BE(0) !== MAGIC || buf.readUInt8(4) !== VERSION || buf.readUInt8(7) !== 0)
    return MALFORMED;
  const flags = buf.readUInt8(5);
  if ((flags & ~FLAG_MAC) !== 0) return MALFORMED;
  const idLength = buf.readUInt8(6);
  const hasMac = (flags & FLAG_MAC) !== 0;
  const bodyLength = HEADER + idLength;
  if (idLength === 0 || buf.length !== bodyLength + (hasMac ? MAC : 0)) return MALFORMED;
  const sequence = buf.readBigUInt64BE(16);
  if (sequence < 1n || sequence > BigInt(Number.MAX_SAFE_INTEGER)) return MALFORMED;
  const sentAt = buf.readDoubleBE(24);
  if (!Number.isFinite(sentAt)) return MALFORMED;
  let peerId: string;
  try {
    peerId = utf8.decode(buf.subarray(HEADER, bodyLength));
  } catch {
    return MALFORMED;
  }
  if (key !== undefined) {
    if (!hasMac) return UNAUTHENTICATED;
    const expected = mac(Buffer.isBuffer(key) ? key : keyBytes(key), buf.subarray(0, bodyLength));
    if (!timingSafeEqual(expected, buf.subarray(bodyLength))) return UNAUTHENTICATED;
  }
  return {
    ok: true,
    authenticated: key !== undefined,
    packet: { peerId, incarnation: buf.toString('hex', 8, 16), sequence: Number(sequence), sentAt },
  };
}

const MALFORMED = Object.freeze({ ok: false as const, reason: 'malformed' as const });
const UNAUTHENTICATED = Object.freeze({ ok: false as const, reason: 'unauthenticated' as const });
