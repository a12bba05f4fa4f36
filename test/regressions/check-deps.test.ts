// scripts/check-deps.ts enforces the dependency rule: a package imports only
// packages below it (module -> module only where allow-listed), and its
// package.json dependencies, tsconfig references and imports agree.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { checkDeps } from '../../scripts/check-deps.ts';

let dir: string | undefined;

afterEach(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

interface Pkg {
  readonly deps?: readonly string[];
  readonly refs?: readonly string[];
  readonly imports?: readonly string[];
}

/** A repository of packages: each directory with its internal deps, references and imports. */
async function repo(packages: Record<string, Pkg>): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'bulwark-check-deps-'));
  for (const [name, p] of Object.entries(packages)) {
    const at = join(dir, 'packages', name);
    await mkdir(join(at, 'src'), { recursive: true });
    const dependencies = Object.fromEntries((p.deps ?? []).map((d) => [`@bulwark/${d}`, '^0.1.0']));
    await writeFile(join(at, 'package.json'), JSON.stringify({ name: `@bulwark/${name}`, dependencies }));
    await writeFile(
      join(at, 'tsconfig.json'),
      `{\n  // a comment, as tsconfig files allow\n  "references": ${JSON.stringify((p.refs ?? p.deps ?? []).map((d) => ({ path: `../${d}` })))},\n}\n`,
    );
    const source = (p.imports ?? p.deps ?? [])
      .map((d, i) => `import { x${i} } from '@bulwark/${d}';`)
      .join('\n');
    await writeFile(join(at, 'src', 'index.ts'), `${source}\nexport const y = 1;\n`);
  }
  return dir;
}

const base: Record<string, Pkg> = {
  clock: {},
  core: { deps: ['clock'] },
  retry: { deps: ['clock', 'core'] },
  hedging: { deps: ['core', 'retry'] },
  fetch: { deps: ['core', 'retry'] },
};

describe('check-deps', () => {
  it('accepts packages that import only lower layers and allow-listed module edges', async () => {
    expect(checkDeps(await repo(base))).toEqual([]);
  });

  it('catches core importing a module, with the layers named', async () => {
    const root = await repo({ ...base, core: { deps: ['clock', 'retry'] } });
    expect(checkDeps(root)).toContain(
      'packages/core: depends on @bulwark/retry (core may not depend on modules)',
    );
  });

  it('catches a module importing another module that is not allow-listed', async () => {
    const root = await repo({ ...base, retry: { deps: ['clock', 'core', 'hedging'] } });
    const problems = checkDeps(root);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^packages\/retry: depends on @bulwark\/hedging \(both are modules; list "retry -> hedging"/,
    );
  });

  it('catches an import missing from package.json, an unused dependency and disagreeing references', async () => {
    const root = await repo({
      ...base,
      retry: { deps: ['clock'], refs: ['clock', 'core'], imports: ['core'] },
      fetch: { deps: ['core', 'retry'], refs: ['core'], imports: ['core', 'retry'] },
    });
    expect(checkDeps(root).sort()).toEqual(
      [
        'packages/retry/src/index.ts: imports @bulwark/core, not in packages/retry/package.json dependencies',
        'packages/retry/package.json: depends on @bulwark/clock, which src/ never imports',
        'packages/retry/tsconfig.json: references ../core, not a dependency in package.json',
        'packages/fetch/tsconfig.json: no reference to ../retry, a dependency',
      ].sort(),
    );
  });

  it('catches a package in no layer', async () => {
    const root = await repo({ ...base, mystery: { deps: ['core'] } });
    expect(checkDeps(root)).toEqual([
      'packages/mystery: in no layer; add it to LAYERS in scripts/check-deps.ts',
    ]);
  });

  it('finds no violation in this repository', () => {
    expect(checkDeps(fileURLToPath(new URL('../..', import.meta.url)))).toEqual([]);
  });
});
