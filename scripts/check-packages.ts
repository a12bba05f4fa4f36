// Checks what each package in packages/ publishes and promises to the people
// who install it:
//   - package.json carries license, repository (with directory), homepage,
//     bugs and keywords, a `files` list of built output only, the pack scripts
//     that strip the in-repo `bulwark-source` export condition, and internal
//     dependencies as caret ranges of the current versions (so npm can dedupe);
//   - every internal dependency has a tsconfig reference and the other way round;
//   - a LICENSE identical to the repository's;
//   - README links that work on a registry page: no relative links (they point
//     outside the tarball), and every link into this repository names a file
//     or folder that exists;
//   - every package a README example imports is in an `npm install` line of
//     that README (docs/getting-started.md too);
//   - every bare import in src/ and in the built dist/ (.js and .d.ts) is
//     declared in the package's dependencies or peerDependencies;
//   - no published .d.ts declares a `_`-prefixed member or export: mark such
//     members `/** @internal */` (tsconfig.base.json strips them) or make
//     them `#private`;
//   - every `exports` entry (`.`, `./authoring`) points at files that exist:
//     its `bulwark-source` at src/, its `types` and `default` at dist/.
//
// The repository URL lives in ONE place: `repository.url` of the root
// package.json. Everything else is derived from it; after changing it, run
// `node scripts/check-packages.ts --write`, which rewrites the derived
// package.json fields, README links and LICENSE copies.
//
//   node scripts/check-packages.ts           # check (reads dist/: build first)
//   node scripts/check-packages.ts --write   # fix what can be derived, then check
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tokenize } from './tokenize.ts';

type Json = Record<string, unknown>;
type Manifest = {
  name: string;
  version: string;
  private?: boolean;
  keywords?: unknown;
  exports?: unknown;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  [key: string]: unknown;
};

const BRANCH = 'main';
/** What a tarball holds besides package.json, README.md and LICENSE (which npm always adds). */
export const FILES: readonly string[] = ['dist/**/*.js', 'dist/**/*.js.map', 'dist/**/*.d.ts'];
export const PACK_SCRIPTS: Readonly<Record<string, string>> = {
  prepack: 'node ../../scripts/pack-manifest.ts strip',
  postpack: 'node ../../scripts/pack-manifest.ts restore',
};
const KEY_ORDER = [
  'name',
  'version',
  'description',
  'keywords',
  'license',
  'repository',
  'homepage',
  'bugs',
  'type',
  'sideEffects',
  'engines',
  'exports',
  'files',
  'scripts',
  'publishConfig',
  'dependencies',
  'peerDependencies',
  'peerDependenciesMeta',
];

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
const builtins = new Set(builtinModules);

/** Bare module specifiers a JS/TS/.d.ts text imports, requires or references. */
export function bareImports(source: string): Set<string> {
  const tokens = tokenize(source);
  const found = new Set<string>();
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== 'string' && !(t.kind === 'template' && t.plain === true)) continue;
    const prev = tokens[i - 1];
    const prev2 = tokens[i - 2];
    const isSpecifier =
      (prev?.kind === 'name' && (prev.value === 'from' || prev.value === 'import')) ||
      (prev?.kind === 'punct' &&
        prev.value === '(' &&
        prev2?.kind === 'name' &&
        (prev2.value === 'import' || prev2.value === 'require'));
    if (!isSpecifier || t.value.startsWith('.') || t.value.startsWith('/')) continue;
    found.add(t.value);
  }
  return found;
}

/** `line: member` for each `_`-prefixed member or export a .d.ts text declares. */
export function underscoreMembers(dts: string): string[] {
  const found: string[] = [];
  const member =
    /^\s+(?:(?:readonly|static|protected|public|private|abstract|override|get|set|async)\s+)*(_[\w$]*)\s*[(<:?;]/;
  const exported =
    /^export\s+(?:declare\s+)?(?:abstract\s+)?(?:function|const|let|class|interface|type)\s+(_[\w$]*)/;
  dts.split('\n').forEach((line, i) => {
    const m = member.exec(line) ?? exported.exec(line);
    if (m !== null) found.push(`${i + 1}: ${m[1]}`);
  });
  return found;
}

/** The package a bare specifier names, or undefined for a Node.js builtin. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('node:') || builtins.has(specifier)) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

function* filesUnder(dir: string, match: RegExp): Generator<string> {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* filesUnder(path, match);
    else if (match.test(name)) yield path;
  }
}

/** Every problem with the packages under `root`; with `write`, fixes what can be derived first. */
export function checkPackages(root: string, write = false): string[] {
  const rootManifest = readJson<Json & { repository?: { url?: string }; license?: string }>(
    join(root, 'package.json'),
  );
  const repositoryUrl = rootManifest.repository?.url;
  const problems: string[] = [];
  if (typeof repositoryUrl !== 'string' || !/^git\+https:\/\/.+\.git$/.test(repositoryUrl)) {
    return ['package.json: repository.url must be git+https://<host>/<path>.git'];
  }
  /** The repository's web address, e.g. https://github.com/owner/name. */
  const webBase = repositoryUrl.slice('git+'.length, -'.git'.length);
  const license = readFileSync(join(root, 'LICENSE'), 'utf8');

  const dirs = readdirSync(join(root, 'packages'))
    .filter((d) => existsSync(join(root, 'packages', d, 'package.json')))
    .sort();
  const manifests = new Map(
    dirs.map((d) => [d, readJson<Manifest>(join(root, 'packages', d, 'package.json'))]),
  );
  const versions = new Map([...manifests.values()].map((m) => [m.name, m.version]));
  const dirOf = new Map([...manifests].map(([d, m]) => [m.name, d]));

  /** The package.json fields derived from the root manifest and the package's place. */
  function derived(dir: string, manifest: Manifest): Json {
    const internal = (deps: Record<string, string> | undefined): Record<string, string> | undefined =>
      deps === undefined
        ? undefined
        : Object.fromEntries(
            Object.entries(deps).map(([name, range]) => [
              name,
              versions.has(name) ? `^${versions.get(name)}` : range,
            ]),
          );
    return {
      license: rootManifest.license,
      repository: { type: 'git', url: repositoryUrl, directory: `packages/${dir}` },
      homepage: `${webBase}/tree/${BRANCH}/packages/${dir}#readme`,
      bugs: { url: `${webBase}/issues` },
      files: [...FILES],
      scripts: { ...((manifest.scripts as Record<string, string> | undefined) ?? {}), ...PACK_SCRIPTS },
      ...(manifest.name.startsWith('@') ? { publishConfig: { access: 'public' } } : {}),
      ...(manifest.dependencies === undefined ? {} : { dependencies: internal(manifest.dependencies) }),
    };
  }

  function ordered(manifest: Json): Json {
    const keys = [
      ...KEY_ORDER.filter((k) => k in manifest),
      ...Object.keys(manifest).filter((k) => !KEY_ORDER.includes(k)),
    ];
    return Object.fromEntries(keys.map((k) => [k, manifest[k]]));
  }

  /** Rewrites relative Markdown links of `file` to absolute repository links. */
  function absoluteLinks(file: string, text: string): string {
    return text.replace(/\]\(([^)\s]+)\)/g, (whole, target: string) => {
      if (/^[a-z][a-z+.-]*:/i.test(target) || target.startsWith('#')) return whole;
      const [path = '', anchor] = target.split('#');
      const inRepo = relative(root, resolve(dirname(file), path));
      const kind =
        existsSync(join(root, inRepo)) && statSync(join(root, inRepo)).isDirectory() ? 'tree' : 'blob';
      return `](${webBase}/${kind}/${BRANCH}/${inRepo}${anchor === undefined ? '' : `#${anchor}`})`;
    });
  }

  /** Problems with the links of a Markdown file that is shown on a registry page. */
  function checkLinks(file: string, text: string): void {
    const rel = relative(root, file);
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (target === undefined || target.startsWith('#')) continue;
      if (!/^[a-z][a-z+.-]*:/i.test(target)) {
        problems.push(`${rel}: relative link ${target} breaks outside the repository (run --write)`);
        continue;
      }
      const prefix = `${webBase}/`;
      if (!target.startsWith(prefix)) continue;
      const rest = target.slice(prefix.length).split('#')[0]!;
      const m = /^(?:blob|tree)\/([^/]+)\/(.*)$/.exec(rest);
      if (rest === '' || rest === 'issues') continue;
      if (m === null || m[1] !== BRANCH || !existsSync(join(root, m[2]!))) {
        problems.push(`${rel}: link ${target} names nothing in this repository`);
      }
    }
  }

  /** Every package a Markdown file's examples import must be in one of its `npm install` lines. */
  function checkInstallLines(file: string, text: string, self?: string): void {
    const installed = new Set(
      [...text.matchAll(/npm install ([^\n`]+)/g)].flatMap(([, args]) =>
        args!
          .split(/\s+/)
          .filter((a) => a !== '' && !a.startsWith('-'))
          .map((a) => a.replace(/(.)@[^@/]*$/, '$1')),
      ),
    );
    for (const [, example] of text.matchAll(/<!-- example: (\S+) -->/g)) {
      let source: string;
      try {
        source = readFileSync(join(root, example!), 'utf8');
      } catch {
        continue; // check-docs reports a missing example
      }
      for (const specifier of bareImports(source)) {
        const pkg = packageOf(specifier);
        if (pkg === undefined || pkg === self || installed.has(pkg)) continue;
        problems.push(
          `${relative(root, file)}: its example ${example} imports ${pkg}, which no \`npm install\` line names`,
        );
      }
    }
  }

  for (const [dir, manifest] of manifests) {
    const at = join(root, 'packages', dir);
    const where = `packages/${dir}`;
    if (manifest.private === true) continue;

    // package.json
    const expected = derived(dir, manifest);
    const fixed = ordered({ ...manifest, ...expected });
    if (JSON.stringify(fixed) !== JSON.stringify(manifest)) {
      if (write) writeFileSync(join(at, 'package.json'), `${JSON.stringify(fixed, null, 2)}\n`);
      else
        for (const [key, value] of Object.entries(expected))
          if (JSON.stringify(manifest[key]) !== JSON.stringify(value))
            problems.push(`${where}/package.json: ${key} should be ${JSON.stringify(value)} (run --write)`);
      if (!write && JSON.stringify(Object.keys(fixed)) !== JSON.stringify(Object.keys(manifest)))
        problems.push(`${where}/package.json: keys out of order (run --write)`);
    }
    const keywords = manifest.keywords;
    if (!Array.isArray(keywords) || keywords.length === 0 || !keywords.every((k) => typeof k === 'string'))
      problems.push(`${where}/package.json: keywords must be a non-empty list of strings`);
    const exportsMap = (manifest.exports ?? {}) as Record<string, unknown>;
    for (const [entry, target] of Object.entries(exportsMap)) {
      if (typeof target === 'string') continue;
      const conditions = Object.keys(target as Json).filter((c) => c !== 'bulwark-source');
      if (conditions[0] !== 'types' || conditions.at(-1) !== 'default')
        problems.push(`${where}/package.json: exports["${entry}"] must list types first and default last`);
    }

    // tsconfig references match internal dependencies
    const tsconfig = readJson<{ references?: { path: string }[] }>(join(at, 'tsconfig.json'));
    const referenced = new Set((tsconfig.references ?? []).map((r) => r.path.replace(/^\.\.\//, '')));
    const internalDeps = new Set(
      Object.keys(manifest.dependencies ?? {})
        .map((n) => dirOf.get(n))
        .filter((d) => d !== undefined),
    );
    for (const d of internalDeps)
      if (!referenced.has(d)) problems.push(`${where}/tsconfig.json: no reference to ../${d}, a dependency`);
    for (const d of referenced)
      if (!internalDeps.has(d))
        problems.push(`${where}/tsconfig.json: references ../${d}, which package.json does not depend on`);

    // LICENSE
    const licenseFile = join(at, 'LICENSE');
    if (!existsSync(licenseFile) || readFileSync(licenseFile, 'utf8') !== license) {
      if (write) writeFileSync(licenseFile, license);
      else problems.push(`${where}/LICENSE: missing or not the repository's LICENSE (run --write)`);
    }

    // README
    const readmeFile = join(at, 'README.md');
    if (!existsSync(readmeFile)) problems.push(`${where}: no README.md`);
    else {
      let readme = readFileSync(readmeFile, 'utf8');
      if (write) {
        const rewritten = absoluteLinks(readmeFile, readme);
        if (rewritten !== readme) writeFileSync(readmeFile, rewritten);
        readme = rewritten;
      }
      checkLinks(readmeFile, readme);
      checkInstallLines(readmeFile, readme, manifest.name);
    }

    // Bare imports are declared.
    const declared = new Set([
      manifest.name,
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.peerDependencies ?? {}),
    ]);
    const dist = join(at, 'dist');
    if (!existsSync(dist)) problems.push(`${where}: no dist/ (run npm run build first)`);
    const sources = [...filesUnder(join(at, 'src'), /\.ts$/), ...filesUnder(dist, /\.(js|d\.ts)$/)];
    // Options accept an explicit undefined, so they type-check under exactOptionalPropertyTypes.
    for (const file of filesUnder(join(at, 'src'), /\.ts$/)) {
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          const m = /^\s+(?:readonly )?[\w$]+\?: (.+);(?:\s*\/\/.*)?$/.exec(line);
          if (m !== null && !/\|\s*undefined$/.test(m[1]!) && !/^(unknown|any)$/.test(m[1]!))
            problems.push(
              `${relative(root, file)}:${i + 1}: an optional property must also accept undefined (\`| undefined\`)`,
            );
        });
    }
    for (const file of filesUnder(dist, /\.d\.ts$/))
      for (const found of underscoreMembers(readFileSync(file, 'utf8')))
        problems.push(
          `${relative(root, file)}:${found}: a published declaration starts with _ (mark it /** @internal */ or make it #private)`,
        );
    for (const [entry, target] of Object.entries(exportsMap))
      for (const path of Object.values(typeof target === 'string' ? { default: target } : (target as Json)))
        if (typeof path === 'string' && !existsSync(join(at, path)))
          problems.push(`${where}/package.json: exports["${entry}"] names ${path}, which does not exist`);
    const missing = new Map<string, string>();
    for (const file of sources) {
      for (const specifier of bareImports(readFileSync(file, 'utf8'))) {
        const pkg = packageOf(specifier);
        if (pkg !== undefined && !declared.has(pkg) && !missing.has(pkg))
          missing.set(pkg, relative(root, file));
      }
    }
    for (const [pkg, file] of missing)
      problems.push(`${where}: ${file} imports ${pkg}, which is neither a dependency nor a peer dependency`);
  }

  // The getting-started page is read by people installing bulwark.
  const gettingStarted = join(root, 'docs', 'getting-started.md');
  if (existsSync(gettingStarted)) checkInstallLines(gettingStarted, readFileSync(gettingStarted, 'utf8'));
  return problems;
}

// `import.meta.main` is Node.js 24.2+ (and 22.18+); on an older 22.x it is undefined.
const meta = import.meta as { main?: boolean };
const invoked =
  meta.main ?? (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url));
if (invoked) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const problems = checkPackages(root, process.argv.includes('--write'));
  if (problems.length > 0) {
    console.error(`check-packages: ${problems.length} problems`);
    for (const p of problems) console.error(`  ${p}`);
    process.exit(1);
  }
  console.log(
    'check-packages: every package declares what it imports, carries LICENSE and metadata, and links absolutely',
  );
}
