// A store server's wall clock steps (NTP, a VM resumed, an operator) while a
// handler runs. Each store runs as a server of this test's own under
// libfaketime, and the test steps its clock +120 s and -3600 s. A step must
// cause no second execution, and a dead owner's key must still be taken over
// within a small multiple of the lease: leases are judged by renewals on the
// guard's own monotonic clock, never by the server's clock.
import { execFileSync } from 'node:child_process';
import { systemClock, VirtualClock } from '@bulwark/clock';
import { type IdempotencyStore, idempotency } from '@bulwark/idempotency';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from './fixtures/open-store.ts';
import { sleep } from './services.ts';
import {
  findFaketime,
  findPostgresBin,
  type SteppedServer,
  startSteppedPostgres,
  startSteppedRedis,
} from './stepped-server.ts';

function missing(): string | undefined {
  const preload = findFaketime();
  if (typeof preload === 'string') return preload;
  if (findPostgresBin() === undefined)
    return 'the PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are missing';
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'redis-server is not installed';
  }
  return undefined;
}

const reason = missing();
if (reason !== undefined) {
  if (process.env.CI === 'true') throw new Error(`${reason}. CI requires it: run scripts/services.sh.`);
  console.log(`skipping the store clock step tests: ${reason}`);
}

interface Target {
  readonly name: string;
  start(): Promise<{ server: SteppedServer; store: IdempotencyStore; close(): Promise<void> }>;
}

const namespace = `bulwark_step_${process.pid}`;

const targets: Target[] = [
  {
    name: 'Redis',
    async start() {
      const server = await startSteppedRedis(findFaketime() as never);
      try {
        const opened = await openStore('redis', `redis://127.0.0.1:${server.port}`, `${namespace}:`, 1);
        return { server, ...opened };
      } catch (error) {
        await server.stop();
        throw error;
      }
    },
  },
  {
    name: 'PostgreSQL',
    async start() {
      const server = await startSteppedPostgres(findFaketime() as never, findPostgresBin()!);
      try {
        const opened = await openStore(
          'postgres',
          `postgres://postgres@127.0.0.1:${server.port}/postgres`,
          namespace,
          4,
        );
        await (opened.store as unknown as { migrate(): Promise<void> }).migrate();
        return { server, ...opened };
      } catch (error) {
        await server.stop();
        throw error;
      }
    },
  },
];

describe.skipIf(reason !== undefined).each(targets)('$name store with a stepped server clock', (target) => {
  let server: SteppedServer;
  let store: IdempotencyStore;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ server, store, close } = await target.start());
  }, 40_000);
  afterAll(async () => {
    await close?.();
    await server?.stop();
  }, 20_000);

  it('runs the handler once when the server clock steps +120 s while it runs within its lease', async () => {
    // The shape, shortened: a 3 s lease, a 1.5 s handler, a +120 s step.
    const leaseMs = 3_000;
    const owner = idempotency<string>({ store, leaseMs });
    const contender = idempotency<string>({ store, leaseMs });
    const key = 'forward-step';
    let effects = 0;
    let inside!: () => void;
    const entered = new Promise<void>((resolve) => (inside = resolve));
    const first = owner.run(key, 'req', async () => {
      effects++;
      inside();
      await sleep(1_500);
      return 'first';
    });
    await entered;
    try {
      server.step(120);
      let done = false;
      void first.finally(() => (done = true));
      while (!done) {
        const retry = await contender.run(key, 'req', () => {
          effects++;
          return 'second';
        });
        expect(['in-progress', 'replayed']).toContain(retry.kind);
        await sleep(150);
      }
      expect(await first).toEqual({ kind: 'executed', value: 'first', completion: 'stored' });
      expect(effects).toBe(1);
      expect(await contender.run(key, 'req', () => 'third')).toEqual({ kind: 'replayed', value: 'first' });
    } finally {
      server.step(0);
    }
  }, 20_000);

  it('takes over a dead owner`s key within two leases when the server clock steps -3600 s', async () => {
    const leaseMs = 1_000;
    // The owner dies inside fn: its clock never moves again, so it never renews.
    const dead = idempotency<string>({ store, leaseMs, clock: new VirtualClock() });
    const contender = idempotency<string>({ store, leaseMs });
    const key = 'backward-step';
    let inside!: () => void;
    const entered = new Promise<void>((resolve) => (inside = resolve));
    void dead.run(key, 'req', () => {
      inside();
      return new Promise<string>(() => {});
    });
    await entered;
    try {
      server.step(-3_600);
      const stepped = systemClock.now();
      let executions = 0;
      let takenAfterMs: number | undefined;
      while (takenAfterMs === undefined && systemClock.now() - stepped < 10_000) {
        const retry = await contender.run(key, 'req', () => {
          executions++;
          return 'taken over';
        });
        if (retry.kind === 'executed') {
          expect(retry).toEqual({ kind: 'executed', value: 'taken over', completion: 'stored' });
          takenAfterMs = systemClock.now() - stepped;
        } else {
          expect(retry.kind).toBe('in-progress');
          await sleep(100);
        }
      }
      expect(takenAfterMs).toBeDefined();
      expect(takenAfterMs!).toBeGreaterThanOrEqual(leaseMs);
      expect(takenAfterMs!).toBeLessThan(2 * leaseMs);
      expect(executions).toBe(1);
      expect(await contender.run(key, 'req', () => 'again')).toEqual({
        kind: 'replayed',
        value: 'taken over',
      });
    } finally {
      server.step(0);
    }
  }, 20_000);

  it('runs the handler once when the server clock steps -3600 s and back while a long handler runs', async () => {
    const leaseMs = 600;
    const owner = idempotency<string>({ store, leaseMs });
    const contender = idempotency<string>({ store, leaseMs });
    const key = 'steps-both-ways';
    let effects = 0;
    let inside!: () => void;
    const entered = new Promise<void>((resolve) => (inside = resolve));
    const first = owner.run(key, 'req', async () => {
      effects++;
      inside();
      await sleep(2_000); // more than three leases
      return 'first';
    });
    await entered;
    try {
      server.step(-3_600);
      for (let i = 0; i < 6; i++) {
        await sleep(150);
        expect((await contender.run(key, 'req', () => String(++effects))).kind).toBe('in-progress');
      }
      server.step(120);
      let done = false;
      void first.finally(() => (done = true));
      while (!done) {
        expect(['in-progress', 'replayed']).toContain(
          (await contender.run(key, 'req', () => String(++effects))).kind,
        );
        await sleep(150);
      }
      expect(await first).toEqual({ kind: 'executed', value: 'first', completion: 'stored' });
      expect(effects).toBe(1);
    } finally {
      server.step(0);
    }
  }, 20_000);
});
