// The part of the ambient-time lint that Biome cannot express.
//
// Every duration in bulwark is measured on an injected Clock, and jitter takes an
// injected random source; only @bulwark/clock's system-clock.ts and random.ts
// may touch the platform primitives. Most of the rule is Biome configuration
// (biome.json, an override for packages/*/src/** without those two files), run
// by `biome check`:
//   - noRestrictedGlobals: `setTimeout`, `setInterval`, `performance`, `global`,
//     `Temporal`, whether called, aliased, passed or shorthand;
//   - noRestrictedImports: `timers`, `timers/promises`, `perf_hooks` (with or
//     without `node:`), imported, re-exported, required or loaded with import();
//   - the GritQL plugin biome-plugins/ambient-time.grit: `Date.now`,
//     `Math.random`, `AbortSignal.timeout`, any `.hrtime`, `new Date()` / `new
//     Date` / `Date()`, banned members by string key (`Date['now']`), timers and
//     clocks reached through `globalThis` / `global`, `setTimeout` /
//     `setInterval` on a receiver whose text does not end in "clock" (a
//     socket's arms a platform timer), banned members destructured from a
//     global, and a global assigned, passed as an argument or returned as a value.
//
// Two things escape those, and this script checks them over the token stream:
//   - a name spelled with a `\u` escape (`set\u0054imeout`): Biome matches
//     names by their written text, so an escaped name passes every rule above.
//     Package source has no reason to escape a name, so any escaped name fails;
//   - `Date`, `Math`, `performance`, `AbortSignal`, `globalThis` or `global` as a
//     bare value where the plugin's patterns do not reach: an arrow function's
//     body (`() => Date`), an operand of `||` / `??` / `&&`, a spread, and an
//     argument after the first (`f(a, Math)`).
// It is a lint against accidental and casual uses, not a sandbox: a name built
// at run time (`globalThis['set' + 'Timeout']`) or an alias passed through
// another variable is beyond both, and is left to review.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Token, tokenize } from './tokenize.ts';

/** One use found in a source text. */
export interface AmbientFinding {
  /** 1-based line of the token that gives the use away. */
  readonly line: number;
  /** What was used, e.g. `setTimeout written with an escape`. */
  readonly what: string;
}

/** Files that may touch the platform primitives, relative to the repository root (biome.json says the same). */
export const ALLOWED_FILES: ReadonlySet<string> = new Set([
  'packages/clock/src/system-clock.ts',
  'packages/clock/src/random.ts',
]);

/** Globals that must not be aliased as a bare value. */
const ALIASABLE = new Set(['Date', 'Math', 'performance', 'AbortSignal', 'globalThis', 'global']);
const ALIAS_PREV = new Set(['=', '(', ',', 'return', '=>', '||', '??', '&&', '...']);
const ALIAS_NEXT = new Set([';', ',', ')', ']', '}']);

function isDot(token: Token | undefined): boolean {
  return token?.kind === 'punct' && (token.value === '.' || token.value === '?.');
}

/**
 * Every escaped name and every global used as a bare value in one source text.
 * Pure: it reads only its argument.
 */
export function findAmbient(source: string): AmbientFinding[] {
  const tokens = tokenize(source);
  const found: AmbientFinding[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== 'name' && t.kind !== 'private') continue;
    if (t.escaped === true) found.push({ line: t.line, what: `${t.value} written with an escape` });
    if (t.kind !== 'name' || !ALIASABLE.has(t.value)) continue;
    const prev = tokens[i - 1];
    const next = tokens[i + 1];
    if (isDot(prev) || prev === undefined || !ALIAS_PREV.has(prev.value)) continue;
    if (prev.kind === 'string' || prev.kind === 'template') continue;
    if (next === undefined || (next.kind === 'punct' && ALIAS_NEXT.has(next.value)))
      found.push({ line: t.line, what: `${t.value} used as a value` });
  }
  return found;
}

function* sourceFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* sourceFiles(path);
    else if (/\.(c|m)?(t|j)sx?$/.test(name)) yield path;
  }
}

/** Every finding in `packages/<name>/src` under `root`, as `file:line: what` lines. */
export function checkAmbient(root: string): string[] {
  const problems: string[] = [];
  for (const pkg of readdirSync(join(root, 'packages')).sort()) {
    const src = join(root, 'packages', pkg, 'src');
    try {
      statSync(src);
    } catch {
      continue;
    }
    for (const file of sourceFiles(src)) {
      const rel = relative(root, file);
      if (ALLOWED_FILES.has(rel)) continue;
      for (const { line, what } of findAmbient(readFileSync(file, 'utf8'))) {
        problems.push(`${rel}:${line}: ${what} — take a Clock or random source instead`);
      }
    }
  }
  return problems;
}

// `import.meta.main` is Node.js 24.2+ (and 22.18+); on an older 22.x it is
// undefined, and the script must still run when invoked, never pass silently.
const meta = import.meta as { main?: boolean };
const invoked =
  meta.main ?? (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url));
if (invoked) {
  // `--root <dir>` checks another tree laid out like this repository (tests use it).
  const at = process.argv.indexOf('--root');
  const root =
    at === -1 ? fileURLToPath(new URL('..', import.meta.url)) : resolve(process.argv[at + 1] ?? '.');
  const problems = checkAmbient(root);
  if (problems.length > 0) {
    console.error(`Ambient time or randomness in package source (${problems.length}):`);
    for (const p of problems) console.error(`  ${p}`);
    process.exit(1);
  }
  console.log('check-ambient: no escaped names or aliased globals in packages/*/src');
}
