// Runs the benchmark suites: `npm run bench` runs them all, `npm run bench -- retry`
// only those whose file name contains "retry". Each suite runs in a process of its
// own (with --expose-gc), so one suite's JIT feedback and heap do not colour the
// next. A suite prints its tables and targets and writes JSON under bench/results/.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = new URL('./suites/', import.meta.url);
const args = process.argv.slice(2);

if (args[0] === '--suite') {
  const suite = (await import(new URL(args[1]!, dir).href)) as { run: () => Promise<boolean> };
  process.exitCode = (await suite.run()) ? 0 : 3;
} else {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .filter((f) => args.length === 0 || args.some((x) => f.includes(x)))
    .sort();
  const missed: string[] = [];
  for (const file of files) {
    const child = spawnSync(
      process.execPath,
      ['--conditions=bulwark-source', '--expose-gc', fileURLToPath(import.meta.url), '--suite', file],
      { stdio: 'inherit' },
    );
    if (child.status !== 0)
      missed.push(child.status === 3 ? file : `${file} (exit ${child.status ?? child.signal})`);
  }
  console.log(
    `\n${files.length} suites; ${missed.length === 0 ? 'every target met' : `targets missed in: ${missed.join(', ')}`}`,
  );
  process.exitCode = missed.length === 0 ? 0 : 1;
}
