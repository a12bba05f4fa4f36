// retry() on the happy path (the first attempt succeeds), next to cockatiel's
// retry and p-retry, and the added cost of a shared retry budget.
import { retry, retryBudget } from '@bulwark/retry';
import { retry as cockatielRetry, handleAll } from 'cockatiel';
import pRetry from 'p-retry';
import { overhead, runSuite, target } from '../harness.ts';

export async function run(): Promise<boolean> {
  const work = async (): Promise<number> => 1;
  const plain = retry();
  const budgeted = retry({ budget: retryBudget() });
  // As the target states it: cockatiel's default backoff, three attempts.
  const cockatiel = cockatielRetry(handleAll, { maxAttempts: 3 });
  const result = await runSuite('retry-happy-path', [
    { name: 'bare call', call: () => work() },
    { name: 'bulwark retry()', call: () => plain.execute(work) },
    { name: 'bulwark retry({ budget })', call: () => budgeted.execute(work) },
    { name: 'cockatiel retry(handleAll, 3)', call: () => cockatiel.execute(work) },
    { name: 'p-retry (retries: 2)', call: () => pRetry(work, { retries: 2 }) },
  ]);
  const ours = overhead(result, 'bulwark retry()');
  const budget = overhead(result, 'bulwark retry({ budget })') - ours;
  const cockatielNs = overhead(result, 'cockatiel retry(handleAll, 3)');
  const pRetryNs = overhead(result, 'p-retry (retries: 2)');
  console.log(`ratio of overheads, bulwark / cockatiel: ${(ours / cockatielNs).toFixed(3)}`);
  console.log(`ratio of overheads, bulwark / p-retry: ${(ours / pRetryNs).toFixed(3)}`);
  console.log(`a shared budget adds ${budget.toFixed(0)} ns per call`);
  const a = target('retry() overhead <= cockatiel retry overhead', ours / cockatielNs, 1, [
    ours,
    cockatielNs,
  ]);
  const b = target('retry() overhead <= 0.5 x p-retry overhead', ours / pRetryNs, 0.5, [ours, pRetryNs]);
  const c = target('a shared budget adds <= 30 ns per call', budget, 30);
  return a && b && c;
}
