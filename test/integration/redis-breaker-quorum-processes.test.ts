// The breaker quorum across 4 real processes sharing one Redis: each runs its
// own breaker on `redisBreakerStore(client, { quorum: 2 })`. One instance that
// fails opens only itself; a second one failing opens the rest, which then
// refuse calls without having seen a failure of their own.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, RUN_ID, redisAvailable, sleep } from './services.ts';

const available = await redisAvailable();
const prefix = `bulwark:test:${RUN_ID}:quorum:`;
const key = 'payments';
const redisKey = `${prefix}{${key}}`;

type Client = ReturnType<typeof createClient>;

interface Reply {
  readonly state: string;
  readonly ok?: number;
  readonly refused?: number;
  readonly errors?: readonly string[];
}

/** One instance process: send it a command, get its one-line JSON answer. */
interface Instance {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  ask(command: 'trip' | 'sync' | 'calls'): Promise<Reply>;
}

function instance(id: string): Instance {
  const fixture = new URL('./fixtures/breaker-instance.ts', import.meta.url).pathname;
  const child = spawn(
    process.execPath,
    ['--conditions=bulwark-source', fixture, REDIS_URL, prefix, key, id, '2'],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const waiting: Array<(line: string) => void> = [];
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line === 'ready') ready();
    else waiting.shift()?.(line);
  });
  const exited = new Promise<never>((_, reject) =>
    child.on('exit', (code, signal) =>
      reject(new Error(`instance ${id} exited (${code ?? signal}) before answering`)),
    ),
  );
  exited.catch(() => {});
  return {
    child,
    ready: Promise.race([isReady, exited]),
    ask: (command) => {
      const answer = new Promise<Reply>((resolve) =>
        waiting.push((line) => resolve(JSON.parse(line) as Reply)),
      );
      child.stdin!.write(`${command}\n`);
      return Promise.race([answer, exited]);
    },
  };
}

describe.skipIf(!available)('breaker quorum across 4 processes on Redis', () => {
  let client: Client;
  const instances: Instance[] = [];
  beforeAll(async () => {
    client = createClient({ url: REDIS_URL, socket: { reconnectStrategy: false } });
    client.on('error', () => {});
    await client.connect();
  });
  afterAll(async () => {
    for (const { child } of instances) {
      child.stdin?.end();
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    }
    if (client === undefined) return;
    await client.del(redisKey);
    client.destroy();
  });

  /** Waits (bounded) until the open of `id` is in Redis: publishing is fire-and-forget. */
  async function published(id: string): Promise<void> {
    const until = performance.now() + 2_000;
    while (!(await client.hExists(redisKey, id))) {
      if (performance.now() > until) throw new Error(`the open of ${id} never reached Redis`);
      await sleep(10);
    }
  }

  it('with quorum 2 of 4, one failing instance does not open the others; two do', async () => {
    const started = performance.now();
    instances.push(...['i0', 'i1', 'i2', 'i3'].map(instance));
    await Promise.all(instances.map((i) => i.ready));
    const [a, b, c, d] = instances as [Instance, Instance, Instance, Instance];

    expect(await a.ask('trip')).toEqual({ state: 'open' });
    await published('i0');
    // One vote: the others read it and stay closed, and keep serving calls.
    for (const other of [b, c, d]) expect(await other.ask('sync')).toEqual({ state: 'closed' });
    for (const other of [c, d]) {
      const r = await other.ask('calls');
      expect(r).toMatchObject({ state: 'closed', refused: 0, errors: [] });
      expect(r.ok).toBeGreaterThan(3);
    }

    expect(await b.ask('trip')).toEqual({ state: 'open' });
    await published('i1');
    // Two votes: the quorum. c adopts it by an explicit read, d by itself while
    // taking calls (its closed breaker reads every syncIntervalMs).
    expect(await c.ask('sync')).toEqual({ state: 'open' });
    const r = await d.ask('calls');
    expect(r).toMatchObject({ state: 'open', refused: 1, errors: [] });
    // Only the two instances that failed voted; adopting an open is not a vote.
    expect((await client.hKeys(redisKey)).sort()).toEqual(['i0', 'i1']);
    expect(performance.now() - started).toBeLessThan(10_000);
  }, 15_000);
});
