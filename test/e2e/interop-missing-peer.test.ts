// Loads @bulwark/interop in a child process from a copy of the packages that
// has neither opossum nor p-retry next to it: the subpath entries must fail
// with an error that names the missing peer, the main entry must still load.
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname;
const PACKAGES = ['clock', 'core', 'circuit-breaker', 'retry', 'deadline', 'interop'];

async function isolatedCopy(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bulwark-interop-'));
  await mkdir(join(dir, 'node_modules', '@bulwark'), { recursive: true });
  for (const name of PACKAGES) {
    // Copied, not linked: resolution starts from a file's real path, and the
    // real checkout has opossum and p-retry installed.
    await cp(join(root, 'packages', name, 'src'), join(dir, 'packages', name, 'src'), { recursive: true });
    await cp(join(root, 'packages', name, 'package.json'), join(dir, 'packages', name, 'package.json'));
    await symlink(join(dir, 'packages', name), join(dir, 'node_modules', '@bulwark', name));
  }
  // Every other installed package is linked as it is, so only the two peers are missing.
  for (const entry of await readdir(join(root, 'node_modules'))) {
    if (entry.startsWith('.') || entry === '@bulwark' || entry === 'opossum' || entry === 'p-retry') continue;
    await symlink(join(root, 'node_modules', entry), join(dir, 'node_modules', entry));
  }
  return dir;
}

const probe = `
const results = {};
for (const entry of ['@bulwark/interop', '@bulwark/interop/opossum', '@bulwark/interop/p-retry']) {
  try {
    const m = await import(entry);
    results[entry] = { loaded: Object.keys(m).length };
  } catch (e) {
    results[entry] = { code: e.code, packageName: e.packageName, message: e.message, cause: e.cause?.code };
  }
}
const { createRequire } = await import('node:module');
const require = createRequire(process.cwd() + '/');
try {
  require('@bulwark/interop/opossum');
  results.require = 'loaded';
} catch (e) {
  results.require = e.code;
}
console.log(JSON.stringify(results));
`;

describe('@bulwark/interop without its optional peers', () => {
  it('names the missing peer when a subpath entry is imported or required, and the main entry still loads', async () => {
    const dir = await isolatedCopy();
    try {
      const { stdout } = await run(
        process.execPath,
        ['--conditions=bulwark-source', '--input-type=module', '-e', probe],
        { cwd: dir, timeout: 15_000 },
      );
      const results = JSON.parse(stdout.trim().split('\n').pop()!);
      expect(results['@bulwark/interop'].loaded).toBeGreaterThan(0);
      expect(results['@bulwark/interop/opossum']).toEqual({
        code: 'ERR_MISSING_PEER_DEPENDENCY',
        packageName: 'opossum',
        message: expect.stringContaining('npm install opossum'),
        cause: 'MODULE_NOT_FOUND',
      });
      expect(results['@bulwark/interop/p-retry']).toMatchObject({
        code: 'ERR_MISSING_PEER_DEPENDENCY',
        packageName: 'p-retry',
      });
      expect(results.require).toBe('ERR_MISSING_PEER_DEPENDENCY');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
