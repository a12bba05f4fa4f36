// Splits TypeScript or JavaScript source into tokens, for the repository's
// checks (scripts/check-ambient.ts, scripts/check-packages.ts): comments are
// dropped; strings, template literals and regular expressions are recognised as
// such, so a `//` inside a string or a name inside a comment confuses nothing.

export type TokenKind = 'name' | 'private' | 'string' | 'template' | 'number' | 'regex' | 'punct';

/** One token of source text. */
export interface Token {
  readonly kind: TokenKind;
  /** Identifier or punctuator text; for strings and templates, the cooked value. */
  readonly value: string;
  readonly line: number;
  /** For a template chunk: true when the whole template has no substitution. */
  readonly plain?: boolean;
  /** For a name: true when the source spells it with a `\\u` escape. */
  readonly escaped?: boolean;
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
      const escaped = source.slice(i, k).includes('\\');
      tokens.push({
        kind: c === '#' ? 'private' : 'name',
        value: c === '#' ? `#${value}` : value,
        line,
        ...(escaped ? { escaped } : {}),
      });
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
