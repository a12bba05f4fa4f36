// Each package's prepack and postpack scripts (run by `npm pack` and
// `npm publish` in the package's folder).
//
//   strip     saves package.json as package.json.prepack and writes the
//             published manifest: without the in-repo `bulwark-source` export
//             condition (it points at src/, which is not published) and without
//             `scripts` (they only make sense inside this repository);
//   restore   puts package.json.prepack back.
//
// A pack that failed half way leaves package.json.prepack behind; the next
// `strip` restores it first, so the stripped manifest is never taken as the
// original.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

const manifest = 'package.json';
const saved = 'package.json.prepack';

/** The manifest as published: `bulwark-source` conditions and `scripts` removed. */
export function publishedManifest(original: Record<string, unknown>): Record<string, unknown> {
  const strip = (value: unknown): unknown => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
    return Object.fromEntries(
      Object.entries(value)
        .filter(([key]) => key !== 'bulwark-source')
        .map(([key, inner]) => [key, strip(inner)]),
    );
  };
  const { scripts: _scripts, ...rest } = original;
  return { ...rest, exports: strip(rest.exports) };
}

const mode = process.argv[2];
if (mode === 'strip') {
  if (existsSync(saved)) renameSync(saved, manifest);
  const text = readFileSync(manifest, 'utf8');
  writeFileSync(saved, text);
  writeFileSync(
    manifest,
    `${JSON.stringify(publishedManifest(JSON.parse(text) as Record<string, unknown>), null, 2)}\n`,
  );
} else if (mode === 'restore') {
  if (existsSync(saved)) renameSync(saved, manifest);
} else if (mode !== undefined) {
  console.error(`pack-manifest: unknown mode ${mode} (strip or restore)`);
  process.exit(1);
}
