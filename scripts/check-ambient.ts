// Fails when package source reads ambient time or randomness.
//
// Every duration in bulwark is measured on an injected Clock, and jitter takes an
// injected random source. Only @bulwark/clock's system clock and default random
// source may touch the platform primitives below.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const allowed = new Set(['packages/clock/src/system-clock.ts', 'packages/clock/src/random.ts']);
const banned: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bDate\.now\s*\(/, 'Date.now()'],
  [/\bperformance\.now\s*\(/, 'performance.now()'],
  [/(?<![.\w])setTimeout\s*\(/, 'setTimeout()'],
  [/(?<![.\w])setInterval\s*\(/, 'setInterval()'],
  [/\bglobalThis\.setTimeout\b|\bglobalThis\.setInterval\b/, 'globalThis timers'],
  [/\bMath\.random\s*\(/, 'Math.random()'],
];

function* sourceFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* sourceFiles(path);
    else if (/\.(c|m)?(t|j)sx?$/.test(name)) yield path;
  }
}

const problems: string[] = [];
for (const pkg of readdirSync(join(root, 'packages'))) {
  const src = join(root, 'packages', pkg, 'src');
  try {
    statSync(src);
  } catch {
    continue;
  }
  for (const file of sourceFiles(src)) {
    const rel = relative(root, file);
    if (allowed.has(rel)) continue;
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((line, i) => {
      const code = line.replace(/\/\/.*$/, '').trim();
      if (code.startsWith('*') || code.startsWith('/*')) return;
      // A method named setTimeout (a Clock implementation) is a declaration, not a call.
      if (
        /^(?:(?:public|private|protected|override|readonly|async)\s+)*set(?:Timeout|Interval)\s*\(\s*\w+\s*\??:/.test(
          code,
        )
      ) {
        return;
      }
      for (const [pattern, name] of banned) {
        if (pattern.test(code))
          problems.push(`${rel}:${i + 1}: ${name} — take a Clock or random source instead`);
      }
    });
  }
}

if (problems.length > 0) {
  console.error(`Ambient time or randomness in package source (${problems.length}):`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
console.log('check-ambient: no ambient time or randomness in packages/*/src');
