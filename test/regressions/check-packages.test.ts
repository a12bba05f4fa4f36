// scripts/check-packages.ts guards what the published packages promise: a
// built file that imports an undeclared package (strict installers such as
// pnpm then fail), exact internal pins (a partial upgrade nests copies), a
// missing LICENSE, README links that break on a registry page.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bareImports, checkPackages } from '../../scripts/check-packages.ts';
import { publishedManifest } from '../../scripts/pack-manifest.ts';

const REPO = 'git+https://github.com/example/project.git';
let dir: string | undefined;

afterEach(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A one-package repository; `edit` changes the package before it is written. */
async function tree(edit: (files: Record<string, string>) => void = () => {}): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'bulwark-check-packages-'));
  const manifest = {
    name: '@x/a',
    version: '1.2.0',
    description: 'a',
    keywords: ['a'],
    license: 'MIT',
    repository: { type: 'git', url: REPO, directory: 'packages/a' },
    homepage: 'https://github.com/example/project/tree/main/packages/a#readme',
    bugs: { url: 'https://github.com/example/project/issues' },
    type: 'module',
    exports: {
      '.': { 'bulwark-source': './src/index.ts', types: './dist/index.d.ts', default: './dist/index.js' },
    },
    files: ['dist/**/*.js', 'dist/**/*.js.map', 'dist/**/*.d.ts'],
    scripts: {
      prepack: 'node ../../scripts/pack-manifest.ts strip',
      postpack: 'node ../../scripts/pack-manifest.ts restore',
    },
    publishConfig: { access: 'public' },
    dependencies: { '@x/b': '^0.3.0', ulid: '^3.0.0' },
  };
  const b = {
    ...manifest,
    name: '@x/b',
    version: '0.3.0',
    repository: { ...manifest.repository, directory: 'packages/b' },
    homepage: 'https://github.com/example/project/tree/main/packages/b#readme',
    dependencies: undefined,
  };
  const files: Record<string, string> = {
    'package.json': JSON.stringify({ private: true, license: 'MIT', repository: { url: REPO } }),
    LICENSE: 'MIT License\n',
    'docs/a.md': '# a\n',
    'packages/a/package.json': JSON.stringify(manifest),
    'packages/a/tsconfig.json': JSON.stringify({ references: [{ path: '../b' }] }),
    'packages/a/LICENSE': 'MIT License\n',
    'packages/a/README.md':
      '# a\n\n```sh\nnpm install @x/a\n```\n\nSee [a](https://github.com/example/project/blob/main/docs/a.md).\n',
    'packages/a/src/index.ts': "import { b } from '@x/b';\nexport const a = b;\n",
    'packages/a/dist/index.js':
      "// import x from 'in-a-comment';\nimport { b } from '@x/b';\nimport { ulid } from 'ulid';\nimport { x } from 'node:fs';\nexport const a = [b, ulid, x];\n",
    'packages/a/dist/index.d.ts': "export declare const a: import('@x/b').B;\n",
    'packages/b/package.json': JSON.stringify(b),
    'packages/b/tsconfig.json': '{}',
    'packages/b/LICENSE': 'MIT License\n',
    'packages/b/README.md': '# b\n\n```sh\nnpm install @x/b\n```\n',
    'packages/b/src/index.ts': 'export const b = 1;\n',
    'packages/b/dist/index.js': 'export const b = 1;\n',
    'packages/b/dist/index.d.ts': 'export declare const b = 1;\n',
  };
  edit(files);
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  return dir;
}

describe('check-packages', () => {
  it('passes a package that declares, licenses and links everything it should', async () => {
    expect(checkPackages(await tree())).toEqual([]);
  });

  it('reports a bare import in a built .d.ts that is neither a dependency nor a peer dependency', async () => {
    const root = await tree((f) => {
      f['packages/a/dist/index.d.ts'] = "export declare const a: import('@x/undeclared').T;\n";
    });
    expect(checkPackages(root)).toEqual([
      'packages/a: packages/a/dist/index.d.ts imports @x/undeclared, which is neither a dependency nor a peer dependency',
    ]);
  });

  it('reports exact internal pins, a missing LICENSE and a relative README link, and --write fixes them', async () => {
    const root = await tree((f) => {
      f['packages/a/package.json'] = f['packages/a/package.json']!.replace('"^0.3.0"', '"0.3.0"');
      f['packages/a/README.md'] = '# a\n\n```sh\nnpm install @x/a\n```\n\nSee [a](../../docs/a.md).\n';
      f['packages/a/LICENSE'] = '';
    });
    const problems = checkPackages(root);
    expect(problems).toContain(
      'packages/a/package.json: dependencies should be {"@x/b":"^0.3.0","ulid":"^3.0.0"} (run --write)',
    );
    expect(problems).toContain("packages/a/LICENSE: missing or not the repository's LICENSE (run --write)");
    expect(problems).toContain(
      'packages/a/README.md: relative link ../../docs/a.md breaks outside the repository (run --write)',
    );
    expect(checkPackages(root, true)).toEqual([]);
    expect(await readFile(join(root, 'packages/a/README.md'), 'utf8')).toContain(
      '(https://github.com/example/project/blob/main/docs/a.md)',
    );
  });

  it('reports a README example import that no npm install line names', async () => {
    const root = await tree((f) => {
      f['docs/examples/a.ts'] = "import { a } from '@x/a';\nimport { b } from '@x/b';\nexport { a, b };\n";
      f['packages/a/README.md'] =
        '# a\n\n```sh\nnpm install @x/a\n```\n\n<!-- example: docs/examples/a.ts -->\n';
    });
    expect(checkPackages(root)).toEqual([
      'packages/a/README.md: its example docs/examples/a.ts imports @x/b, which no `npm install` line names',
    ]);
  });

  it('finds static, dynamic, type and require imports, and none in comments or other strings', () => {
    const source = [
      "import a from 'a';",
      "export { b } from '@s/b/sub';",
      "import 'side-effect';",
      "const c = await import('c');",
      "type D = import('d').D;",
      "const e = require('e');",
      "// import x from 'x';",
      "/** import { y } from 'y'; */",
      "const s = 'from z';",
      "const f = ['from', 'w'];",
    ].join('\n');
    expect([...bareImports(source)].sort()).toEqual(['@s/b/sub', 'a', 'c', 'd', 'e', 'side-effect']);
  });

  it('publishes the manifest without the in-repo source condition and scripts', () => {
    const published = publishedManifest({
      name: '@x/a',
      scripts: { prepack: 'x' },
      exports: {
        '.': { 'bulwark-source': './src/index.ts', types: './dist/index.d.ts', default: './dist/index.js' },
        './package.json': './package.json',
      },
    });
    expect(published).toEqual({
      name: '@x/a',
      exports: {
        '.': { types: './dist/index.d.ts', default: './dist/index.js' },
        './package.json': './package.json',
      },
    });
  });
});
