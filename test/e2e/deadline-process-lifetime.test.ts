// Runs tiny ESM scripts against the built packages in a child Node.js process:
// a call waiting on its deadline must keep the process alive until the
// deadline rejects it, and a deadline nobody waits on must not hold the
// process open.
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `source` as an ES module from the repository root, killed after `timeoutMs`. */
function runScript(source: string, timeoutMs: number): Promise<Exit> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', source],
      { cwd: root, timeout: timeoutMs, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        const failed = error as (Error & { code?: number | string; signal?: NodeJS.Signals }) | null;
        resolve({
          code: failed === null ? 0 : typeof failed.code === 'number' ? failed.code : null,
          signal: failed?.signal ?? null,
          stdout,
          stderr,
        });
      },
    );
  });
}

describe('deadline timers and the process lifetime', () => {
  it('rejects a call that never settles at its deadline instead of letting the process exit with an unsettled await', async () => {
    const exit = await runScript(
      `import { deadline } from '@bulwark/deadline';
       try {
         await deadline(200).execute(() => new Promise(() => {}));
         console.log('resolved');
       } catch (error) {
         console.log(error.code);
       }`,
      20_000,
    );
    expect(exit.stderr).toBe('');
    expect(exit.stdout.trim()).toBe('ERR_DEADLINE_EXCEEDED');
    expect(exit.code).toBe(0);
  });

  it('does the same for a per-attempt timeout inside a retry', async () => {
    const exit = await runScript(
      `import { pipeline } from '@bulwark/core';
       import { timeout } from '@bulwark/deadline';
       import { constant, retry } from '@bulwark/retry';
       let attempts = 0;
       try {
         await pipeline(retry({ maxAttempts: 2, backoff: constant(10) }), timeout(100))
           .execute(() => { attempts++; return new Promise(() => {}); });
       } catch (error) {
         console.log(error.code, attempts);
       }`,
      20_000,
    );
    expect(exit.stderr).toBe('');
    expect(exit.stdout.trim()).toBe('ERR_DEADLINE_EXCEEDED 2');
    expect(exit.code).toBe(0);
  });

  it('lets the process exit at once after a call finished well before its long deadline', async () => {
    // A minute-long deadline that kept the process alive would run into the kill below.
    const exit = await runScript(
      `import { deadline, Deadline } from '@bulwark/deadline';
       console.log(await deadline(60_000).execute(async () => 'done'));
       // A signal nobody waits on does not hold the process either (like AbortSignal.timeout()).
       Deadline.after(60_000).signal;`,
      15_000,
    );
    expect(exit.signal).toBeNull();
    expect(exit.stderr).toBe('');
    expect(exit.stdout.trim()).toBe('done');
    expect(exit.code).toBe(0);
  });
});
