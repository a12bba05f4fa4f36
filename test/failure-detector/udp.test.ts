// The heartbeat packet codec, and udpHeartbeatReceiver with datagrams handed to
// receive(). No socket is opened here: no receiver is bound (listen() is never
// called), and an unbound node:dgram socket holds no OS socket until it binds or
// sends. Real UDP on 127.0.0.1 is in test/e2e/failure-detector-udp.test.ts.
import { VirtualClock } from '@bulwark/clock';
import {
  decodeHeartbeat,
  encodeHeartbeat,
  fixedTimeout,
  type HeartbeatDropEvent,
  type HeartbeatPacket,
  heartbeatMonitor,
  udpHeartbeatReceiver,
} from '@bulwark/failure-detector';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';

const KEY = 'a shared secret of 32 bytes.....';
const OTHER_KEY = 'another secret of 32 bytes......';
const FROM = { address: '127.0.0.1', port: 40000 };

function packet(overrides: Partial<HeartbeatPacket> = {}): HeartbeatPacket {
  return { peerId: 'node-a', incarnation: '0123456789abcdef', sequence: 1, sentAt: 12.5, ...overrides };
}

describe('heartbeat packets', () => {
  it('round-trips every field, with and without a MAC', () => {
    const p = packet({ peerId: 'nœud-é', sequence: Number.MAX_SAFE_INTEGER, sentAt: 123456.789 });
    const plain = decodeHeartbeat(encodeHeartbeat(p));
    expect(plain).toEqual({ ok: true, authenticated: false, packet: p });
    const signed = encodeHeartbeat(p, KEY);
    expect(signed.length).toBe(32 + Buffer.byteLength('nœud-é') + 32);
    expect(decodeHeartbeat(signed, Buffer.from(KEY))).toEqual({ ok: true, authenticated: true, packet: p });
  });

  it('calls anything that is not a well-formed heartbeat malformed', () => {
    const good = encodeHeartbeat(packet());
    const variants: Buffer[] = [
      Buffer.alloc(0),
      good.subarray(0, 20),
      good.subarray(0, good.length - 1),
      Buffer.concat([good, Buffer.from([0])]),
    ];
    const mutate = (offset: number, value: number) => {
      const copy = Buffer.from(good);
      copy[offset] = value;
      return copy;
    };
    variants.push(mutate(0, 0x41)); // magic
    variants.push(mutate(4, 2)); // version
    variants.push(mutate(5, 4)); // unknown flag
    variants.push(mutate(7, 1)); // reserved
    const zeroSeq = Buffer.from(good);
    zeroSeq.writeBigUInt64BE(0n, 16);
    variants.push(zeroSeq);
    const hugeSeq = Buffer.from(good);
    hugeSeq.writeBigUInt64BE(2n ** 60n, 16);
    variants.push(hugeSeq);
    const nanStamp = Buffer.from(good);
    nanStamp.writeDoubleBE(Number.NaN, 24);
    variants.push(nanStamp);
    variants.push(mutate(32, 0xff)); // invalid UTF-8 in the peer id
    for (const v of variants) expect(decodeHeartbeat(v)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('calls a packet unauthenticated when a key is expected and the MAC is missing or wrong', () => {
    const key = Buffer.from(KEY);
    expect(decodeHeartbeat(encodeHeartbeat(packet()), key)).toMatchObject({ reason: 'unauthenticated' });
    expect(decodeHeartbeat(encodeHeartbeat(packet(), OTHER_KEY), key)).toMatchObject({
      reason: 'unauthenticated',
    });
    const tampered = encodeHeartbeat(packet(), KEY);
    tampered[20] = (tampered[20] ?? 0) ^ 1; // the sequence number
    expect(decodeHeartbeat(tampered, key)).toMatchObject({ reason: 'unauthenticated' });
  });

  it('refuses to encode fields out of range', () => {
    expect(() => encodeHeartbeat(packet({ peerId: '' }))).toThrow(RangeError);
    expect(() => encodeHeartbeat(packet({ peerId: 'x'.repeat(256) }))).toThrow(/1 to 255/);
    expect(() => encodeHeartbeat(packet({ sequence: 0 }))).toThrow(/sequence/);
    expect(() => encodeHeartbeat(packet({ incarnation: 'xyz' }))).toThrow(/incarnation/);
    expect(() => encodeHeartbeat(packet({ sentAt: Number.POSITIVE_INFINITY }))).toThrow(/sentAt/);
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), (bytes, keyed) => {
        const result = decodeHeartbeat(bytes, keyed ? Buffer.from(KEY) : undefined);
        expect(result.ok === false || result.packet.peerId.length > 0).toBe(true);
      }),
    );
  });
});

describe('udpHeartbeatReceiver (datagrams handed to receive())', () => {
  const open: Array<{ dispose(): void }> = [];
  afterEach(() => {
    for (const o of open.splice(0)) o.dispose();
  });

  function setup(options: { key?: string; autoAdd?: boolean; retiredIncarnations?: number } = {}) {
    const clock = new VirtualClock();
    const monitor = heartbeatMonitor({
      clock,
      peers: ['node-a'],
      autoAdd: options.autoAdd ?? false,
      detector: () => fixedTimeout({ clock, timeoutMs: 1000 }),
    });
    const receiver = udpHeartbeatReceiver({
      monitor,
      key: options.key,
      retiredIncarnations: options.retiredIncarnations,
    });
    open.push(receiver, monitor);
    const drops: HeartbeatDropEvent[] = [];
    receiver.onDrop((e) => drops.push(e));
    return { clock, monitor, receiver, drops };
  }

  it('feeds authenticated heartbeats to the monitor', () => {
    const { monitor, receiver } = setup({ key: KEY });
    const seen: number[] = [];
    receiver.onHeartbeat(({ packet: p }) => seen.push(p.sequence));
    expect(receiver.receive(encodeHeartbeat(packet({ sequence: 1 }), KEY), FROM)).toBe('accepted');
    expect(receiver.receive(encodeHeartbeat(packet({ sequence: 2 }), KEY), FROM)).toBe('accepted');
    expect(monitor.status('node-a')).toBe('available');
    expect(seen).toEqual([1, 2]);
    expect(receiver.stats).toMatchObject({ received: 2, accepted: 2 });
  });

  it('drops and counts malformed, unauthenticated and replayed packets, and keeps working', () => {
    const { monitor, receiver, drops } = setup({ key: KEY });
    expect(receiver.receive(Buffer.from('hello'), FROM)).toBe('malformed');
    expect(receiver.receive(encodeHeartbeat(packet()), FROM)).toBe('unauthenticated');
    expect(receiver.receive(encodeHeartbeat(packet(), OTHER_KEY), FROM)).toBe('unauthenticated');
    expect(monitor.status('node-a')).toBe('unknown');
    const five = encodeHeartbeat(packet({ sequence: 5 }), KEY);
    expect(receiver.receive(five, FROM)).toBe('accepted');
    expect(receiver.receive(five, FROM)).toBe('replayed');
    expect(receiver.receive(encodeHeartbeat(packet({ sequence: 4 }), KEY), FROM)).toBe('replayed');
    expect(receiver.receive(encodeHeartbeat(packet({ sequence: 6 }), KEY), FROM)).toBe('accepted');
    expect(receiver.stats).toEqual({
      received: 7,
      accepted: 2,
      malformed: 1,
      unauthenticated: 2,
      replayed: 2,
      unknownPeer: 0,
    });
    expect(drops.map((d) => d.reason)).toEqual([
      'malformed',
      'unauthenticated',
      'unauthenticated',
      'replayed',
      'replayed',
    ]);
    expect(drops[3]).toEqual({ reason: 'replayed', from: FROM, peerId: 'node-a' });
  });

  it('accepts a new incarnation (a restarted sender) and rejects replays of retired ones', () => {
    const { receiver } = setup({ key: KEY });
    const first = '1111111111111111';
    const second = '2222222222222222';
    expect(receiver.receive(encodeHeartbeat(packet({ incarnation: first, sequence: 90 }), KEY), FROM)).toBe(
      'accepted',
    );
    expect(receiver.receive(encodeHeartbeat(packet({ incarnation: second, sequence: 1 }), KEY), FROM)).toBe(
      'accepted',
    );
    expect(receiver.receive(encodeHeartbeat(packet({ incarnation: first, sequence: 91 }), KEY), FROM)).toBe(
      'replayed',
    );
    expect(receiver.receive(encodeHeartbeat(packet({ incarnation: second, sequence: 2 }), KEY), FROM)).toBe(
      'accepted',
    );
  });

  it('counts heartbeats from peers the monitor does not track, without keeping state for them', () => {
    const { monitor, receiver, drops } = setup();
    expect(receiver.receive(encodeHeartbeat(packet({ peerId: 'stranger' })), FROM)).toBe('unknown-peer');
    expect(receiver.stats.unknownPeer).toBe(1);
    expect(monitor.stats.ignoredUnknown).toBe(1);
    expect(drops).toEqual([{ reason: 'unknown-peer', from: FROM, peerId: 'stranger' }]);
  });

  it('accepts packets with a MAC when it has no key (the MAC is not checked)', () => {
    const { receiver } = setup();
    expect(receiver.receive(encodeHeartbeat(packet(), KEY), FROM)).toBe('accepted');
  });
});
