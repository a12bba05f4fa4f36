// hedging() on the happy path: the first attempt answers before the delay, so
// no hedge fires. No peer library hedges (p-retry, opossum and cockatiel have
// none), so the suite compares with a bare call, and with cockatiel's
// cooperative timeout: like a hedge, it arms a timer per call and races the
// call against it. cockatiel's retry() is printed as a yardstick (no timer).
import { hedging } from '@bulwark/hedging';
import { retry as cockatielRetry, timeout as cockatielTimeout, handleAll, TimeoutStrategy } from 'cockatiel';
import { overhead, runSuite, target } from '../harness.ts';

export async function run(): Promise<boolean> {
  const work = async (): Promise<number> => 1;
  const fixed = hedging({ delayMs: 1_000 });
  const adaptive = hedging({ delay: 'adaptive', delayMs: 1_000, minDelayMs: 1_000 });
  const cockatielT = cockatielTimeout(1_000, TimeoutStrategy.Cooperative);
  const cockatielR = cockatielRetry(handleAll, { maxAttempts: 3 });
  const result = await runSuite('hedging-happy-path', [
    { name: 'bare call', call: () => work() },
    { name: 'bulwark hedging({ delayMs: 1000 })', call: () => fixed.execute(work) },
    { name: "bulwark hedging({ delay: 'adaptive' })", call: () => adaptive.execute(work) },
    { name: 'cockatiel timeout(1s, Cooperative)', call: () => cockatielT.execute(work) },
    { name: 'cockatiel retry(handleAll, 3)', call: () => cockatielR.execute(work) },
  ]);
  const bare = result.measurements.find((m) => m.name === 'bare call')!.nsPerCall;
  const ours = overhead(result, 'bulwark hedging({ delayMs: 1000 })');
  const oursAdaptive = overhead(result, "bulwark hedging({ delay: 'adaptive' })");
  const timeoutNs = overhead(result, 'cockatiel timeout(1s, Cooperative)');
  console.log(
    `time per call, hedging / bare call: fixed ${((bare + ours) / bare).toFixed(2)}, adaptive ${((bare + oursAdaptive) / bare).toFixed(2)}`,
  );
  console.log(`ratio of overheads, hedging (fixed) / cockatiel timeout: ${(ours / timeoutNs).toFixed(3)}`);
  const a = target(
    'hedging() happy-path overhead <= cockatiel cooperative timeout overhead',
    ours / timeoutNs,
    1,
    [ours, timeoutNs],
  );
  const b = target(
    "hedging({ delay: 'adaptive' }) happy-path overhead <= 2 x hedging({ delayMs }) overhead",
    oursAdaptive / ours,
    2,
    [oursAdaptive, ours],
  );
  return a && b;
}
