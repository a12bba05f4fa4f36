// Fails when package source reads ambient time or randomness.
//
// Every duration in bulwark is measured on an injected Clock, and jitter takes an
// injected random source. Only @bulwark/clock's system clock and default random
// source may touch the platform primitives listed below.
//
// The check tokenizes each file (comments, strings, template literals and
// regular expressions are recognised as such, so neither `//` inside a string
// nor a name inside a comment confuses it) and then looks at the token stream,
// so a use split across lines or written with odd spacing is still found.
// It flags:
//   - `Date.now`, `performance.now`, `performance.timeOrigin`, `Math.random`,
//     `AbortSignal.timeout`, `Temporal.Now`, as calls or as values (`const now =
//     Date.now`), by member access or by string key (`Date['now']`);
//   - `setTimeout` / `setInterval` used as a value or called: bare, aliased
//     (`const t = setTimeout`), through `globalThis` / `global` (member or string
//     key), and as a method of anything that is not a clock (`socket.setTimeout`
//     arms a platform timer). A Clock's setTimeout is called through a name
//     that ends in "clock" (`clock`, `this.#clock`, `ctx.clock`, `systemClock`);
//     on any other receiver, an expression included, it is flagged;
//   - `hrtime` anywhere (`process.hrtime`, `process.hrtime.bigint`, destructured);
//   - `new Date()` with no arguments and `Date()`, which read the current time
//     (`new Date(value)` only converts a given instant and is allowed);
//   - `performance`, `Date`, `Math`, `AbortSignal`, `globalThis`, `global` passed
//     or assigned as a bare value (an alias that would hide a later `.now()`);
//   - destructuring a banned member out of a global (`const { now } = performance`);
//   - any module specifier `timers`, `timers/promises`, `perf_hooks` (with or
//     without `node:`), whether imported, re-exported, required or loaded
//     with `import()`.
// Declarations named setTimeout (a Clock implementation's method or an
// interface member) and object keys are not uses. `setImmediate` and
// `queueMicrotask` are allowed: they schedule, they do not measure or delay.
//
// It is a lint against accidental and casual uses, not a sandbox: a name built
// at run time (`globalThis['set' + 'Timeout']`) or an alias passed through
// another variable is beyond it, and is left to review.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One banned use found in a source text. */
export interface AmbientFinding {
  /** 1-based line of the token that gives the use away. */
  readonly line: number;
  /** What was used, e.g. `Date.now` or `setTimeout on socket`. */
  readonly what: string;
}

/** Files that may touch the platform primitives, relative to the repository root. */
export const ALLOWED_FILES: ReadonlySet<string> = new Set([
  'packages/clock/src/system-clock.ts',
  'packages/clock/src/random.ts',
]);

type TokenKind = 'name' | 'private' | 'string' | 'template' | 'number' | 'regex' | 'punct';

/** One token of source text. */
export interface Token {
  readonly kind: TokenKind;
  /** Identifier or punctuator text; for strings and templates, the cooked value. */
  readonly value: string;
  readonly line: number;
  /** For a template chunk: true when the whole template has no substitution. */
  readonly plain?: boolean;
}

const PUNCTUATORS = [
  '>>>=',
  '...',
  '===',
  '!==',
  '**=',
  '<<=',
  '>>=',
  '>>>',
  '&&=',
  '||=',
  '??=',
  '=>',
  '==',
  '!=',
  '<=',
  '>=',
  '&&',
  '||',
  '??',
  '?.',
  '++',
  '--',
  '+=',
  '-=',
  '*=',
  '/=',
  '%=',
  '&=',
  '|=',
  '^=',
  '**',
  '<<',
  '>>',
];

/** Keywords after which a `/` starts a regular expression, not a division. */
const REGEX_AFTER_KEYWORD = new Set([
  'return',
  'typeof',
  'instanceof',
  'in',
  'of',
  'new',
  'delete',
  'void',
  'throw',
  'case',
  'do',
  'else',
  'yield',
  'await',
]);

const ID_START = /[\p{ID_Start}$_]/u;
const ID_PART = /[\p{ID_Continue}$\u200c\u200d]/u;
const NUMBER = /(?:0[xXoObB][\da-fA-F_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)n?/y;

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  n: '\n',
  r: '\r',
  t: '\t',
  b: '\b',
  f: '\f',
  v: '\v',
  0: '\0',
};

/** Reads the escape after a backslash at `i`; `end` is always past `i`. Malformed escapes read as themselves. */
function unescapeChar(text: string, i: number): { value: string; end: number } {
  const c = text[i];
  if (c === undefined) return { value: '', end: i + 1 };
  const code = (digits: string, end: number): { value: string; end: number } => {
    const n = /^[\da-fA-F]+$/.test(digits) ? Number.parseInt(digits, 16) : Number.NaN;
    return n <= 0x10ffff ? { value: String.fromCodePoint(n), end } : { value: c, end: i + 1 };
  };
  if (c === 'x') return code(text.slice(i + 1, i + 3), i + 3);
  if (c === 'u') {
    if (text[i + 1] === '{') {
      const close = text.indexOf('}', i + 2);
      return close === -1 ? { value: c, end: i + 1 } : code(text.slice(i + 2, close), close + 1);
    }
    return code(text.slice(i + 1, i + 5), i + 5);
  }
  if (c === '\r' && text[i + 1] === '\n') return { value: '', end: i + 2 };
  if (c === '\n' || c === '\r' || c === '\u2028' || c === '\u2029') return { value: '', end: i + 1 };
  return { value: SIMPLE_ESCAPES[c] ?? c, end: i + 1 };
}

/**
 * Splits TypeScript or JavaScript source into tokens, dropping whitespace and
 * comments. Strings and template chunks carry their cooked value; the code
 * inside `${...}` of a template is tokenized like any other code.
 */
export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  /** Open `{` and `${`, so a `}` knows whether it resumes a template. */
  const braces: Array<'brace' | 'template'> = [];
  let i = 0;
  let line = 1;
  const n = source.length;

  const countLines = (from: number, to: number): void => {
    for (let k = from; k < to; k++) if (source[k] === '\n') line++;
  };

  const regexAllowed = (): boolean => {
    const prev = tokens[tokens.length - 1];
    if (prev === undefined) return true;
    if (prev.kind === 'punct') return prev.value !== ')' && prev.value !== ']' && prev.value !== '}';
    if (prev.kind === 'name') return REGEX_AFTER_KEYWORD.has(prev.value);
    return false;
  };

  /** Reads template text from i (just after ` or the } closing a substitution). */
  const templateChunk = (startsTemplate: boolean): void => {
    const startLine = line;
    let value = '';
    while (i < n) {
      const c = source[i]!;
      if (c === '`') {
        i++;
        tokens.push({ kind: 'template', value, line: startLine, plain: startsTemplate });
        return;
      }
      if (c === '$' && source[i + 1] === '{') {
        i += 2;
        tokens.push({ kind: 'template', value, line: startLine, plain: false });
        braces.push('template');
        return;
      }
      if (c === '\\') {
        const { value: v, end } = unescapeChar(source, i + 1);
        countLines(i, end);
        value += v;
        i = end;
        continue;
      }
      if (c === '\n') line++;
      value += c;
      i++;
    }
    tokens.push({ kind: 'template', value, line: startLine, plain: startsTemplate });
  };

  while (i < n) {
    const c = source[i]!;
    if (c === '\n') {
      line++;
      i++;
      continue;
    }
    if (
      c === ' ' ||
      c === '\t' ||
      c === '\r' ||
      c === '\f' ||
      c === '\v' ||
      c === '\uFEFF' ||
      c === '\u00a0'
    ) {
      i++;
      continue;
    }
    if (c === '/' && source[i + 1] === '/') {
      while (i < n && source[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && source[i + 1] === '*') {
      const end = source.indexOf('*/', i + 2);
      const stop = end === -1 ? n : end + 2;
      countLines(i, stop);
      i = stop;
      continue;
    }
    if (c === '"' || c === "'") {
      const startLine = line;
      let value = '';
      i++;
      while (i < n && source[i] !== c && source[i] !== '\n') {
        if (source[i] === '\\') {
          const { value: v, end } = unescapeChar(source, i + 1);
          countLines(i, end);
          value += v;
          i = end;
        } else {
          value += source[i];
          i++;
        }
      }
      i++;
      tokens.push({ kind: 'string', value, line: startLine });
      continue;
    }
    if (c === '`') {
      i++;
      templateChunk(true);
      continue;
    }
    if (c === '}' && braces.length > 0 && braces[braces.length - 1] === 'template') {
      braces.pop();
      i++;
      templateChunk(false);
      continue;
    }
    if (c === '/' && regexAllowed()) {
      const startLine = line;
      let inClass = false;
      let k = i + 1;
      while (k < n && source[k] !== '\n') {
        const r = source[k]!;
        if (r === '\\') {
          k += 2;
          continue;
        }
        if (r === '/' && !inClass) break;
        if (r === '[') inClass = true;
        else if (r === ']') inClass = false;
        k++;
      }
      k++;
      while (k < n && ID_PART.test(source[k]!)) k++;
      tokens.push({ kind: 'regex', value: source.slice(i, k), line: startLine });
      i = k;
      continue;
    }
    if (c === '#' || ID_START.test(c) || c === '\\') {
      let k = c === '#' ? i + 1 : i;
      let value = '';
      while (k < n) {
        const r = source[k]!;
        if (r === '\\' && source[k + 1] === 'u') {
          const { value: v, end } = unescapeChar(source, k + 1);
          value += v;
          k = end;
        } else if (ID_PART.test(r)) {
          value += r;
          k++;
        } else break;
      }
      if (k === i || (c === '#' && k === i + 1)) {
        // A lone '#' (a shebang is only valid at the start) or stray backslash.
        tokens.push({ kind: 'punct', value: c, line });
        i++;
        continue;
      }
      tokens.push({ kind: c === '#' ? 'private' : 'name', value: c === '#' ? `#${value}` : value, line });
      i = k;
      continue;
    }
    if (/\d/.test(c) || (c === '.' && /\d/.test(source[i + 1] ?? ''))) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(source);
      const end = m === null ? i + 1 : i + m[0].length;
      tokens.push({ kind: 'number', value: source.slice(i, end), line });
      i = end;
      continue;
    }
    let punct = PUNCTUATORS.find((p) => source.startsWith(p, i));
    // `a?.5:b` is a conditional, not optional chaining.
    if (punct === '?.' && /\d/.test(source[i + 2] ?? '')) punct = undefined;
    const value = punct ?? c;
    if (value === '{') braces.push('brace');
    else if (value === '}') braces.pop();
    tokens.push({ kind: 'punct', value, line });
    i += value.length;
  }
  return tokens;
}

/** `receiver.member` pairs that read time, delay or randomness. */
const BANNED_MEMBERS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['Date', new Set(['now'])],
  ['performance', new Set(['now', 'timeOrigin'])],
  ['Math', new Set(['random'])],
  ['AbortSignal', new Set(['timeout'])],
  ['Temporal', new Set(['Now'])],
]);
const TIMERS = new Set(['setTimeout', 'setInterval']);
const GLOBAL_OBJECTS = new Set(['globalThis', 'global']);
/** Globals that must not be reached through `globalThis['…']`. */
const GLOBAL_NAMES = new Set([...TIMERS, ...BANNED_MEMBERS.keys()]);
/** Globals that must not be aliased as a bare value. */
const ALIASABLE = new Set(['Date', 'Math', 'performance', 'AbortSignal', 'globalThis', 'global']);
/** Members that must not be destructured out of a global. */
const DESTRUCTURED = new Set([
  ...TIMERS,
  'now',
  'random',
  'hrtime',
  'timeout',
  'timeOrigin',
  ...BANNED_MEMBERS.keys(),
]);
const DESTRUCTURE_SOURCES = new Set([...ALIASABLE, 'process']);
const MODULES = new Set(['timers', 'timers/promises', 'perf_hooks']);
/** Tokens after which a name is an object/class/interface member key. */
const KEY_PREV = new Set([
  '{',
  ',',
  ';',
  '}',
  'readonly',
  'public',
  'private',
  'protected',
  'static',
  'override',
  'declare',
  'abstract',
  'get',
  'set',
  'async',
  '*',
]);
const ALIAS_PREV = new Set(['=', '(', ',', 'return', '=>', '||', '??', '&&', '...']);
const ALIAS_NEXT = new Set([';', ',', ')', ']', '}']);

/** A receiver token that names an injected clock: `clock`, `#clock`, `systemClock`, `ctx.clock`. */
function isClockLike(token: Token | undefined): boolean {
  return (
    token !== undefined && (token.kind === 'name' || token.kind === 'private') && /clock$/i.test(token.value)
  );
}

function describeReceiver(token: Token | undefined): string {
  return token !== undefined && (token.kind === 'name' || token.kind === 'private')
    ? token.value
    : 'an expression';
}

function isDot(token: Token | undefined): boolean {
  return token?.kind === 'punct' && (token.value === '.' || token.value === '?.');
}

function is(token: Token | undefined, value: string): boolean {
  return token !== undefined && (token.kind === 'punct' || token.kind === 'name') && token.value === value;
}

/** A string or substitution-free template: a key the source spells out. */
function literalKey(token: Token | undefined): string | undefined {
  if (token === undefined) return undefined;
  if (token.kind === 'string') return token.value;
  if (token.kind === 'template' && token.plain === true) return token.value;
  return undefined;
}

/** Index of the token after the `)` matching the `(` at `open`. */
function afterParens(tokens: readonly Token[], open: number): number {
  let depth = 0;
  for (let k = open; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.kind !== 'punct') continue;
    if (t.value === '(') depth++;
    else if (t.value === ')' && --depth === 0) return k + 1;
  }
  return tokens.length;
}

/** Index of the token after the `>` matching the `<` at `open`. */
function afterTypeArguments(tokens: readonly Token[], open: number): number {
  let depth = 0;
  for (let k = open; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.kind !== 'punct') continue;
    if (t.value === '<') depth++;
    else if (t.value === '>' || t.value === '>>' || t.value === '>>>') {
      depth -= t.value.length;
      if (depth <= 0) return k + 1;
    } else if (t.value === ';' || t.value === '{' || t.value === '}') return k;
  }
  return tokens.length;
}

/** Whether the timer name at `i` declares a member (method, signature or key) rather than using it. */
function isMemberDeclaration(tokens: readonly Token[], i: number): boolean {
  const prev = tokens[i - 1];
  if (prev !== undefined && !(prev.kind === 'punct' || prev.kind === 'name')) return false;
  if (prev !== undefined && !KEY_PREV.has(prev.value)) return false;
  let k = i + 1;
  if (is(tokens[k], '?')) k++;
  if (is(tokens[k], ':')) return true;
  // A generic method's type parameters; a call with type arguments
  // (`setTimeout<[]>(run, 1)`) is told apart by what follows its parentheses.
  if (is(tokens[k], '<')) k = afterTypeArguments(tokens, k);
  const next = tokens[k];
  if (is(next, '(')) {
    const after = tokens[afterParens(tokens, k)];
    return is(after, '{') || is(after, ':');
  }
  return false;
}

/**
 * Every use of ambient time, delay or randomness in one source text. Pure: it
 * reads only its argument.
 */
export function findAmbient(source: string): AmbientFinding[] {
  const tokens = tokenize(source);
  const found: AmbientFinding[] = [];
  const seen = new Set<string>();
  const flag = (token: Token, what: string): void => {
    const key = `${token.line}\0${what}`;
    if (seen.has(key)) return;
    seen.add(key);
    found.push({ line: token.line, what });
  };

  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const prev = tokens[i - 1];
    const next = tokens[i + 1];
    const key = literalKey(t);

    if (key !== undefined) {
      const bare = key.startsWith('node:') ? key.slice(5) : key;
      if (MODULES.has(bare)) flag(t, `module ${key}`);
      // receiver['member']
      if (is(prev, '[') && is(next, ']')) {
        const receiver = tokens[i - 2];
        if (receiver !== undefined && (receiver.kind === 'name' || receiver.kind === 'private')) {
          if (BANNED_MEMBERS.get(receiver.value)?.has(key)) flag(t, `${receiver.value}.${key}`);
          if (GLOBAL_OBJECTS.has(receiver.value) && GLOBAL_NAMES.has(key))
            flag(t, `${receiver.value}['${key}']`);
          else if (TIMERS.has(key) && !isClockLike(receiver)) flag(t, `${key} on ${receiver.value}`);
        } else if (TIMERS.has(key)) {
          flag(t, `${key} by string key`);
        }
      }
      continue;
    }
    if (t.kind !== 'name') continue;
    const name = t.value;
    const member = isDot(prev);

    if (name === 'hrtime') {
      flag(t, 'hrtime');
      continue;
    }

    if (member) {
      const receiver = tokens[i - 2];
      if (receiver?.kind === 'name' && BANNED_MEMBERS.get(receiver.value)?.has(name)) {
        flag(t, `${receiver.value}.${name}`);
      }
      if (TIMERS.has(name)) {
        if (receiver?.kind === 'name' && GLOBAL_OBJECTS.has(receiver.value))
          flag(t, `${receiver.value}.${name}`);
        else if (!isClockLike(receiver)) flag(t, `${name} on ${describeReceiver(receiver)}`);
      }
    } else if (TIMERS.has(name)) {
      if (!isMemberDeclaration(tokens, i)) flag(t, name);
    }

    // Date() and new Date(), also as globalThis.Date.
    if (name === 'Date') {
      let start = i;
      if (member) {
        const receiver = tokens[i - 2];
        start = receiver?.kind === 'name' && GLOBAL_OBJECTS.has(receiver.value) ? i - 2 : -1;
      }
      if (start >= 0) {
        const before = tokens[start - 1];
        if (is(before, 'new')) {
          if (!is(next, '(') || is(tokens[i + 2], ')')) flag(t, 'new Date() (the current time)');
        } else if (is(next, '(') && !isDot(before)) {
          flag(t, 'Date() (the current time)');
        }
      }
    }

    if (!member && ALIASABLE.has(name) && prev !== undefined && ALIAS_PREV.has(prev.value)) {
      if (next === undefined || ALIAS_NEXT.has(next.value)) flag(t, `${name} used as a value`);
    }

    // const { now } = performance; const { setTimeout: later } = globalThis
    if (!member && DESTRUCTURE_SOURCES.has(name) && is(prev, '=') && is(tokens[i - 2], '}')) {
      let depth = 0;
      for (let k = i - 2; k >= 0; k--) {
        const b = tokens[k]!;
        if (is(b, '}')) depth++;
        else if (is(b, '{')) {
          if (--depth === 0) break;
        } else if (
          b.kind === 'name' &&
          DESTRUCTURED.has(b.value) &&
          (is(tokens[k - 1], '{') || is(tokens[k - 1], ','))
        ) {
          flag(b, `${b.value} destructured from ${name}`);
        }
      }
    }
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
  console.log('check-ambient: no ambient time or randomness in packages/*/src');
}
