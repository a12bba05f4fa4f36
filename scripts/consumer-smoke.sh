#!/usr/bin/env bash
# A consumer's view of bulwark, as CI checks it: packs every package, installs
# the tarballs into a fresh app outside the repository, type-checks the app
# (scripts/consumer-smoke/main.ts and the getting-started examples) under
# `module: nodenext` and under `moduleResolution: bundler` with the minimum and
# the latest TypeScript, with exactOptionalPropertyTypes and skipLibCheck off,
# and runs it as ESM and as CommonJS on Node.js 22.12 and on 24.
#
# Everything comes from the npm registry: Node.js 22.12 through
# `scripts/node.sh --version`, TypeScript and the app's other dependencies
# through npm install in the temporary app.
#
#   bash scripts/consumer-smoke.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
eval "$(bash scripts/node.sh --print-path)"

TS_MIN=5.2 # the oldest TypeScript bulwark supports (docs/getting-started.md)
NODE_MIN=22.12.0

work="$(mktemp -d "${TMPDIR:-/tmp}/bulwark-consumer.XXXXXX")"
trap 'rm -rf "$work"' EXIT
app="$work/app"
mkdir -p "$work/tarballs" "$app/src"
step() { printf 'consumer-smoke: %s\n' "$*"; }

step "packing"
[ -d packages/core/dist ] || npm run build >/dev/null
npm pack --workspaces --pack-destination "$work/tarballs" --json >"$work/pack.json" 2>/dev/null

# The app depends on every tarball, on the peers it uses and on two TypeScripts.
node - "$work" "$TS_MIN" <<'JS'
const { readFileSync, writeFileSync } = require('node:fs');
const [work, tsMin] = process.argv.slice(2);
const packed = JSON.parse(readFileSync(`${work}/pack.json`, 'utf8'));
const dependencies = Object.fromEntries(packed.map((p) => [p.name, `file:${work}/tarballs/${p.filename}`]));
writeFileSync(`${work}/app/packages.json`, JSON.stringify(packed.map((p) => p.name)));
writeFileSync(
  `${work}/app/package.json`,
  JSON.stringify(
    {
      private: true,
      type: 'module',
      dependencies: {
        ...dependencies,
        '@opentelemetry/api': '~1.9.0',
        '@opentelemetry/sdk-metrics': '^2.0.0',
        fastify: '^5.0.0',
      },
      devDependencies: {
        '@types/node': '^22.0.0',
        'typescript-min': `npm:typescript@~${tsMin}.0`,
        'typescript-latest': 'npm:typescript@latest',
      },
    },
    null,
    2,
  ),
);
JS

step "installing $(node -e "console.log(require('$work/pack.json').length)") tarballs into $app"
(cd "$app" && npm install --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)

cp scripts/consumer-smoke/main.ts scripts/consumer-smoke/main.cjs "$app/src/"
cp docs/examples/getting-started-*.ts "$app/src/"
common='"strict": true, "exactOptionalPropertyTypes": true, "skipLibCheck": false, "target": "es2022", "types": ["node"], "rootDir": "src", "outDir": "out"'
cat >"$app/tsconfig.nodenext.json" <<JSON
{ "compilerOptions": { $common, "module": "nodenext", "moduleResolution": "nodenext" }, "include": ["src/*.ts"] }
JSON
cat >"$app/tsconfig.bundler.json" <<JSON
{ "compilerOptions": { $common, "module": "esnext", "moduleResolution": "bundler", "noEmit": true }, "include": ["src/*.ts"] }
JSON
# fastify's own types need TypeScript 5.4; with the minimum, only bulwark's are checked.
cat >"$app/tsconfig.min.json" <<JSON
{ "extends": "./tsconfig.nodenext.json", "compilerOptions": { "noEmit": true }, "include": ["src/getting-started-fetch.ts", "src/getting-started-metrics.ts"] }
JSON
cat >"$app/tsconfig.min-bundler.json" <<JSON
{ "extends": "./tsconfig.bundler.json", "include": ["src/getting-started-fetch.ts", "src/getting-started-metrics.ts"] }
JSON

cd "$app"
tsc_min="node node_modules/typescript-min/bin/tsc"
tsc_latest="node node_modules/typescript-latest/bin/tsc"
step "type-check: TypeScript $($tsc_min --version | cut -d' ' -f2), nodenext and bundler"
$tsc_min -p tsconfig.min.json
$tsc_min -p tsconfig.min-bundler.json
step "type-check: TypeScript $($tsc_latest --version | cut -d' ' -f2), nodenext and bundler"
$tsc_latest -p tsconfig.bundler.json
$tsc_latest -p tsconfig.nodenext.json # emits out/ for the ESM run

for version in "$NODE_MIN" 24; do
  if [ "$version" = 24 ]; then run=(node); else run=(bash "$repo/scripts/node.sh" --version "$version" node); fi
  "${run[@]}" out/main.js
  "${run[@]}" --disable-warning=ExperimentalWarning src/main.cjs
done
step "ok"
