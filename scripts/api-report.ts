// The API report of each package: packages/<name>/api.md lists, for every
// entry of its `exports` map (`.`, `./authoring`), each exported name with its
// declaration as the built .d.ts gives it (comments dropped, `export` and
// `declare` left out), sorted by name. A name passed through from another
// package is shown as that re-export. The report is checked in, so a change to
// the public API shows up in review as a change to api.md.
//
//   node scripts/api-report.ts           # check (reads dist/: build first); lint runs this
//   node scripts/api-report.ts --write   # rewrite the reports after reviewing the change
//
// The check regenerates every report in memory and fails, showing the lines
// that differ, when one differs from the file on disk.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** `text` without comments; strings and template literals are kept as written. */
export function stripComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end === -1 ? text.length : end + 2;
    } else if (c === "'" || c === '"' || c === '`') {
      let k = i + 1;
      while (k < text.length && text[k] !== c) k += text[k] === '\\' ? 2 : 1;
      out += text.slice(i, k + 1);
      i = k + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/**
 * The top-level statements of a .d.ts as tsc writes it: a statement starts on
 * a line at column 0 that does not continue the one before (`}`, `)`, `]`,
 * `|`, `&`, `>`); blank lines are dropped and trailing spaces trimmed.
 */
export function statements(dts: string): string[] {
  const result: string[] = [];
  for (const raw of stripComments(dts).split('\n')) {
    const line = raw.trimEnd();
    if (line.trim() === '') continue;
    if (result.length > 0 && (/^\s/.test(line) || /^[})\]|&>]/.test(line)))
      result[result.length - 1] += `\n${line}`;
    else result.push(line);
  }
  return result;
}

const DECLARATION =
  /^(export\s+)?(?:declare\s+)?(?:default\s+)?(?:abstract\s+)?(?:async\s+)?(?:function|class|interface|type|const|let|var|enum|namespace)\s+([\w$]+)/;
const EXPORT_LIST = /^export\s+(type\s+)?\{([^}]*)\}(?:\s+from\s+['"]([^'"]+)['"])?\s*;?$/;
const IMPORT_LIST = /^import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+['"]([^'"]+)['"]\s*;?$/;

interface ModuleInfo {
  /** Declarations by their local name (several for overloads and merged declarations). */
  readonly declarations: Map<string, string[]>;
  /** Exported name → where it comes from. */
  readonly exports: Map<string, { local: string; from?: string }>;
  /** Imported local name → its module and name there. */
  readonly imports: Map<string, { name: string; from: string }>;
}

function specifiers(list: string): { local: string; name: string }[] {
  return list
    .split(',')
    .map((s) => s.trim().replace(/^type\s+/, ''))
    .filter((s) => s !== '')
    .map((s) => {
      const [local, name] = s.split(/\s+as\s+/);
      return { local: local!, name: name ?? local! };
    });
}

function readModule(file: string): ModuleInfo {
  const info: ModuleInfo = { declarations: new Map(), exports: new Map(), imports: new Map() };
  for (const statement of statements(readFileSync(file, 'utf8'))) {
    const single = statement.replace(/\s+/g, ' ');
    if (/^export\s*\*/.test(single)) throw new Error(`${file}: \`export *\` hides what is exported`);
    const list = EXPORT_LIST.exec(single);
    if (list !== null) {
      for (const s of specifiers(list[2]!))
        info.exports.set(s.name, { local: s.local, ...(list[3] === undefined ? {} : { from: list[3] }) });
      continue;
    }
    const imported = IMPORT_LIST.exec(single);
    if (imported !== null) {
      for (const s of specifiers(imported[1]!))
        info.imports.set(s.name, { name: s.local, from: imported[2]! });
      continue;
    }
    const declared = DECLARATION.exec(statement);
    if (declared === null) continue;
    const name = declared[2]!;
    const text = statement.replace(/^export\s+/, '').replace(/^declare\s+/, '');
    info.declarations.set(name, [...(info.declarations.get(name) ?? []), text]);
    if (declared[1] !== undefined) info.exports.set(name, { local: name });
  }
  return info;
}

/** The declaration text of `name` as `file` exports it, following relative re-exports. */
function declarationOf(file: string, name: string, seen = new Set<string>()): string {
  const key = `${file}\0${name}`;
  if (seen.has(key)) throw new Error(`${file}: ${name} is re-exported in a cycle`);
  seen.add(key);
  const info = readModule(file);
  const entry = info.exports.get(name);
  if (entry === undefined) throw new Error(`${file} does not export ${name}`);
  const follow = (from: string, inner: string): string =>
    from.startsWith('.')
      ? declarationOf(resolve(dirname(file), from.replace(/\.(js|ts)$/, '.d.ts')), inner, seen)
      : `export { ${inner === name ? name : `${inner} as ${name}`} } from '${from}';`;
  if (entry.from !== undefined) return follow(entry.from, entry.local);
  const local = info.declarations.get(entry.local);
  if (local !== undefined) return local.join('\n');
  const imported = info.imports.get(entry.local);
  if (imported !== undefined) return follow(imported.from, imported.name);
  throw new Error(`${file}: no declaration of ${entry.local}`);
}

/** The report of the package in `packages/<dir>`, or undefined for a private package. */
export function renderReport(root: string, dir: string): string | undefined {
  const at = join(root, 'packages', dir);
  const manifest = JSON.parse(readFileSync(join(at, 'package.json'), 'utf8')) as {
    name: string;
    private?: boolean;
    exports?: Record<string, string | Record<string, string>>;
  };
  if (manifest.private === true) return undefined;
  const lines = [
    `# API report: ${manifest.name}`,
    '',
    'Generated by `node scripts/api-report.ts --write` from the built declarations;',
    '`npm run lint` fails when they differ from this file. Review the change, then regenerate.',
  ];
  for (const [entry, target] of Object.entries(manifest.exports ?? {})) {
    if (typeof target === 'string' || target.types === undefined) continue;
    const file = join(at, target.types);
    if (!existsSync(file)) throw new Error(`${manifest.name}: ${target.types} is missing (build first)`);
    const names = [...readModule(file).exports.keys()].sort((a, b) => a.localeCompare(b));
    const specifier = entry === '.' ? manifest.name : `${manifest.name}/${entry.slice(2)}`;
    lines.push('', `## \`${specifier}\``, '', `${names.length} names.`, '', '```ts');
    names.forEach((name, i) => {
      const text = declarationOf(file, name);
      if (i > 0) lines.push('');
      if (!text.startsWith('export {') && !new RegExp(`\\b${name}\\b`).test(text.split('\n')[0]!))
        lines.push(`// exported as ${name}`);
      lines.push(text);
    });
    lines.push('```');
  }
  return `${lines.join('\n')}\n`;
}

/** The lines of `after` not in `before` (+) and of `before` not in `after` (-), at most `limit`. */
function changedLines(before: string, after: string, limit = 20): string[] {
  const a = new Set(before.split('\n'));
  const b = new Set(after.split('\n'));
  const out = [
    ...before
      .split('\n')
      .filter((l) => !b.has(l))
      .map((l) => `- ${l}`),
    ...after
      .split('\n')
      .filter((l) => !a.has(l))
      .map((l) => `+ ${l}`),
  ];
  return out.length > limit ? [...out.slice(0, limit), `… and ${out.length - limit} more`] : out;
}

/** Every stale report under `root` (with `write`, rewritten instead), as messages. */
export function checkReports(root: string, write = false): string[] {
  const problems: string[] = [];
  for (const dir of readdirSync(join(root, 'packages')).sort()) {
    if (!existsSync(join(root, 'packages', dir, 'package.json'))) continue;
    const text = renderReport(root, dir);
    if (text === undefined) continue;
    const path = join(root, 'packages', dir, 'api.md');
    const current = existsSync(path) ? readFileSync(path, 'utf8') : '';
    if (current === text) continue;
    if (write) writeFileSync(path, text);
    else
      problems.push(
        `packages/${dir}/api.md differs from the built API:\n${changedLines(current, text)
          .map((l) => `    ${l}`)
          .join('\n')}`,
      );
  }
  return problems;
}

const meta = import.meta as { main?: boolean };
const invoked =
  meta.main ?? (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url));
if (invoked) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const write = process.argv.includes('--write');
  const problems = checkReports(root, write);
  if (problems.length > 0) {
    console.error(
      `api-report: ${problems.length} unreviewed API changes (review, then: node scripts/api-report.ts --write)`,
    );
    for (const p of problems) console.error(`  ${p}`);
    process.exit(1);
  }
  console.log(
    write ? 'api-report: reports written' : 'api-report: every packages/*/api.md matches the built API',
  );
}
