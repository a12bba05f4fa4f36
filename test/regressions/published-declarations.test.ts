// Published .d.ts files once carried bulwark's `_`-prefixed internals
// (`_release`, `_report`, `_onInject`, …) for every user to call, and no report
// showed a change to a package's public API in review.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkReports, renderReport, statements } from '../../scripts/api-report.ts';
import { underscoreMembers } from '../../scripts/check-packages.ts';

const repo = new URL('../..', import.meta.url).pathname;

function tree(files: Record<string, string>): { root: string; remove(): void } {
  const root = mkdtempSync(join(tmpdir(), 'published-declarations-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}

describe('published declarations', () => {
  it('leave out @internal members when built with the packages’ tsconfig (tsc -b, TypeScript 7)', () => {
    const t = tree({
      'package.json': JSON.stringify({ type: 'module' }),
      'tsconfig.json': JSON.stringify({
        extends: join(repo, 'tsconfig.base.json'),
        compilerOptions: { rootDir: 'src', outDir: 'dist', types: [] },
        include: ['src'],
      }),
      'src/index.ts': [
        'export class Hub {',
        '  /** @internal */',
        '  _unsubscribe(): void {}',
        '  #count = 0;',
        '  emit(): number {',
        '    return this.#count;',
        '  }',
        '}',
        '',
      ].join('\n'),
    });
    try {
      const run = spawnSync(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-b', t.root], {
        encoding: 'utf8',
      });
      expect(run.status, run.stdout + run.stderr).toBe(0);
      const dts = readFileSync(join(t.root, 'dist/index.d.ts'), 'utf8');
      expect(dts).toContain('emit(): number;');
      expect(dts).not.toContain('_unsubscribe');
      expect(underscoreMembers(dts)).toEqual([]);
    } finally {
      t.remove();
    }
  });

  it('are checked for `_`-prefixed members and exports, whatever their modifiers', () => {
    const dts = [
      'export declare class Permit {',
      '    _release(kind: number): void;',
      '    readonly _onInject: EventHub<E>;',
      '    private _state;',
      '    static _make<T>(): T;',
      '    get_value(): number;',
      '    readonly size: number;',
      '}',
      'export declare function _helper(): void;',
      'export declare const name_with_underscore: 1;',
    ].join('\n');
    expect(underscoreMembers(dts)).toEqual([
      '2: _release',
      '3: _onInject',
      '4: _state',
      '5: _make',
      '9: _helper',
    ]);
  });
});

describe('the API report', () => {
  const pkg = (types: string) => ({
    'packages/a/package.json': JSON.stringify({
      name: '@x/a',
      exports: {
        '.': { types: './dist/index.d.ts', default: './dist/index.js' },
        './authoring': { types: './dist/authoring.d.ts', default: './dist/authoring.js' },
      },
    }),
    'packages/a/dist/index.d.ts': "export { b, type A } from './a.ts';\nexport { Core } from '@x/core';\n",
    'packages/a/dist/authoring.d.ts': "export { Hub } from './a.ts';\n",
    'packages/a/dist/a.d.ts': types,
  });
  const v1 = [
    '/** A thing. */',
    'export interface A {',
    '    readonly n: number;',
    '}',
    '/** Makes one. */',
    'export declare function b(n: number): A;',
    'export declare function b(s: string): A;',
    'export declare class Hub {',
    '    emit(): void;',
    '}',
    'export declare const hidden = 1;',
  ].join('\n');

  it('lists each entry’s names with their declarations, overloads together, comments dropped', () => {
    const t = tree(pkg(v1));
    try {
      const report = renderReport(t.root, 'a')!;
      expect(report).toContain('## `@x/a`\n\n3 names.');
      expect(report).toContain('## `@x/a/authoring`\n\n1 names.');
      expect(report).toContain('interface A {\n    readonly n: number;\n}');
      expect(report).toContain('function b(n: number): A;\nfunction b(s: string): A;');
      expect(report).toContain("export { Core } from '@x/core';");
      expect(report).toContain('class Hub {\n    emit(): void;\n}');
      expect(report).not.toContain('hidden');
      expect(report).not.toContain('A thing');
    } finally {
      t.remove();
    }
  });

  it('fails the check on an unreviewed change and passes once --write has recorded it', () => {
    const t = tree(pkg(v1));
    try {
      expect(checkReports(t.root)).toHaveLength(1); // no report yet
      expect(checkReports(t.root, true)).toEqual([]);
      expect(checkReports(t.root)).toEqual([]);
      writeFileSync(
        join(t.root, 'packages/a/dist/a.d.ts'),
        v1.replace('readonly n: number;', 'readonly n: string;'),
      );
      const problems = checkReports(t.root);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain('packages/a/api.md differs from the built API');
      expect(problems[0]).toContain('-     readonly n: number;');
      expect(problems[0]).toContain('+     readonly n: string;');
    } finally {
      t.remove();
    }
  });

  it('splits a .d.ts into statements, keeping continued lines with their statement', () => {
    expect(
      statements('export type U = {\n    a: 1;\n} | {\n    b: 2;\n};\n\nexport declare const c: 1;\n'),
    ).toEqual(['export type U = {\n    a: 1;\n} | {\n    b: 2;\n};', 'export declare const c: 1;']);
  });

  it('is up to date for every package in this repository', () => {
    const built = spawnSync(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-b'], {
      cwd: repo,
      encoding: 'utf8',
    });
    expect(built.status, built.stdout).toBe(0);
    expect(checkReports(repo)).toEqual([]);
  });
});
