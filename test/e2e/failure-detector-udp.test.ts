// Three real processes on 127.0.0.1 exchange UDP heartbeats (every 50 ms, HMAC
// authenticated) and watch each other, once with phi accrual detectors, once
// with two-window detectors and once with Chen's. The test stops one with
// SIGSTOP, resumes it (its sender then restarts its schedule from the end of
// the stop, which Chen's and the two-window estimates must follow), kills it,
// and forges and replays packets.
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const KEY = 'e2e shared heartbeat key, 32 b.';
const FIXTURE = fileURLToPath(new URL('./fixtures/failure-detector/peer.ts', import.meta.url));
const IDS = ['p1', 'p2', 'p3'] as const;
type Id = (typeof IDS)[number];
const DETECTORS = ['phi', 'two-window', 'chen'] as const;

interface Message {
  readonly type: string;
  readonly peer?: string;
  readonly reason?: string;
  readonly port?: number;
  readonly statuses?: Record<string, string>;
  readonly at: number;
}

function udpCluster(detector: (typeof DETECTORS)[number]): void {
  describe(`UDP heartbeats between three processes (${detector} detectors)`, () => {
    const children = new Map<Id, ChildProcess>();
    const inbox = new Map<Id, Message[]>(IDS.map((id) => [id, []]));
    const ports = new Map<Id, number>();
    let tap: Socket | undefined;
    const tapped: Buffer[] = [];

    function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
      const start = performance.now();
      return new Promise((resolve, reject) => {
        const poll = (): void => {
          const value = probe();
          if (value !== undefined) resolve(value);
          else if (performance.now() - start > timeoutMs) reject(new Error(`timed out waiting for ${what}`));
          else setTimeout(poll, 5);
        };
        poll();
      });
    }

    function find(id: Id, since: number, match: (m: Message) => boolean): Message | undefined {
      return inbox.get(id)!.find((m) => m.at >= since && match(m));
    }

    async function status(id: Id): Promise<Record<string, string>> {
      const since = performance.now();
      children.get(id)!.send({ type: 'status' });
      const reply = await waitFor(
        `status from ${id}`,
        () => find(id, since, (m) => m.type === 'status'),
        3000,
      );
      return reply.statuses!;
    }

    function sendTo(id: Id, data: Buffer): Promise<void> {
      return new Promise((resolve, reject) =>
        tap!.send(data, ports.get(id)!, '127.0.0.1', (error) => (error ? reject(error) : resolve())),
      );
    }

    beforeAll(async () => {
      tap = createSocket('udp4');
      tap.on('message', (data) => {
        if (tapped.length < 500) tapped.push(Buffer.from(data));
      });
      await new Promise<void>((resolve) => tap!.bind(0, '127.0.0.1', resolve));
      const tapPort = tap.address().port;
      for (const id of IDS) {
        const others = IDS.filter((o) => o !== id).join(',');
        const child = spawn(
          process.execPath,
          ['--conditions=bulwark-source', FIXTURE, id, KEY, others, detector],
          {
            stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          },
        );
        child.on('message', (m: Omit<Message, 'at'>) => inbox.get(id)!.push({ ...m, at: performance.now() }));
        children.set(id, child);
      }
      for (const id of IDS) {
        const ready = await waitFor(`${id} ready`, () => find(id, 0, (m) => m.type === 'ready'), 10_000);
        ports.set(id, ready.port!);
      }
      for (const id of IDS) {
        const targets = IDS.filter((o) => o !== id).map((o) => ports.get(o)!);
        children.get(id)!.send({ type: 'targets', ports: [...targets, tapPort] });
      }
      for (const id of IDS) {
        for (const other of IDS.filter((o) => o !== id)) {
          await waitFor(
            `${id} hearing ${other}`,
            () => find(id, 0, (m) => m.type === 'first-heartbeat' && m.peer === other),
            5000,
          );
        }
      }
    }, 20_000);

    afterAll(() => {
      for (const child of children.values()) {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGCONT');
          child.kill('SIGKILL');
        }
      }
      tap?.close();
    });

    it('starts with every peer available to every other', async () => {
      for (const id of IDS) {
        const statuses = await status(id);
        for (const other of IDS.filter((o) => o !== id)) expect(statuses[other]).toBe('available');
      }
    });

    it('rejects unauthenticated, malformed and replayed packets, and still trusts the real sender', async () => {
      const since = performance.now();
      // A genuine packet p2 sent (to the tap as well as to p1): p1 has already accepted it.
      const genuine = tapped.findLast((p) => p.includes(Buffer.from('p2')));
      expect(genuine).toBeDefined();
      await new Promise((resolve) => setTimeout(resolve, 100));
      await sendTo('p1', genuine!);
      // The same packet with its MAC removed and the MAC flag cleared.
      const stripped = Buffer.from(genuine!.subarray(0, genuine!.length - 32));
      stripped[5] = 0;
      await sendTo('p1', stripped);
      // The same packet with one byte of its MAC changed.
      const forged = Buffer.from(genuine!);
      forged[forged.length - 1] = (forged[forged.length - 1] ?? 0) ^ 0xff;
      await sendTo('p1', forged);
      await sendTo('p1', Buffer.from('not a heartbeat'));
      const reasons = (): string[] =>
        inbox
          .get('p1')!
          .filter((m) => m.at >= since && m.type === 'drop')
          .map((m) => m.reason!);
      await waitFor('four drops at p1', () => (reasons().length >= 4 ? true : undefined), 3000);
      expect(reasons().sort()).toEqual(['malformed', 'replayed', 'unauthenticated', 'unauthenticated']);
      expect((await status('p1')).p2).toBe('available');
    });

    it('suspects a process stopped with SIGSTOP within the expected time', async () => {
      const stoppedAt = performance.now();
      children.get('p3')!.kill('SIGSTOP');
      // phi 8 with a 50 ms interval and a 25 ms floor on the deviation: about 50 + 5.2 × 25 ms of
      // silence, plus the 20 ms check; allow for scheduling noise on a loaded machine.
      for (const id of ['p1', 'p2'] as const) {
        const event = await waitFor(
          `${id} suspecting p3`,
          () => find(id, stoppedAt, (m) => m.type === 'suspect' && m.peer === 'p3'),
          1500,
        );
        expect(event.at - stoppedAt).toBeLessThan(1500);
      }
      expect((await status('p1')).p3).toBe('suspect');
      expect((await status('p1')).p2).toBe('available');
      // Keep it stopped for 1.5 s in all, so that its sender's schedule moves by about 30 intervals.
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(0, 1500 - (performance.now() - stoppedAt))),
      );
    });

    it('recovers the process after SIGCONT, from its first heartbeats', async () => {
      const resumedAt = performance.now();
      children.get('p3')!.kill('SIGCONT');
      for (const id of ['p1', 'p2'] as const) {
        await waitFor(
          `${id} recovering p3`,
          () => find(id, resumedAt, (m) => m.type === 'recover' && m.peer === 'p3'),
          // A detector still expecting the old schedule would wait for its window to move (many seconds).
          3000,
        );
      }
      expect((await status('p1')).p3).toBe('available');
      expect((await status('p2')).p3).toBe('available');
    });

    it('keeps trusting the resumed process, whose sender restarted its schedule', async () => {
      // The resumed sender sends on a schedule shifted by the stop. A detector that kept
      // expecting the old schedule would suspect it before nearly every heartbeat.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const since = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      for (const id of ['p1', 'p2'] as const) {
        const flaps = inbox.get(id)!.filter((m) => m.at >= since && m.type === 'suspect' && m.peer === 'p3');
        // 20 heartbeats in that second; allow one or two suspicions from scheduling noise.
        expect(flaps.length).toBeLessThan(3);
      }
      expect((await status('p1')).p3).toBe('available');
    });

    it('keeps a process killed with SIGKILL suspected', async () => {
      const killedAt = performance.now();
      const p3 = children.get('p3')!;
      const exited = new Promise((resolve) => p3.once('exit', resolve));
      p3.kill('SIGKILL');
      await exited;
      for (const id of ['p1', 'p2'] as const) {
        await waitFor(
          `${id} suspecting dead p3`,
          () => find(id, killedAt, (m) => m.type === 'suspect' && m.peer === 'p3'),
          3000,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 750));
      expect(find('p1', killedAt, (m) => m.type === 'recover' && m.peer === 'p3')).toBeUndefined();
      expect((await status('p1')).p3).toBe('suspect');
      expect((await status('p2')).p3).toBe('suspect');
      expect((await status('p2')).p1).toBe('available');
    });
  });
}

for (const detector of DETECTORS) udpCluster(detector);
