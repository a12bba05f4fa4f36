// Checks the dependency rule of DESIGN.md and docs/architecture.md:
//   - every package in packages/ sits in one layer:
//       clock < core < modules < stores < integrations < umbrella
//     and imports only packages of lower layers. A package of the same layer
//     only where ALLOWED below lists the edge, with the reason;
//   - a package's internal dependencies (dependencies and peerDependencies),
//     its tsconfig references and the internal packages its src/ imports are
//     the same set: nothing imported undeclared, nothing declared unused, no
//     reference missing or stale.
//
//   node scripts/check-deps.ts     # check the repository; exit 1 on a violation
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bareImports } from './check-packages.ts';

/** The layers, lowest first; each lists the package directories in it. */
export const LAYERS: readonly (readonly [layer: string, dirs: readonly string[]])[] = [
  ['clock', ['clock']],
  ['core', ['core']],
  [
    'modules',
    [
      'deadline',
      'retry',
      'circuit-breaker',
      'bulkhead',
      'idempotency',
      'failure-detector',
      'hedging',
      'rate-limit',
      'chaos',
    ],
  ],
  ['stores', ['redis', 'postgres']],
  ['integrations', ['fetch', 'http-server', 'fastify', 'express', 'interop']],
  ['umbrella', ['bulwark']],
];

/** Imports between packages of one layer, `from -> to` (directory names), each with its reason. */
export const ALLOWED: Readonly<Record<string, string>> = {
  'hedging -> retry': "hedged attempts spend retry's RetryBudget, so hedges and retries share one budget",
  'fastify -> http-server': 'the Fastify adapter is a thin layer over the framework-neutral HTTP server core',
  'express -> http-server': 'the Express adapter is a thin layer over the framework-neutral HTTP server core',
};

interface Manifest {
  name?: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

function* sources(dir: string): Generator<string> {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* sources(path);
    else if (/\.(ts|mts|cts|js|mjs)$/.test(name)) yield path;
  }
}

/** The package a bare specifier names (`@scope/name/sub` gives `@scope/name`). */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

function readJsonc(path: string): unknown {
  // tsconfig files may hold comments and trailing commas.
  const text = readFileSync(path, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:"'])\/\/.*$/gm, '$1')
    .replace(/,(\s*[}\]])/g, '$1');
  return JSON.parse(text);
}

/** Every violation of the dependency rule among the packages under `root`. */
export function checkDeps(root: string): string[] {
  const problems: string[] = [];
  const packagesDir = join(root, 'packages');
  const dirs = readdirSync(packagesDir)
    .filter((d) => existsSync(join(packagesDir, d, 'package.json')))
    .sort();
  const layerOf = new Map<string, number>();
  LAYERS.forEach(([, members], i) => {
    for (const d of members) layerOf.set(d, i);
  });
  const manifests = new Map(
    dirs.map((d) => [d, JSON.parse(readFileSync(join(packagesDir, d, 'package.json'), 'utf8')) as Manifest]),
  );
  /** Package name -> directory, for the packages of this repository. */
  const dirOf = new Map<string, string>();
  for (const [d, m] of manifests) if (typeof m.name === 'string') dirOf.set(m.name, d);

  for (const d of dirs) {
    const manifest = manifests.get(d)!;
    const where = `packages/${d}`;
    const layer = layerOf.get(d);
    if (layer === undefined) {
      problems.push(`${where}: in no layer; add it to LAYERS in scripts/check-deps.ts`);
      continue;
    }

    const declared = new Set<string>();
    for (const field of ['dependencies', 'peerDependencies'] as const) {
      for (const name of Object.keys(manifest[field] ?? {})) {
        const dep = dirOf.get(name);
        if (dep !== undefined) declared.add(dep);
      }
    }

    const imported = new Map<string, string>(); // directory -> first file importing it
    for (const file of sources(join(packagesDir, d, 'src'))) {
      for (const specifier of bareImports(readFileSync(file, 'utf8'))) {
        const dep = dirOf.get(packageOf(specifier));
        if (dep !== undefined && dep !== d && !imported.has(dep))
          imported.set(dep, file.slice(root.length).replace(/^[\\/]/, ''));
      }
    }

    const referenced = new Set<string>();
    const tsconfig = join(packagesDir, d, 'tsconfig.json');
    if (existsSync(tsconfig)) {
      const refs = (readJsonc(tsconfig) as { references?: { path?: string }[] }).references ?? [];
      for (const ref of refs) {
        if (typeof ref.path !== 'string') continue;
        const target = resolve(packagesDir, d, ref.path);
        const dep = dirs.find((x) => resolve(packagesDir, x) === target);
        if (dep === undefined)
          problems.push(`${where}/tsconfig.json: reference ${ref.path} is not a package`);
        else referenced.add(dep);
      }
    }

    const names = (dep: string): string => manifests.get(dep)?.name ?? dep;
    for (const dep of new Set([...declared, ...imported.keys(), ...referenced])) {
      const to = layerOf.get(dep);
      const edge = `${d} -> ${dep}`;
      if (to !== undefined && (to > layer || (to === layer && ALLOWED[edge] === undefined))) {
        const why =
          to > layer
            ? `${LAYERS[layer]![0]} may not depend on ${LAYERS[to]![0]}`
            : `both are ${LAYERS[layer]![0]}; list "${edge}" with its reason in ALLOWED in scripts/check-deps.ts if it must be`;
        problems.push(`${where}: depends on ${names(dep)} (${why})`);
      }
      if (imported.has(dep) && !declared.has(dep))
        problems.push(
          `${imported.get(dep)}: imports ${names(dep)}, not in ${where}/package.json dependencies`,
        );
      if (declared.has(dep) && !imported.has(dep))
        problems.push(`${where}/package.json: depends on ${names(dep)}, which src/ never imports`);
      if (declared.has(dep) && !referenced.has(dep))
        problems.push(`${where}/tsconfig.json: no reference to ../${dep}, a dependency`);
      if (referenced.has(dep) && !declared.has(dep))
        problems.push(`${where}/tsconfig.json: references ../${dep}, not a dependency in package.json`);
    }
  }
  for (const edge of Object.keys(ALLOWED)) {
    const [from, to] = edge.split(' -> ');
    if (from === undefined || to === undefined || layerOf.get(from) !== layerOf.get(to))
      problems.push(`scripts/check-deps.ts: ALLOWED "${edge}" is not an edge within one layer`);
  }
  return problems;
}

// `import.meta.main` is Node.js 24.2+ (and 22.18+); on an older 22.x it is undefined.
const meta = import.meta as { main?: boolean };
const invoked =
  meta.main ?? (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url));
if (invoked) {
  const problems = checkDeps(fileURLToPath(new URL('..', import.meta.url)));
  for (const p of problems) console.error(p);
  if (problems.length > 0) {
    console.error(`check-deps: ${problems.length} violation(s) of the dependency rule`);
    process.exitCode = 1;
  } else console.log('check-deps: every package imports only packages below it');
}
