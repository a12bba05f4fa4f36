// Completes package-lock.json with the platform-specific optional packages that
// the registry mirror on the build machines does not carry (for example Biome's
// darwin, win32, android and musl binaries). npm cannot record a package it
// cannot fetch, and `npm ci` then refuses the lockfile as out of sync. Each
// missing optional dependency is recorded with the os/cpu/libc its name states,
// so npm ci knows to skip it on this platform.
//
//   node scripts/fix-lock.ts          # fix in place
//   node scripts/fix-lock.ts --check  # fail if anything is missing
import { readFileSync, writeFileSync } from 'node:fs';

type Entry = {
  version?: string;
  dev?: boolean;
  optional?: boolean;
  optionalDependencies?: Record<string, string>;
  os?: string[];
  cpu?: string[];
  libc?: string[];
  license?: string;
};

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8')) as { packages: Record<string, Entry> };
const check = process.argv.includes('--check');
const OS = [
  'android',
  'darwin',
  'freebsd',
  'linux',
  'netbsd',
  'openbsd',
  'sunos',
  'win32',
  'aix',
  'openharmony',
];
const CPU = ['arm64', 'arm', 'x64', 'ia32', 'loong64', 'mips64el', 'ppc64', 'riscv64', 's390x'];

const missing: string[] = [];
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [name, range] of Object.entries(entry.optionalDependencies ?? {})) {
    const base = path === '' ? '' : `${path}/`;
    const candidates = [`${base}node_modules/${name}`, `node_modules/${name}`];
    if (candidates.some((c) => c in lock.packages)) continue;
    const parts = name.split('/').pop()!.split('-');
    const os = parts.filter((p) => OS.includes(p));
    const cpu = parts.filter((p) => CPU.includes(p));
    if (os.length === 0 || cpu.length === 0 || !/^\d+\.\d+\.\d+/.test(range)) {
      console.error(
        `fix-lock: cannot tell the platform of ${name}@${range} (needed by ${path || 'the root'})`,
      );
      process.exit(1);
    }
    missing.push(`${name}@${range}`);
    const record: Entry = { version: range, optional: true, os, cpu };
    if (entry.dev) record.dev = true;
    if (parts.includes('musl')) record.libc = ['musl'];
    if (parts.includes('gnu')) record.libc = ['glibc'];
    if (entry.license) record.license = entry.license;
    lock.packages[`node_modules/${name}`] = record;
  }
}

if (check) {
  if (missing.length > 0) {
    console.error(
      `fix-lock: package-lock.json lacks ${missing.length} optional packages (run node scripts/fix-lock.ts):`,
    );
    for (const m of missing) console.error(`  ${m}`);
    process.exit(1);
  }
  console.log('fix-lock: every optional dependency is recorded in package-lock.json');
} else {
  const sorted = Object.fromEntries(
    Object.entries(lock.packages).sort(([a], [b]) =>
      a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0,
    ),
  );
  lock.packages = sorted;
  writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
  console.log(`fix-lock: recorded ${missing.length} optional packages: ${missing.join(', ') || 'none'}`);
}
