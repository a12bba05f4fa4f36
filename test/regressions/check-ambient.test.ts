// scripts/check-ambient.ts once matched one line at a time with regular
// expressions: an alias, a globalThis string key, a renamed import from
// node:timers, AbortSignal.timeout, process.hrtime, new Date(), a socket's
// setTimeout or a call split across lines all got past it, and it cut every
// line at `//`, even inside a string, hiding whatever followed a URL.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkAmbient, findAmbient } from '../../scripts/check-ambient.ts';

const whats = (source: string): string[] => findAmbient(source).map((f) => f.what);

describe('check-ambient flags every way of reaching ambient time or randomness', () => {
  it.each([
    ['an aliased timer', 'const later = setTimeout;\nlater(run, 10);', 'setTimeout'],
    ['a timer passed as a value', 'schedule(setInterval, 5);', 'setInterval'],
    ['a timer in shorthand', 'const timers = { setTimeout };', 'setTimeout'],
    ['globalThis member', 'globalThis.setTimeout(run, 1);', 'globalThis.setTimeout'],
    ['global member', 'global.setInterval(run, 1);', 'global.setInterval'],
    ['globalThis string key', "globalThis['setTimeout'](run, 1);", "globalThis['setTimeout']"],
    ['globalThis template key', 'globalThis[`setInterval`](run, 1);', "globalThis['setInterval']"],
    ['globalThis Date key', "globalThis['Date'].now();", "globalThis['Date']"],
    [
      'destructured from globalThis',
      'const { setTimeout: later } = globalThis;',
      'setTimeout destructured from globalThis',
    ],
    [
      'a renamed import',
      "import { setTimeout as wait } from 'node:timers/promises';",
      'module node:timers/promises',
    ],
    ['an import without node:', "import { setInterval as every } from 'timers';", 'module timers'],
    ['a re-export', "export { setTimeout } from 'node:timers';", 'module node:timers'],
    ['a require', "const { setTimeout: s } = require('timers/promises');", 'module timers/promises'],
    ['a dynamic import', "const hooks = await import('node:perf_hooks');", 'module node:perf_hooks'],
    ['AbortSignal.timeout', 'fetch(url, { signal: AbortSignal.timeout(1_000) });', 'AbortSignal.timeout'],
    ['process.hrtime', 'const t0 = process.hrtime();', 'hrtime'],
    ['process.hrtime.bigint', 'const t0 = process.hrtime.bigint();', 'hrtime'],
    ['destructured hrtime', 'const { hrtime } = process;', 'hrtime'],
    ['new Date()', 'const stamp = new Date().getTime();', 'new Date() (the current time)'],
    ['new Date without parentheses', 'const stamp = new Date;', 'new Date() (the current time)'],
    ['Date()', 'const text = Date();', 'Date() (the current time)'],
    ['new globalThis.Date()', 'const d = new globalThis.Date();', 'new Date() (the current time)'],
    ['Date.now as a value', 'const now = Date.now;', 'Date.now'],
    ['Date.now by string key', "const t = Date['now']();", 'Date.now'],
    ['Date.now on another line', 'const t = Date\n  .now();', 'Date.now'],
    ['Math.random split', 'const r = Math\n  .random();', 'Math.random'],
    ['performance.now spaced', 'const t = performance . now ( );', 'performance.now'],
    ['performance.now optional', 'const t = performance?.now();', 'performance.now'],
    ['destructured now', 'const { now } = performance;', 'now destructured from performance'],
    ['destructured random', 'const { random: r } = Math;', 'random destructured from Math'],
    ['an aliased global', 'const perf = performance;\nperf.now();', 'performance used as a value'],
    ['an aliased globalThis', 'const g = globalThis;', 'globalThis used as a value'],
    ['Temporal.Now', 'const i = Temporal.Now.instant();', 'Temporal.Now'],
    ['a socket timer', 'socket.setTimeout(5_000, () => socket.destroy());', 'setTimeout on socket'],
    ['a request timer', 'req.setTimeout(5_000);', 'setTimeout on req'],
    ['a timer on an expression', 'getSocket().setTimeout(5_000);', 'setTimeout on an expression'],
    ['a timer by string key', "socket['setTimeout'](5_000);", 'setTimeout on socket'],
    ['a call split across lines', 'setTimeout\n(\n  run,\n  10,\n);', 'setTimeout'],
    // \x7B is '{': the fixture is a template literal with a substitution.
    ['a use inside a template substitution', 'const s = `at $\x7BDate.now()} ms`;', 'Date.now'],
    ['a unicode-escaped name', 'set\\u0054imeout(run, 1);', 'setTimeout'],
    ['a call with type arguments', 'setTimeout<[]>(run, 1);', 'setTimeout'],
    ['a call with type arguments after a block', '{\n}\nsetTimeout<[number]>(run, 1, 2);', 'setTimeout'],
  ])('%s', (_, source, what) => {
    expect(whats(source)).toContain(what);
  });

  it('does not stop at // inside a string: a call after a URL on the same line is found', () => {
    const source =
      'const home = \'https://example.test/a\'; setTimeout(run, 1);\nconst x = "a//b"; Date.now();';
    expect(findAmbient(source)).toEqual([
      { line: 1, what: 'setTimeout' },
      { line: 2, what: 'Date.now' },
    ]);
  });

  it('reads malformed escapes without failing, and keeps checking after them', () => {
    const source = "const a = '\\u{zz}\\u{110000}\\xZ\\u12'; const b = `\\u{`;\nDate.now();";
    expect(findAmbient(source)).toEqual([{ line: 2, what: 'Date.now' }]);
  });

  it('reports the line of the use, counting lines inside comments, strings and templates', () => {
    const source = '/* one\n two */\nconst s = `a\nb`;\n// x\n\nMath.random();';
    expect(findAmbient(source)).toEqual([{ line: 7, what: 'Math.random' }]);
  });

  it('tells division from a regular expression, so code after a division is still checked', () => {
    expect(whats('const half = (total) / 2 / 1; Date.now();')).toEqual(['Date.now']);
    expect(whats('const ok = /setTimeout\\(/.test(text) / 1; performance.now();')).toEqual([
      'performance.now',
    ]);
  });
});

describe('check-ambient leaves alone what is not ambient time', () => {
  it.each([
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
  ])('%s', (_, source) => {
    expect(findAmbient(source)).toEqual([]);
  });
});

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

const script = new URL('../../scripts/check-ambient.ts', import.meta.url).pathname;

describe('the check-ambient command', () => {
  it('exits 1 and lists each use when package source has one, and exits 0 when it has none', () => {
    const tree = fixture();
    try {
      tree.write('packages/a/src/index.ts', 'export const ok = (clock: C) => clock.now();\n');
      const clean = spawnSync(process.execPath, [script, '--root', tree.root], { encoding: 'utf8' });
      expect(clean.status).toBe(0);
      expect(clean.stdout).toContain('check-ambient: no ambient time or randomness');

      tree.write('packages/a/src/late.ts', 'const later = setTimeout;\n');
      const dirty = spawnSync(process.execPath, [script, '--root', tree.root], { encoding: 'utf8' });
      expect(dirty.status).toBe(1);
      expect(dirty.stderr).toContain('Ambient time or randomness in package source (1):');
      expect(dirty.stderr).toContain('packages/a/src/late.ts:1: setTimeout');
    } finally {
      tree.remove();
    }
  });
});

describe('checkAmbient over a repository', () => {
  it('reports each use as file:line in package source, and skips the clock files allowed to use them', () => {
    const { root, write, remove } = fixture();
    try {
      write('packages/clock/src/system-clock.ts', 'export const now = () => performance.now();\n');
      write('packages/clock/src/random.ts', 'export const r = () => Math.random();\n');
      write('packages/pg/src/cancel.ts', '\nsocket.setTimeout(5, () => socket.destroy());\n');
      write('packages/pg/src/nested/ok.ts', 'export const x = clock.setTimeout(run, 1);\n');
      write('packages/pg/test-helper.ts', 'setTimeout(run, 1);\n');
      write('packages/empty/README.md', 'no src here\n');
      expect(checkAmbient(root)).toEqual([
        'packages/pg/src/cancel.ts:2: setTimeout on socket — take a Clock or random source instead',
      ]);
    } finally {
      remove();
    }
  });
});
