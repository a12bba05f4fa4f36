// A partial upgrade can leave two physical copies of @bulwark/core in one
// process (npm nests a second copy under the package that needs another
// version). Process-wide state must not split along that line: a deadline put
// in scope through one copy must be seen by code that runs on the other.
//
// The test copies the packages into a temporary tree (copied, not linked: Node
// resolves a module from its real path, so two links to one folder would load
// one copy) and loads both copies of core in one child process.
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname;

async function copyPackage(name: string, to: string): Promise<void> {
  await cp(join(root, 'packages', name, 'src'), join(to, 'src'), { recursive: true });
  await cp(join(root, 'packages', name, 'package.json'), join(to, 'package.json'));
}

/** A tree with one @bulwark/clock and two copies of @bulwark/core, A and B. */
async function twoCopies(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bulwark-duplicates-'));
  await mkdir(join(dir, 'node_modules', '@bulwark'), { recursive: true });
  await copyPackage('clock', join(dir, 'packages', 'clock'));
  await copyPackage('core', join(dir, 'packages', 'core-a'));
  await copyPackage('core', join(dir, 'packages', 'core-b'));
  await symlink(join(dir, 'packages', 'clock'), join(dir, 'node_modules', '@bulwark', 'clock'));
  await symlink(join(root, 'node_modules', '@opentelemetry'), join(dir, 'node_modules', '@opentelemetry'));
  return dir;
}

const probe = `
const copy = async (name) => ({
  ...(await import(process.argv[1] + '/packages/' + name + '/src/index.ts')),
  ...(await import(process.argv[1] + '/packages/' + name + '/src/authoring.ts')),
});
const a = await copy('core-a');
const b = await copy('core-b');
const { systemClock, VirtualClock } = await import('@bulwark/clock');
const at = systemClock.now() + 60_000;
const result = { distinctCopies: a.runWithDeadline !== b.runWithDeadline && a.BulwarkError !== b.BulwarkError };
// Synchronously inside the scope, and after an await.
result.sync = a.runWithDeadline(at, systemClock, () => b.ambientDeadline(systemClock));
result.async = await a.runWithDeadline(at, systemClock, async () => {
  await new Promise((resolve) => setImmediate(resolve));
  return b.rootContext(systemClock).deadline;
});
// The other direction, with nesting: the earlier deadline wins across copies.
result.nested = b.runWithDeadline(at, systemClock, () =>
  a.runWithDeadline(at + 5_000, systemClock, () => b.ambientDeadline(systemClock)),
);
// A deadline set on a virtual clock in one copy is carried over to another clock.
const virtual = new VirtualClock();
result.otherClock = a.runWithDeadline(virtual.now() + 250, virtual, () => {
  const seen = b.ambientDeadline(systemClock);
  return seen === undefined ? undefined : Math.round(seen - systemClock.now());
});
result.at = at;
// Errors from one copy are recognised by the other.
result.brand = b.isBulwarkError(new a.DeadlineExceededError('deadline', 5));
console.log(JSON.stringify(result));
`;

describe('two copies of @bulwark/core in one process', () => {
  it('share the ambient deadline: a deadline put in scope through one copy is seen by the other', async () => {
    const dir = await twoCopies();
    try {
      const { stdout } = await run(
        process.execPath,
        ['--conditions=bulwark-source', '--input-type=module', '-e', probe, dir],
        {
          cwd: dir,
          timeout: 15_000,
        },
      );
      const result = JSON.parse(stdout) as Record<string, unknown>;
      expect(result.distinctCopies).toBe(true);
      expect(result.sync).toBe(result.at);
      expect(result.async).toBe(result.at);
      expect(result.nested).toBe(result.at);
      expect(result.otherClock).toBe(250);
      expect(result.brand).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
