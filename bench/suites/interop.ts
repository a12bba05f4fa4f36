// The cost of the interop adapters on the happy path, next to the libraries
// they adapt: an opossum breaker fired directly, the same breaker through
// opossumPolicy() and fromOpossum(), and bulwark's own circuitBreaker(); p-retry
// called directly, through pRetryPolicy(), and bulwark's own retry().
import { circuitBreaker } from '@bulwark/circuit-breaker';
import { fromOpossum, opossumPolicy } from '@bulwark/interop/opossum';
import { pRetryPolicy } from '@bulwark/interop/p-retry';
import { retry } from '@bulwark/retry';
import CircuitBreaker from 'opossum';
import pRetry from 'p-retry';
import { overhead, runSuite, target } from '../harness.ts';

export async function run(): Promise<boolean> {
  const work = async (): Promise<number> => 1;
  const direct = new CircuitBreaker(work, { name: 'direct' });
  const adapted = new CircuitBreaker(work, { name: 'adapted' });
  const call = fromOpossum(adapted);
  const policy = opossumPolicy({ name: 'policy' });
  const native = circuitBreaker({ name: 'native' });
  const breakers = await runSuite('interop-opossum', [
    { name: 'bare call', call: () => work() },
    { name: 'opossum fire()', call: () => direct.fire() },
    { name: 'fromOpossum(breaker)()', call: () => call() },
    { name: 'opossumPolicy().execute()', call: () => policy.execute(work) },
    { name: 'bulwark circuitBreaker()', call: () => native.execute(work) },
  ]);
  const opossumNs = overhead(breakers, 'opossum fire()');
  const fromNs = overhead(breakers, 'fromOpossum(breaker)()') - opossumNs;
  const policyNs = overhead(breakers, 'opossumPolicy().execute()') - opossumNs;
  const nativeNs = overhead(breakers, 'bulwark circuitBreaker()');
  console.log(`fromOpossum adds ${fromNs.toFixed(0)} ns per call to opossum's ${opossumNs.toFixed(0)} ns`);
  console.log(
    `opossumPolicy adds ${policyNs.toFixed(0)} ns per call to opossum's ${opossumNs.toFixed(0)} ns`,
  );
  console.log(`ratio of overheads, bulwark circuitBreaker / opossum: ${(nativeNs / opossumNs).toFixed(3)}`);
  call.dispose();
  policy.dispose();
  direct.shutdown();
  adapted.shutdown();

  // pRetryPolicy always hands p-retry a signal (the context's), and p-retry's own
  // checks of a signal cost something: p-retry given a signal is measured too.
  const viaPolicy = pRetryPolicy({ retries: 2 });
  const plain = retry();
  const retries = await runSuite('interop-p-retry', [
    { name: 'bare call', call: () => work() },
    { name: 'p-retry (retries: 2)', call: () => pRetry(work, { retries: 2 }) },
    {
      name: 'p-retry (retries: 2, signal)',
      call: () => pRetry(work, { retries: 2, signal: new AbortController().signal }),
    },
    { name: 'pRetryPolicy({ retries: 2 })', call: () => viaPolicy.execute(work) },
    { name: 'bulwark retry()', call: () => plain.execute(work) },
  ]);
  const pRetryNs = overhead(retries, 'p-retry (retries: 2)');
  const withSignalNs = overhead(retries, 'p-retry (retries: 2, signal)');
  const adapterNs = overhead(retries, 'pRetryPolicy({ retries: 2 })') - pRetryNs;
  const ownNs = overhead(retries, 'pRetryPolicy({ retries: 2 })') - withSignalNs;
  console.log(`pRetryPolicy adds ${adapterNs.toFixed(0)} ns per call to p-retry's ${pRetryNs.toFixed(0)} ns`);
  console.log(`of which ${(adapterNs - ownNs).toFixed(0)} ns is p-retry handling the signal it is given`);
  console.log(
    `ratio of overheads, bulwark retry / p-retry: ${(overhead(retries, 'bulwark retry()') / pRetryNs).toFixed(3)}`,
  );

  const a = target('fromOpossum adds <= 0.5 x opossum fire() overhead', fromNs / opossumNs, 0.5, [opossumNs]);
  const b = target('opossumPolicy adds <= 0.5 x opossum fire() overhead', policyNs / opossumNs, 0.5, [
    opossumNs,
  ]);
  const c = target(
    'pRetryPolicy adds <= 0.5 x the overhead of p-retry given a signal',
    Math.max(0, ownNs) / withSignalNs,
    0.5,
  );
  return a && b && c;
}
