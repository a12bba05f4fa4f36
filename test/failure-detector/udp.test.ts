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

  function setup(options: { key?: string; autoAdd?: boolean } = {}) {
    const clock = new VirtualClock();
    const monitor = heartbeatMonitor({
      clock,
      peers: ['node-a'],
      autoAdd: options.autoAdd ?? false,
      detector: () => fixedTimeout({ clock, timeoutMs: 1000 }),
    });
    const receiver = udpHeartbeatReceiver({ monitor, key: options.key });
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
      staleIncarnation: 0,
      unknownPeer: 0,
      replayStates: 1,
      retiredFloors: 0,
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

  /** An incarnation as the sender makes it: start time in ms, then 20 low bits. */
  function incarnation(startMs: number, low = 0): string {
    return ((BigInt(startMs) << 20n) | BigInt(low)).toString(16).padStart(16, '0');
  }

  it('accepts a restarted sender (a higher incarnation), whose sequence starts again at 1', () => {
    const { receiver } = setup({ key: KEY });
    const send = (inc: string, sequence: number) =>
      receiver.receive(encodeHeartbeat(packet({ incarnation: inc, sequence }), KEY), FROM);
    expect(send(incarnation(1_000, 7), 90)).toBe('accepted');
    expect(send(incarnation(2_000, 3), 1)).toBe('accepted');
    expect(send(incarnation(2_000, 3), 2)).toBe('accepted');
    // Started in the same millisecond: the random low bits order them.
    expect(send(incarnation(2_000, 4), 1)).toBe('accepted');
    expect(receiver.stats).toMatchObject({ accepted: 4, replayed: 0, staleIncarnation: 0 });
  });

  it('drops a recorded packet of any older incarnation, however many restarts ago, and keeps trusting the live sender', () => {
    const { monitor, receiver, drops } = setup({ key: KEY });
    const recorded: Buffer[] = [];
    // Twenty runs of the sender, each a second after the last; an attacker records one packet of each.
    for (let run = 0; run < 20; run++) {
      const signed = encodeHeartbeat(
        packet({ incarnation: incarnation(1_000 * (run + 1), run), sequence: 5 }),
        KEY,
      );
      recorded.push(signed);
      expect(receiver.receive(signed, FROM)).toBe('accepted');
    }
    const live = incarnation(20_000, 19);
    let sequence = 5;
    for (const old of recorded.slice(0, -1)) {
      // The replay is dropped, and the live sender's next heartbeat is still accepted.
      expect(receiver.receive(old, FROM)).toBe('replayed');
      sequence++;
      expect(receiver.receive(encodeHeartbeat(packet({ incarnation: live, sequence }), KEY), FROM)).toBe(
        'accepted',
      );
    }
    expect(receiver.receive(recorded[19]!, FROM)).toBe('replayed'); // the live run's own old packet
    expect(receiver.stats).toMatchObject({ accepted: 39, replayed: 20, staleIncarnation: 19 });
    expect(drops.every((d) => d.reason === 'replayed' && d.peerId === 'node-a')).toBe(true);
    expect(monitor.status('node-a')).toBe('available');
  });

  it('drops a sender restarted with its wall clock stepped back, until its replay floor is reset', () => {
    const { monitor, receiver } = setup({ key: KEY });
    const send = (inc: string, sequence: number) =>
      receiver.receive(encodeHeartbeat(packet({ incarnation: inc, sequence }), KEY), FROM);
    expect(send(incarnation(50_000), 1)).toBe('accepted');
    // Restarted after its clock was set back by a minute: a lower incarnation.
    const stepped = incarnation(10_000, 1);
    expect(send(stepped, 1)).toBe('replayed');
    expect(send(stepped, 2)).toBe('replayed');
    expect(receiver.stats).toMatchObject({ replayed: 2, staleIncarnation: 2 });
    // Removing and re-adding the peer keeps the floor (recordings stay out)...
    monitor.remove('node-a');
    monitor.add('node-a');
    expect(send(stepped, 3)).toBe('replayed');
    expect(receiver.stats.staleIncarnation).toBe(3);
    // ...the operator resets it explicitly.
    expect(receiver.resetReplayFloor('node-a')).toBe(true);
    expect(send(stepped, 4)).toBe('accepted');
    expect(send(stepped, 4)).toBe('replayed');
    expect(monitor.status('node-a')).toBe('available');
    expect(receiver.stats.staleIncarnation).toBe(3);
    expect(receiver.resetReplayFloor('nobody')).toBe(false);
  });

  it('passes the monitor sequence numbers that keep increasing across restarts of the sender', () => {
    const { clock, monitor, receiver } = setup({ key: KEY });
    const seen: Array<number | undefined> = [];
    const detector = monitor.detector('node-a')!;
    const original = detector.heartbeat.bind(detector);
    detector.heartbeat = (sequence?: number) => {
      seen.push(sequence);
      original(sequence);
    };
    const send = (inc: string, sequence: number) =>
      receiver.receive(encodeHeartbeat(packet({ incarnation: inc, sequence }), KEY), FROM);
    expect(send(incarnation(1_000), 1)).toBe('accepted');
    expect(send(incarnation(1_000), 2)).toBe('accepted');
    expect(send(incarnation(1_000), 5)).toBe('accepted');
    expect(send(incarnation(9_000), 1)).toBe('accepted'); // restarted: counts from 1 again
    expect(send(incarnation(9_000), 3)).toBe('accepted');
    expect(send(incarnation(20_000), 2)).toBe('accepted'); // restarted again, its first packet lost
    expect(seen).toEqual([1, 2, 5, 6, 8, 10]);
    expect(clock.now()).toBe(0);
  });

  it('keeps no replay state for a peer after monitor.remove()', () => {
    const { monitor, receiver } = setup({ key: KEY });
    monitor.add('node-b');
    expect(receiver.receive(encodeHeartbeat(packet({ sequence: 1 }), KEY), FROM)).toBe('accepted');
    expect(receiver.receive(encodeHeartbeat(packet({ peerId: 'node-b', sequence: 1 }), KEY), FROM)).toBe(
      'accepted',
    );
    expect(receiver.stats.replayStates).toBe(2);
    monitor.remove('node-a');
    expect(receiver.stats.replayStates).toBe(1);
    // Without autoAdd the removed peer is unknown, and no state comes back for it.
    expect(receiver.receive(encodeHeartbeat(packet({ sequence: 2 }), KEY), FROM)).toBe('unknown-peer');
    expect(receiver.stats.replayStates).toBe(1);
    monitor.remove('node-b');
    expect(receiver.stats.replayStates).toBe(0);
  });

  it('with autoAdd and churn, holds replay state only for peers the monitor still tracks', () => {
    const { monitor, receiver } = setup({ autoAdd: true });
    monitor.remove('node-a');
    for (let i = 0; i < 1_000; i++) {
      const peerId = `peer-${i}`;
      expect(receiver.receive(encodeHeartbeat(packet({ peerId })), FROM)).toBe('accepted');
      monitor.remove(peerId);
    }
    // Their floors are kept for the last maxRetiredPeers (1024) of them.
    expect(receiver.stats).toMatchObject({ accepted: 1_000, replayStates: 0, retiredFloors: 1_000 });
    // A removed peer's recorded packet does not bring it back; its next real one does.
    expect(receiver.receive(encodeHeartbeat(packet({ peerId: 'peer-7' })), FROM)).toBe('replayed');
    expect(monitor.has('peer-7')).toBe(false);
    expect(receiver.receive(encodeHeartbeat(packet({ peerId: 'peer-7', sequence: 2 })), FROM)).toBe(
      'accepted',
    );
    expect(receiver.stats).toMatchObject({ replayStates: 1, retiredFloors: 999 });
  });

  it('keeps at most maxRetiredPeers floors, forgetting the peers removed longest ago', () => {
    const clock = new VirtualClock();
    const monitor = heartbeatMonitor({
      clock,
      autoAdd: true,
      detector: () => fixedTimeout({ clock, timeoutMs: 1000 }),
    });
    const receiver = udpHeartbeatReceiver({ monitor, maxRetiredPeers: 3 });
    open.push(receiver, monitor);
    for (let i = 0; i < 5; i++) {
      expect(receiver.receive(encodeHeartbeat(packet({ peerId: `p${i}` })), FROM)).toBe('accepted');
      monitor.remove(`p${i}`);
      expect(receiver.stats.retiredFloors).toBe(Math.min(i + 1, 3));
    }
    // p0 and p1 were forgotten: their recordings get in again (the documented bound); p2…p4 do not.
    expect(receiver.receive(encodeHeartbeat(packet({ peerId: 'p0' })), FROM)).toBe('accepted');
    expect(receiver.receive(encodeHeartbeat(packet({ peerId: 'p3' })), FROM)).toBe('replayed');
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
