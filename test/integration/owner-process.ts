// Runs fixtures/owner.ts as a child process and follows what it prints.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { IdempotencyGuard } from '@bulwark/idempotency';
import { afterEach, describe, expect, it } from 'vitest';
import { sleep } from './services.ts';

export interface OwnerProcess {
  readonly child: ChildProcess;
  /** Resolves when the child is inside fn, holding the lease. */
  readonly inside: Promise<void>;
  /** Resolves with the guard result the child printed, or undefined if it died first. */
  readonly result: Promise<unknown>;
  /** Resolves when the child has exited. */
  readonly exited: Promise<void>;
  /** Tells the child's fn to return. */
  finish(): void;
}

/** Starts fixtures/<name>.ts in a node process of its own, reading the lines it prints. */
function spawnFixture(name: string, args: readonly string[]) {
  const fixture = new URL(`./fixtures/${name}.ts`, import.meta.url).pathname;
  const child = spawn(process.execPath, ['--conditions=bulwark-source', fixture, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return { child, lines: createInterface({ input: child.stdout! }) };
}

export function spawnOwner(args: readonly string[]): OwnerProcess {
  const { child, lines } = spawnFixture('owner', args);
  let onInside!: () => void;
  let onResult!: (value: unknown) => void;
  const entered = new Promise<void>((resolve) => (onInside = resolve));
  const result = new Promise<unknown>((resolve) => (onResult = resolve));
  lines.on('line', (line) => {
    if (line === 'inside') onInside();
    else if (line.startsWith('{')) onResult(JSON.parse(line));
  });
  const exited = new Promise<void>((resolve) =>
    child.on('exit', () => {
      onResult(undefined);
      resolve();
    }),
  );
  const inside = Promise.race([
    entered,
    exited.then(() => {
      throw new Error(`the owner process exited before taking the lease (code ${child.exitCode})`);
    }),
  ]);
  return { child, inside, result, exited, finish: () => child.stdin!.write('finish\n') };
}

export interface OwnerTarget {
  /** The arguments for fixtures/owner.ts before the key and lease: kind, url, prefix or table. */
  readonly args: readonly string[];
  /** A guard in this process on the same store, with the given lease. */
  guard(leaseMs: number): IdempotencyGuard<string>;
  key(name: string): string;
}

interface RaceResult {
  readonly ran: number;
  readonly kinds: readonly string[];
}

/**
 * Starts `processes` racers on one key, lets them all go at once, and returns
 * what each reported. Kills any racer still running when it returns or throws.
 */
async function race(args: readonly string[], processes: number, each: number): Promise<RaceResult[]> {
  const racers = Array.from({ length: processes }, () => spawnFixture('racer', [...args, String(each)]));
  const children = racers.map((r) => r.child);
  try {
    const reports = racers.map(({ child, lines }) => {
      let onReady!: () => void;
      let onResult!: (r: RaceResult) => void;
      const ready = new Promise<void>((resolve) => (onReady = resolve));
      const result = new Promise<RaceResult>((resolve, reject) => {
        onResult = resolve;
        child.on('exit', (code) => reject(new Error(`a racer exited (code ${code}) without a result`)));
      });
      lines.on('line', (line) => {
        if (line === 'ready') onReady();
        else if (line.startsWith('{')) onResult(JSON.parse(line) as RaceResult);
      });
      return { ready, result };
    });
    await Promise.all(reports.map((r) => r.ready));
    for (const child of children) child.stdin!.write('go\n');
    return await Promise.all(reports.map((r) => r.result));
  } finally {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Crash and pause tests with a real second process holding the lease. */
export function describeOwnerProcesses(name: string, target: () => OwnerTarget): void {
  describe(`${name}: an owner in another process`, () => {
    const leaseMs = 400;
    const children: OwnerProcess[] = [];
    afterEach(() => {
      for (const c of children.splice(0)) {
        if (c.child.exitCode === null && c.child.signalCode === null) {
          c.child.kill('SIGCONT');
          c.child.kill('SIGKILL');
        }
      }
    });
    /** An owner process inside fn, holding `key` with the suite's lease. */
    const ownerInside = async (t: OwnerTarget, key: string): Promise<OwnerProcess> => {
      const owner = spawnOwner([...t.args, key, String(leaseMs)]);
      children.push(owner);
      await owner.inside;
      return owner;
    };

    it('runs fn exactly once for 100 requests with one key spread over 4 processes', async () => {
      const t = target();
      const key = t.key('race');
      const reports = await race([...t.args, key], 4, 25);
      expect(reports.reduce((sum, r) => sum + r.ran, 0)).toBe(1);
      const kinds = reports.flatMap((r) => r.kinds);
      expect(kinds).toHaveLength(100);
      expect(kinds.filter((k) => k === 'executed')).toHaveLength(1);
      expect(kinds.every((k) => k === 'executed' || k === 'replayed' || k === 'in-progress')).toBe(true);
      expect((await t.guard(leaseMs).run(key, 'request', () => 'late')).kind).toBe('replayed');
    }, 20_000);

    it('lets a retry execute exactly once after an owner is killed inside fn and its lease expires', async () => {
      const t = target();
      const key = t.key('crash');
      const guard = t.guard(leaseMs);
      const owner = await ownerInside(t, key);
      expect((await guard.run(key, 'request', () => 'too early')).kind).toBe('in-progress');
      owner.child.kill('SIGKILL');
      await owner.exited;
      expect(await owner.result).toBeUndefined();
      await sleep(leaseMs + 150);
      let calls = 0;
      const retries = await Promise.all(
        Array.from({ length: 10 }, () =>
          guard.run(key, 'request', async () => {
            calls++;
            await sleep(20);
            return 'retried';
          }),
        ),
      );
      expect(calls).toBe(1);
      expect(retries.filter((r) => r.kind === 'executed')).toEqual([
        { kind: 'executed', value: 'retried', completion: 'stored' },
      ]);
      expect(await guard.run(key, 'request', () => 'again')).toEqual({ kind: 'replayed', value: 'retried' });
    }, 15_000);

    it('never takes over from a live owner process whose fn runs for several leases', async () => {
      const t = target();
      const key = t.key('alive');
      const guard = t.guard(leaseMs);
      const owner = await ownerInside(t, key);
      let duplicates = 0;
      for (let i = 0; i < 8; i++) {
        const r = await guard.run(key, 'request', () => {
          duplicates++;
          return 'duplicate';
        });
        expect(r.kind).toBe('in-progress');
        await sleep(leaseMs / 2);
      }
      expect(duplicates).toBe(0);
      owner.finish();
      expect(await owner.result).toEqual({ kind: 'executed', value: 'child', completion: 'stored' });
      await owner.exited;
      expect(await guard.run(key, 'request', () => 'late')).toEqual({ kind: 'replayed', value: 'child' });
    }, 15_000);

    it('rejects the late completion of an owner paused past its lease, keeping the new owner`s result', async () => {
      const t = target();
      const key = t.key('pause');
      const guard = t.guard(leaseMs);
      const owner = await ownerInside(t, key);
      owner.child.kill('SIGSTOP');
      expect((await guard.run(key, 'request', () => 'too early')).kind).toBe('in-progress');
      await sleep(leaseMs + 150);
      expect(await guard.run(key, 'request', () => 'new owner')).toEqual({
        kind: 'executed',
        value: 'new owner',
        completion: 'stored',
      });
      owner.child.kill('SIGCONT');
      owner.finish();
      expect(await owner.result).toEqual({ kind: 'executed', value: 'child', completion: 'lease-lost' });
      await owner.exited;
      expect(await guard.run(key, 'request', () => 'third')).toEqual({
        kind: 'replayed',
        value: 'new owner',
      });
    }, 15_000);
  });
}
