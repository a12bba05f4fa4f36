// A Redis or PostgreSQL server of this test's own, whose wall clock the test can
// step while it runs: the server runs under libfaketime (Debian package
// `faketime`, installed by scripts/services.sh), reading its offset from a file
// at every clock read (FAKETIME_NO_CACHE). Only the server's wall clock moves;
// its monotonic clock is left alone, as an NTP step would leave it.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deadPort, sleep } from './services.ts';

interface Preload {
  readonly faketime: string;
  readonly libc: string;
}

/** libfaketime and the C library it must be loaded with, or why they are missing. */
export function findFaketime(): Preload | string {
  for (const dir of ['/usr/lib', '/usr/lib64']) {
    if (!existsSync(dir)) continue;
    for (const triplet of readdirSync(dir)) {
      const faketime = join(dir, triplet, 'faketime', 'libfaketime.so.1');
      const libc = [join('/lib', triplet, 'libc.so.6'), join(dir, triplet, 'libc.so.6')].find(existsSync);
      if (existsSync(faketime) && libc !== undefined) return { faketime, libc };
    }
  }
  return 'libfaketime is not installed (Debian package faketime; scripts/services.sh installs it)';
}

/** The newest PostgreSQL server binaries directory, or undefined. */
export function findPostgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

export interface SteppedServer {
  readonly port: number;
  /** Sets the server's wall clock to real time plus `seconds` (negative: behind). */
  step(seconds: number): void;
  /** Stops the server (by its PID) and deletes its files. */
  stop(): Promise<void>;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return Promise.race([
    new Promise<boolean>((resolve) => child.once('exit', () => resolve(true))),
    sleep(ms).then(() => false),
  ]);
}

async function waitPort(port: number, child: ChildProcess, ms: number, what: string): Promise<void> {
  const { createConnection } = await import('node:net');
  for (let waited = 0; waited < ms; waited += 100) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited (code ${child.exitCode}, signal ${child.signalCode}) before listening`);
    }
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await sleep(100);
  }
  throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${ms} ms`);
}

/** Runs `command` under libfaketime, its clock offset read from a file the test rewrites. */
function launch(
  preload: Preload,
  dir: string,
  command: string,
  args: readonly string[],
  user: { uid: number; gid: number } | undefined,
) {
  const offsetFile = join(dir, 'offset');
  const step = (seconds: number) => {
    // Written whole and renamed into place, so a clock read never sees half a file.
    const next = `${offsetFile}.next`;
    writeFileSync(next, `${seconds >= 0 ? '+' : ''}${seconds}\n`, { mode: 0o644 });
    renameSync(next, offsetFile);
  };
  step(0);
  const child = spawn(command, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    ...(user ?? {}),
    env: {
      ...process.env,
      // libfaketime first: with the C library right after it, its own start-up
      // allocations do not go through jemalloc (which Redis uses and which
      // would call back into libfaketime's clock before it is ready).
      LD_PRELOAD: `${preload.faketime} ${preload.libc}`,
      FAKETIME_TIMESTAMP_FILE: offsetFile,
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    if (stderr.length < 4_000) stderr += chunk.toString();
  });
  return { child, step, stderr: () => stderr };
}

export async function startSteppedRedis(preload: Preload): Promise<SteppedServer> {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-stepped-redis-'));
  const port = await deadPort();
  const server = launch(
    preload,
    dir,
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    undefined,
  );
  try {
    await waitPort(port, server.child, 10_000, 'redis-server under libfaketime');
  } catch (error) {
    server.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(error as Error).message}: ${server.stderr()}`);
  }
  return {
    port,
    step: server.step,
    async stop() {
      server.child.kill('SIGTERM');
      if (!(await waitExit(server.child, 5_000))) server.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startSteppedPostgres(preload: Preload, bin: string): Promise<SteppedServer> {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-stepped-pg-'));
  // PostgreSQL refuses to run as root: run it as the postgres user then.
  let user: { uid: number; gid: number } | undefined;
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    user = { uid, gid };
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const port = await deadPort();
  try {
    execFileSync(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync'], {
      stdio: 'pipe',
      timeout: 30_000,
      ...(user ?? {}),
    });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const server = launch(
    preload,
    dir,
    join(bin, 'postgres'),
    [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
    ],
    user,
  );
  try {
    await waitPort(port, server.child, 15_000, 'postgres under libfaketime');
    // Listening comes before accepting queries ("the database system is starting up").
    for (let waited = 0; ; waited += 100) {
      try {
        execFileSync(join(bin, 'pg_isready'), [
          '-h',
          '127.0.0.1',
          '-p',
          String(port),
          '-U',
          'postgres',
          '-q',
        ]);
        break;
      } catch (error) {
        if (waited >= 15_000) throw error;
        await sleep(100);
      }
    }
  } catch (error) {
    server.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(error as Error).message}: ${server.stderr()}`);
  }
  return {
    port,
    step: server.step,
    async stop() {
      server.child.kill('SIGINT'); // fast shutdown
      if (!(await waitExit(server.child, 10_000))) server.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
