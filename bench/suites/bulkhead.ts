// A bulkhead with a free slot (the happy path), next to cockatiel's bulkhead.
import { adaptiveLimit, bulkhead } from '@bulwark/bulkhead';
import { bulkhead as cockatielBulkhead } from 'cockatiel';
import { overhead, runSuite, target } from '../harness.ts';

export async function run(): Promise<boolean> {
  const work = async (): Promise<number> => 1;
  const ours = bulkhead({ maxConcurrent: 10, maxQueue: 10 });
  const cockatiel = cockatielBulkhead(10, 10);
  // For information (no target): an adaptive limit also times every call and learns from it.
  const adaptive = bulkhead({ maxConcurrent: adaptiveLimit({ algorithm: 'gradient2', initialLimit: 10 }) });
  const result = await runSuite('bulkhead-free-slot', [
    { name: 'bare call', call: () => work() },
    { name: 'bulwark bulkhead(10, queue 10)', call: () => ours.execute(work) },
    { name: 'cockatiel bulkhead(10, 10)', call: () => cockatiel.execute(work) },
    { name: 'bulwark bulkhead(gradient2)', call: () => adaptive.execute(work) },
  ]);
  const oursNs = overhead(result, 'bulwark bulkhead(10, queue 10)');
  const theirs = overhead(result, 'cockatiel bulkhead(10, 10)');
  console.log(`ratio of overheads, bulwark / cockatiel: ${(oursNs / theirs).toFixed(3)}`);
  return target('bulkhead overhead with a free slot <= cockatiel bulkhead overhead', oursNs / theirs, 1, [
    oursNs,
    theirs,
  ]);
}
