// The ambient-time lint once was one script that matched one line at a time
// with regular expressions: an alias, a globalThis string key, a renamed import
// from node:timers, AbortSignal.timeout, process.hrtime, new Date(), a socket's
// setTimeout or a call split across lines all got past it, and it cut every
// line at `//`, even inside a string, hiding whatever followed a URL. It is now
// Biome configuration (noRestrictedGlobals, noRestrictedImports and the GritQL
// plugin biome-plugins/ambient-time.grit) plus scripts/check-ambient.ts for what
// Biome cannot express; these tests run the repository's biome.json over a
// fixture tree, so each banned construct is shown caught by the mechanism named.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ALLOWED_FILES, checkAmbient, findAmbient } from '../../scripts/check-ambient.ts';
import { tokenize } from '../../scripts/tokenize.ts';

const whats = (source: string): string[] => findAmbient(source).map((f) => f.what);

/** A banned construct, and the mechanism that must catch it. */
const FLAGGED: ReadonlyArray<readonly [name: string, source: string, by: string]> = [
  ['an aliased timer', 'const later = setTimeout;\nlater(run, 10);', 'lint/style/noRestrictedGlobals'],
  ['a timer passed as a value', 'schedule(setInterval, 5);', 'lint/style/noRestrictedGlobals'],
  ['a timer in shorthand', 'const timers = { setTimeout };', 'lint/style/noRestrictedGlobals'],
  ['globalThis member', 'globalThis.setTimeout(run, 1);', 'plugin'],
  ['global member', 'global.setInterval(run, 1);', 'lint/style/noRestrictedGlobals'],
  ['globalThis string key', "globalThis['setTimeout'](run, 1);", 'plugin'],
  ['globalThis template key', 'globalThis[`setInterval`](run, 1);', 'plugin'],
  ['globalThis Date key', "globalThis['Date'].now();", 'plugin'],
  ['destructured from globalThis', 'const { setTimeout: later } = globalThis;', 'plugin'],
  [
    'a renamed import',
    "import { setTimeout as wait } from 'node:timers/promises';",
    'lint/style/noRestrictedImports',
  ],
  [
    'an import without node:',
    "import { setInterval as every } from 'timers';",
    'lint/style/noRestrictedImports',
  ],
  ['a re-export', "export { setTimeout } from 'node:timers';", 'lint/style/noRestrictedImports'],
  ['a require', "const { setTimeout: s } = require('timers/promises');", 'lint/style/noRestrictedImports'],
  ['a dynamic import', "const hooks = await import('node:perf_hooks');", 'lint/style/noRestrictedImports'],
  ['AbortSignal.timeout', 'fetch(url, { signal: AbortSignal.timeout(1_000) });', 'plugin'],
  ['process.hrtime', 'const t0 = process.hrtime();', 'plugin'],
  ['process.hrtime.bigint', 'const t0 = process.hrtime.bigint();', 'plugin'],
  ['destructured hrtime', 'const { hrtime } = process;', 'plugin'],
  ['new Date()', 'const stamp = new Date().getTime();', 'plugin'],
  ['new Date without parentheses', 'const stamp = new Date;', 'plugin'],
  ['Date()', 'const text = Date();', 'plugin'],
  ['new globalThis.Date()', 'const d = new globalThis.Date();', 'plugin'],
  ['Date.now as a value', 'const now = Date.now;', 'plugin'],
  ['Date.now by string key', "const t = Date['now']();", 'plugin'],
  ['Date.now on another line', 'const t = Date\n  .now();', 'plugin'],
  ['Math.random split', 'const r = Math\n  .random();', 'plugin'],
  ['performance.now spaced', 'const t = performance . now ( );', 'lint/style/noRestrictedGlobals'],
  ['performance.now optional', 'const t = performance?.now();', 'lint/style/noRestrictedGlobals'],
  ['destructured now', 'const { now } = performance;', 'lint/style/noRestrictedGlobals'],
  ['destructured random', 'const { random: r } = Math;', 'plugin'],
  ['an aliased global', 'const perf = performance;\nperf.now();', 'lint/style/noRestrictedGlobals'],
  ['an aliased globalThis', 'const g = globalThis;', 'plugin'],
  ['Temporal.Now', 'const i = Temporal.Now.instant();', 'lint/style/noRestrictedGlobals'],
  ['a socket timer', 'socket.setTimeout(5_000, () => socket.destroy());', 'plugin'],
  ['a request timer', 'req.setTimeout(5_000);', 'plugin'],
  ['a timer on an expression', 'getSocket().setTimeout(5_000);', 'plugin'],
  ['a timer by string key', "socket['setTimeout'](5_000);", 'plugin'],
  ['a call split across lines', 'setTimeout\n(\n  run,\n  10,\n);', 'lint/style/noRestrictedGlobals'],
  // \x7B is '{': the fixture is a template literal with a substitution.
  ['a use inside a template substitution', 'const s = `at $\x7BDate.now()} ms`;', 'plugin'],
  ['a unicode-escaped name', 'set\\u0054imeout(run, 1);', 'check-ambient'],
  ['a call with type arguments', 'setTimeout<[]>(run, 1);', 'lint/style/noRestrictedGlobals'],
  [
    'a call with type arguments after a block',
    '{\n}\nsetTimeout<[number]>(run, 1, 2);',
    'lint/style/noRestrictedGlobals',
  ],
];

/** Code that is not ambient time: nothing may flag it. */
const ALLOWED: ReadonlyArray<readonly [name: string, source: string]> = [
  ['comments', '// setTimeout(run, 1)\n/* Date.now() and Math.random() */'],
  ['strings', 'const s = \'Date.now()\'; const t = "setTimeout(";'],
  ['template text', 'const s = `call setTimeout, then Date.now()`;'],
  ['a regular expression', 'const re = /setTimeout\\(|Date\\.now/;'],
  ['the injected clock', 'clock.setTimeout(run, 1);\nthis.#clock.setTimeout(run, 1);'],
  ['a clock in a context or options', 'ctx.clock.setTimeout(run, 1);\noptions.clock?.setTimeout(run, 1);'],
  ['the system clock by name', 'systemClock.setTimeout(run, 1);'],
  ['a check for the method', "typeof options.clock.setTimeout === 'function';"],
  ['an interface member', 'interface Clock {\n  setTimeout(callback: () => void, ms: number): Timer;\n}'],
  [
    'a class method',
    'class Fake {\n  setTimeout(callback: () => void, ms: number): Timer {\n    return t;\n  }\n}',
  ],
  ['an optional member in a type literal', 'const c = o as { now?: unknown; setTimeout?: unknown };'],
  ['an object key', 'const clock = { now: () => 0, setTimeout: fake };'],
  ['a Date built from a given instant', 'const at = new Date(ms).toISOString();'],
  ['parsing a date', 'const at = Date.parse(text);'],
  [
    'Date as a type',
    'interface E { readonly at: Date; readonly seen?: Date | undefined }\nx instanceof Date;',
  ],
  ['other Math', 'const m = Math.max(1, Math.floor(2.5));'],
  ['setImmediate and queueMicrotask', 'setImmediate(resolve);\nqueueMicrotask(run);'],
  ['globalThis for other things', '(globalThis as G)[KEY];\nglobalThis.fetch(input);'],
  ['a private field named like a timer', 'this.#setTimeout = 1;'],
  [
    'a generic method declaration',
    'class Fake {\n  setTimeout<T>(callback: () => T, ms: number): Timer {\n    return t;\n  }\n}',
  ],
  ['a property named hrtimeish', 'const o = { hrtimer: 1 };'],
];

const URL_THEN_CALLS =
  'const home = \'https://example.test/a\'; setTimeout(run, 1);\nconst x = "a//b"; Date.now();';

/** A temporary tree laid out like the repository; removed by `remove()`. */
function fixture(): { root: string; write(path: string, text: string): void; remove(): void } {
  const root = mkdtempSync(join(tmpdir(), 'check-ambient-'));
  return {
    root,
    write(path, text) {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), text);
    },
    remove() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

const repo = new URL('../..', import.meta.url).pathname;
/** The Biome diagnostics that belong to the ambient-time lint (other rules also run on the fixtures). */
const AMBIENT_RULES = new Set(['lint/style/noRestrictedGlobals', 'lint/style/noRestrictedImports', 'plugin']);

/** One finding: its line and the mechanism that reported it (a Biome category, or `check-ambient`). */
interface Caught {
  readonly line: number;
  readonly by: string;
}

/**
 * Lints `files` (repository-relative paths) in a fixture tree with the
 * repository's biome.json and GritQL plugin, then with check-ambient, as
 * `npm run lint` does; returns the findings of each file.
 */
function lintTree(files: ReadonlyMap<string, string>): Map<string, Caught[]> {
  const tree = fixture();
  try {
    const config = JSON.parse(readFileSync(join(repo, 'biome.json'), 'utf8')) as Record<string, unknown>;
    delete config.$schema;
    tree.write('biome.json', JSON.stringify(config));
    mkdirSync(join(tree.root, 'biome-plugins'));
    copyFileSync(
      join(repo, 'biome-plugins/ambient-time.grit'),
      join(tree.root, 'biome-plugins/ambient-time.grit'),
    );
    for (const [path, text] of files) tree.write(path, text);
    const run = spawnSync(
      join(repo, 'node_modules/.bin/biome'),
      ['lint', '--reporter=json', '--max-diagnostics=10000', 'packages'],
      { cwd: tree.root, encoding: 'utf8' },
    );
    const report = JSON.parse(run.stdout) as {
      diagnostics: { category: string; location: { path: string; start: { line: number } } }[];
    };
    const found = new Map<string, Caught[]>([...files.keys()].map((path) => [path, []]));
    for (const d of report.diagnostics)
      if (AMBIENT_RULES.has(d.category))
        found.get(d.location.path)?.push({ line: d.location.start.line, by: d.category });
    for (const [path, text] of files)
      if (!ALLOWED_FILES.has(path))
        for (const f of findAmbient(text)) found.get(path)!.push({ line: f.line, by: 'check-ambient' });
    return found;
  } finally {
    tree.remove();
  }
}

const sources = new Map<string, string>();
const fileOf = (source: string): string => {
  const path = `packages/a/src/case-${sources.size}.ts`;
  sources.set(path, source);
  return path;
};
const flaggedFiles = FLAGGED.map(([, source]) => fileOf(source));
const allowedFiles = ALLOWED.map(([, source]) => fileOf(source));
const urlFile = fileOf(URL_THEN_CALLS);
const CLOCK_FILES: ReadonlyMap<string, string> = new Map([
  ['packages/clock/src/system-clock.ts', 'export const now = () => performance.now() + Date.now();\n'],
  ['packages/clock/src/random.ts', 'export const r = () => Math.random();\n'],
  ['packages/clock/src/virtual-clock.ts', 'export const leak = () => Date.now();\n'],
]);
let results = new Map<string, Caught[]>();
beforeAll(() => {
  results = lintTree(new Map([...sources, ...CLOCK_FILES]));
}, 60_000);

describe('the ambient-time lint (Biome rules, the GritQL plugin, check-ambient) flags every way of reaching ambient time or randomness', () => {
  it.each(FLAGGED.map(([name, , by], i) => [name, by, flaggedFiles[i]!] as const))(
    '%s (caught by %s)',
    (_, by, file) => {
      expect(results.get(file)!.map((c) => c.by)).toContain(by);
    },
  );

  it('catches globals the plugin cannot see as values: an arrow body, an operand, a spread, a later argument', () => {
    expect(whats('const d = () => Date;')).toEqual(['Date used as a value']);
    expect(whats('const m = custom ?? Math;')).toEqual(['Math used as a value']);
    expect(whats('f(...performance);')).toEqual(['performance used as a value']);
    expect(whats('f(a, globalThis);')).toEqual(['globalThis used as a value']);
  });

  it('does not stop at // inside a string: a call after a URL on the same line is found', () => {
    expect([...results.get(urlFile)!].sort((a, b) => a.line - b.line)).toEqual([
      { line: 1, by: 'lint/style/noRestrictedGlobals' },
      { line: 2, by: 'plugin' },
    ]);
  });

  it('exempts only the system clock and the default random source, not the rest of @bulwark/clock', () => {
    expect(results.get('packages/clock/src/system-clock.ts')).toEqual([]);
    expect(results.get('packages/clock/src/random.ts')).toEqual([]);
    expect(results.get('packages/clock/src/virtual-clock.ts')).toEqual([{ line: 1, by: 'plugin' }]);
  });
});

describe('the ambient-time lint leaves alone what is not ambient time', () => {
  it.each(ALLOWED.map(([name], i) => [name, allowedFiles[i]!] as const))('%s', (_, file) => {
    expect(results.get(file)).toEqual([]);
  });
});

describe('tokenize, which check-ambient reads', () => {
  it('reads malformed escapes without failing, and keeps reading after them', () => {
    const source = "const a = '\\u{zz}\\u{110000}\\xZ\\u12'; const b = `\\u{`;\nDate.now();";
    expect(tokenize(source).filter((t) => t.kind === 'name' && t.value === 'Date')).toEqual([
      { kind: 'name', value: 'Date', line: 2 },
    ]);
    expect(findAmbient(source)).toEqual([]);
  });

  it('reports the line of a name, counting lines inside comments, strings and templates', () => {
    const source = '/* one\n two */\nconst s = `a\nb`;\n// x\n\nMath.random();';
    expect(tokenize(source).find((t) => t.value === 'Math')?.line).toBe(7);
  });

  it('tells division from a regular expression, so code after a division is still read', () => {
    const names = (source: string): string[] =>
      tokenize(source)
        .filter((t) => t.kind === 'name')
        .map((t) => t.value);
    expect(names('const half = (total) / 2 / 1; Date.now();')).toEqual([
      'const',
      'half',
      'total',
      'Date',
      'now',
    ]);
    expect(tokenize('const ok = /setTimeout\\(/.test(text) / 1; x;').map((t) => t.kind)).toEqual([
      'name',
      'name',
      'punct',
      'regex',
      'punct',
      'name',
      'punct',
      'name',
      'punct',
      'punct',
      'number',
      'punct',
      'name',
      'punct',
    ]);
  });

  it('marks a name spelled with a unicode escape, and check-ambient fails it', () => {
    expect(tokenize('set\\u0054imeout(run, 1);')[0]).toEqual({
      kind: 'name',
      value: 'setTimeout',
      line: 1,
      escaped: true,
    });
    expect(whats('const \\u0061 = 1;')).toEqual(['a written with an escape']);
  });
});

const script = new URL('../../scripts/check-ambient.ts', import.meta.url).pathname;

describe('the check-ambient command', () => {
  it('exits 1 and lists each use when package source has one, and exits 0 when it has none', () => {
    const tree = fixture();
    try {
      tree.write('packages/a/src/index.ts', 'export const ok = (clock: C) => clock.now();\n');
      const clean = spawnSync(process.execPath, [script, '--root', tree.root], { encoding: 'utf8' });
      expect(clean.status).toBe(0);
      expect(clean.stdout).toContain('check-ambient: no escaped names or aliased globals');

      tree.write('packages/a/src/late.ts', 'set\\u0054imeout(run, 1);\n');
      const dirty = spawnSync(process.execPath, [script, '--root', tree.root], { encoding: 'utf8' });
      expect(dirty.status).toBe(1);
      expect(dirty.stderr).toContain('Ambient time or randomness in package source (1):');
      expect(dirty.stderr).toContain('packages/a/src/late.ts:1: setTimeout written with an escape');
    } finally {
      tree.remove();
    }
  });
});

describe('checkAmbient over a repository', () => {
  it('reports each use as file:line in package source, and skips the clock files allowed to use them', () => {
    const { root, write, remove } = fixture();
    try {
      write('packages/clock/src/system-clock.ts', 'export const p = () => performance;\n');
      write('packages/clock/src/random.ts', 'export const m = () => Math;\n');
      write('packages/pg/src/cancel.ts', '\nconst d = () => Date;\n');
      write('packages/pg/src/nested/ok.ts', 'export const x = clock.setTimeout(run, 1);\n');
      write('packages/pg/test-helper.ts', 'const d = () => Date;\n');
      write('packages/empty/README.md', 'no src here\n');
      expect(checkAmbient(root)).toEqual([
        'packages/pg/src/cancel.ts:2: Date used as a value — take a Clock or random source instead',
      ]);
    } finally {
      remove();
    }
  });
});
