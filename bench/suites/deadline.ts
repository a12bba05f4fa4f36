// deadline() + timeout() around a call, next to cockatiel's cooperative timeout.
// Then, separately (so it cannot colour the target above), what putting the
// deadline in AsyncLocalStorage scope adds: `deadline(ms, { propagate: true })`
// and `withDeadline()`.

import { pipeline } from '@bulwark/core';
import { deadline, timeout, withDeadline } from '@bulwark/deadline';
import { timeout as cockatielTimeout, TimeoutStrategy } from 'cockatiel';
import { overhead, runSuite, target } from '../harness.ts';

export async function run(): Promise<boolean> {
  const work = async (): Promise<number> => 1;
  const deadlineAndTimeout = pipeline(deadline(5_000), timeout(1_000));
  const cockatiel = cockatielTimeout(1_000, TimeoutStrategy.Cooperative);
  const result = await runSuite('deadline-timeout', [
    { name: 'bare call', call: () => work() },
    { name: 'bulwark deadline(5s) + timeout(1s)', call: () => deadlineAndTimeout.execute(work) },
    { name: 'cockatiel timeout(1s, Cooperative)', call: () => cockatiel.execute(work) },
  ]);
  const ours = overhead(result, 'bulwark deadline(5s) + timeout(1s)');
  const theirs = overhead(result, 'cockatiel timeout(1s, Cooperative)');
  console.log(`ratio of overheads, bulwark / cockatiel: ${(ours / theirs).toFixed(3)}`);
  const met = target(
    'deadline+timeout overhead <= 0.1 x cockatiel cooperative timeout overhead',
    ours / theirs,
    0.1,
    [ours, theirs],
  );

  const scoped = deadline(5_000);
  const propagating = deadline(5_000, { propagate: true });
  const scope = await runSuite('deadline-scope', [
    { name: 'bare call', call: () => work() },
    { name: 'bulwark deadline(5s)', call: () => scoped.execute(work) },
    { name: 'bulwark deadline(5s, { propagate: true })', call: () => propagating.execute(work) },
    { name: 'withDeadline(5s, call)', call: () => withDeadline(5_000, work) },
  ]);
  const frame =
    overhead(scope, 'bulwark deadline(5s, { propagate: true })') - overhead(scope, 'bulwark deadline(5s)');
  console.log(`an AsyncLocalStorage scope per call (propagate: true) adds ${frame.toFixed(0)} ns`);
  return met;
}
