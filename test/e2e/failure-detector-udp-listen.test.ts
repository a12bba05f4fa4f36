// udpHeartbeatReceiver and udpHeartbeatSender on real UDP sockets on 127.0.0.1:
// listen() after a failed bind (EADDRINUSE) binds a fresh socket, and a restarted
// sender's higher incarnation is accepted while a lower one is dropped. Every
// socket is closed in afterEach, and every wait is bounded.
import { createSocket, type Socket } from 'node:dgram';
import {
  fixedTimeout,
  type HeartbeatDropEvent,
  type HeartbeatMonitor,
  heartbeatMonitor,
  type UdpHeartbeatReceiver,
  udpHeartbeatReceiver,
  udpHeartbeatSender,
} from '@bulwark/failure-detector';
import { afterEach, describe, expect, it } from 'vitest';

const KEY = 'e2e listen test key of 32 bytes.';
const open: Array<{ dispose(): void }> = [];
const sockets: Socket[] = [];

afterEach(() => {
  for (const o of open.splice(0).reverse()) o.dispose();
  for (const s of sockets.splice(0)) {
    try {
      s.close();
    } catch {
      // already closed by the test
    }
  }
});

function waitFor(what: string, probe: () => boolean, timeoutMs = 3000): Promise<void> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (probe()) resolve();
      else if (performance.now() - start > timeoutMs) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(poll, 5);
    };
    poll();
  });
}

function setup(port = 0): { monitor: HeartbeatMonitor; receiver: UdpHeartbeatReceiver } {
  const monitor = heartbeatMonitor({ peers: ['a'], detector: () => fixedTimeout({ timeoutMs: 1000 }) });
  const receiver = udpHeartbeatReceiver({ monitor, port, key: KEY });
  open.push(monitor, receiver);
  return { monitor, receiver };
}

async function occupy(): Promise<{ socket: Socket; port: number }> {
  const socket = createSocket('udp4');
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  return { socket, port: socket.address().port };
}

describe('udpHeartbeatReceiver.listen()', () => {
  it('rejects with EADDRINUSE while the port is taken, and binds once it is free', async () => {
    const blocker = await occupy();
    const { receiver } = setup(blocker.port);
    await expect(receiver.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    // Still taken: a second attempt fails the same way (it is not the first rejection, kept).
    await expect(receiver.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await new Promise<void>((resolve) => blocker.socket.close(resolve));
    const bound = await receiver.listen();
    expect(bound).toEqual({ address: '127.0.0.1', port: blocker.port });
    // The same promise afterwards, and the fresh socket receives heartbeats.
    expect(await receiver.listen()).toEqual(bound);
    const sender = udpHeartbeatSender({
      peerId: 'a',
      key: KEY,
      intervalMs: 20,
      targets: [{ port: bound.port }],
    });
    open.push(sender);
    await waitFor('a heartbeat', () => receiver.stats.accepted > 0);
  });

  it('rejects after dispose()', async () => {
    const { receiver } = setup();
    receiver.dispose();
    await expect(receiver.listen()).rejects.toThrow();
  });
});

describe('incarnations over UDP', () => {
  it('accepts a restarted sender, and drops one whose wall clock was stepped back until its replay floor is reset', async () => {
    const { monitor, receiver } = setup();
    const drops: HeartbeatDropEvent[] = [];
    receiver.onDrop((e) => drops.push(e));
    const { port } = await receiver.listen();
    const incarnations: string[] = [];
    receiver.onHeartbeat(({ packet }) => incarnations.push(packet.incarnation));
    const start = (wallMs: number) => {
      const sender = udpHeartbeatSender({
        peerId: 'a',
        key: KEY,
        intervalMs: 20,
        targets: [{ port }],
        wallClock: () => wallMs,
      });
      open.push(sender);
      return sender;
    };

    const first = start(1_700_000_000_000);
    await waitFor('the first run', () => incarnations.includes(first.incarnation));
    first.dispose();
    const second = start(1_700_000_060_000);
    expect(second.incarnation > first.incarnation).toBe(true);
    await waitFor('the restarted run', () => incarnations.includes(second.incarnation));
    second.dispose();

    const stepped = start(1_699_999_000_000);
    await waitFor('drops of the stepped-back run', () => receiver.stats.staleIncarnation >= 2);
    expect(incarnations).not.toContain(stepped.incarnation);
    expect(drops.every((d) => d.reason === 'replayed' && d.peerId === 'a')).toBe(true);
    // Removing and re-adding the peer keeps its replay floor: the stepped-back run is still dropped.
    monitor.remove('a');
    monitor.add('a');
    const stale = receiver.stats.staleIncarnation;
    await waitFor('more drops after re-adding', () => receiver.stats.staleIncarnation >= stale + 2);
    expect(incarnations).not.toContain(stepped.incarnation);
    // Resetting the floor lets it in.
    expect(receiver.resetReplayFloor('a')).toBe(true);
    await waitFor('the stepped-back run after the reset', () => incarnations.includes(stepped.incarnation));
  });

  it('derives the default incarnation from the wall clock, in the high bits', () => {
    const before = Date.now();
    const sender = udpHeartbeatSender({ peerId: 'a', targets: [{ port: 9 }], intervalMs: 60_000 });
    open.push(sender);
    const after = Date.now();
    const startMs = Number(BigInt(`0x${sender.incarnation}`) >> 20n);
    expect(startMs).toBeGreaterThanOrEqual(before);
    expect(startMs).toBeLessThanOrEqual(after);
  });
});
