// Keeps the code in docs/ true: every snippet introduced by
//   <!-- example: docs/examples/name.ts -->
// must be exactly the text of that file (which `npm run typecheck` compiles).
// `--write` refreshes the snippets from the files.
// It also checks that every metric and span event a package records (a name
// passed to the telemetry bridge in packages/*/src) is listed in
// docs/observability.md.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const write = process.argv.includes('--write');
const marker = /<!-- example: (\S+) -->\n```ts\n([\s\S]*?)```/g;
const markdown = [
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
  'README.md',
  ...readdirSync(join(root, 'packages')).map((p) => join('packages', p, 'README.md')),
];

const problems: string[] = [];
let checked = 0;
for (const file of markdown) {
  let text: string;
  try {
    text = readFileSync(join(root, file), 'utf8');
  } catch {
    continue;
  }
  const updated = text.replace(marker, (whole, example: string, body: string) => {
    checked++;
    let source: string;
    try {
      source = readFileSync(join(root, example), 'utf8');
    } catch {
      problems.push(`${file}: example ${example} does not exist`);
      return whole;
    }
    if (source !== body) {
      if (!write)
        problems.push(
          `${file}: the snippet from ${example} differs from the file (run: node scripts/check-docs.ts --write)`,
        );
      return `<!-- example: ${example} -->\n\`\`\`ts\n${source}\`\`\``;
    }
    return whole;
  });
  if (write && updated !== text) writeFileSync(join(root, file), updated);
}
// Instrument and span-event names: the first argument of the Telemetry
// bridge's counter/upDownCounter/histogram/gauge/spanEvent, the second of its
// spanEventOn (whose first is the span).
const instrument =
  /\.(?:(?:counter|upDownCounter|histogram|gauge|spanEvent)\(|spanEventOn\([^,()]+,)\s*['"`](bulwark\.[\w.-]+)['"`]/g;
const observability = readFileSync(join(root, 'docs', 'observability.md'), 'utf8');
let instruments = 0;
const walk = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? walk(join(dir, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(dir, entry.name)]
        : [],
  );
for (const pkg of readdirSync(join(root, 'packages'))) {
  let files: string[];
  try {
    files = walk(join(root, 'packages', pkg, 'src'));
  } catch {
    continue;
  }
  for (const file of files) {
    for (const match of readFileSync(file, 'utf8').matchAll(instrument)) {
      instruments++;
      if (!observability.includes(`\`${match[1]}\``))
        problems.push(
          `${file.slice(root.length)}: telemetry name ${match[1]} is not listed in docs/observability.md`,
        );
    }
  }
}
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(
  `check-docs: ${checked} snippets match their type-checked examples; ${instruments} telemetry names are documented`,
);
