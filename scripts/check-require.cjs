// CommonJS code on Node.js >= 22.12 can require() the ESM packages. This loads
// every entry of every built package's exports map (`.`, `./authoring`) from
// dist/ with require() and checks that each exports something.
const { readdirSync, existsSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..', 'packages');
let loaded = 0;
for (const name of readdirSync(root)) {
  const pkg = require(join(root, name, 'package.json'));
  if (!existsSync(join(root, name, 'dist'))) {
    console.error(`check-require: ${pkg.name} has no dist/; run npm run build first`);
    process.exit(1);
  }
  const entries = Object.keys(pkg.exports ?? { '.': null }).filter((e) => e !== './package.json');
  for (const entry of entries) {
    const specifier = entry === '.' ? pkg.name : `${pkg.name}/${entry.slice(2)}`;
    const mod = require(specifier);
    if (Object.keys(mod).length === 0) {
      console.error(`check-require: require('${specifier}') gave no exports`);
      process.exit(1);
    }
    loaded++;
  }
}
console.log(`check-require: require() loads all ${loaded} package entries`);
