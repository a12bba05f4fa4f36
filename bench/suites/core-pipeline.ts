// The cost of composition: pipeline() of three no-op policies next to one.
import { systemClock } from '@bulwark/clock';
import { NoopPolicy, pipeline } from '@bulwark/core';
import { runSuite, target } from '../harness.ts';

export async function run(): Promise<boolean> {
  const work = async (): Promise<number> => 1;
  const one = new NoopPolicy(systemClock);
  const three = pipeline(
    new NoopPolicy(systemClock),
    new NoopPolicy(systemClock),
    new NoopPolicy(systemClock),
  );
  const result = await runSuite('pipeline', [
    { name: 'bare call', call: () => work() },
    { name: 'one noop policy', call: () => one.execute(work) },
    { name: 'pipeline of three noop policies', call: () => three.execute(work) },
  ]);
  const ns = (name: string) => result.measurements.find((m) => m.name === name)!.nsPerCall;
  const ratio = ns('pipeline of three noop policies') / ns('one noop policy');
  console.log(`ratio of time per call, pipeline(3 noop) / one noop: ${ratio.toFixed(3)}`);
  return target('pipeline of three noop policies <= 1.5 x one noop policy', ratio, 1.5);
}
