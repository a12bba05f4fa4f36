// A closed circuit breaker on the happy path, next to cockatiel and opossum,
// then the memory and timers that idle keyed breakers hold.
import { circuitBreaker, circuitBreakers, failureRate } from '@bulwark/circuit-breaker';
import { ConsecutiveBreaker, circuitBreaker as cockatielBreaker, handleAll } from 'cockatiel';
import CircuitBreaker from 'opossum';
import { overhead, printTable, runSuite, target } from '../harness.ts';

const gc = (globalThis as { gc?: () => void }).gc;

function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) gc?.();
  return process.memoryUsage().heapUsed;
}

/** Runs `fn`, counting the timers (setTimeout and setInterval, unref'd or not) it creates. */
async function countTimers(fn: () => Promise<void>): Promise<number> {
  const { setTimeout: st, setInterval: si } = globalThis;
  let created = 0;
  globalThis.setTimeout = ((...args: Parameters<typeof st>) => {
    created++;
    return st(...args);
  }) as typeof st;
  globalThis.setInterval = ((...args: Parameters<typeof si>) => {
    created++;
    return si(...args);
  }) as typeof si;
  try {
    await fn();
  } finally {
    globalThis.setTimeout = st;
    globalThis.setInterval = si;
  }
  return created;
}

export async function run(): Promise<boolean> {
  const work = async (): Promise<number> => 1;
  const trip = failureRate({ threshold: 0.5, minimumCalls: 20, window: { kind: 'count', size: 100 } });
  const ours = circuitBreaker({ trip });
  const cockatiel = cockatielBreaker(handleAll, {
    halfOpenAfter: 10_000,
    breaker: new ConsecutiveBreaker(5),
  });
  const opossum = new CircuitBreaker(work, { timeout: false });
  const result = await runSuite('circuit-breaker-closed', [
    { name: 'bare call', call: () => work() },
    { name: 'bulwark circuitBreaker (count window 100)', call: () => ours.execute(work) },
    { name: 'cockatiel ConsecutiveBreaker', call: () => cockatiel.execute(work) },
    { name: 'opossum fire() (timeout off)', call: () => opossum.fire() },
  ]);
  opossum.shutdown();
  const oursNs = overhead(result, 'bulwark circuitBreaker (count window 100)');
  const cockatielNs = overhead(result, 'cockatiel ConsecutiveBreaker');
  const opossumNs = overhead(result, 'opossum fire() (timeout off)');
  console.log(`ratio of overheads, bulwark / cockatiel: ${(oursNs / cockatielNs).toFixed(3)}`);
  console.log(`ratio of overheads, bulwark / opossum: ${(oursNs / opossumNs).toFixed(3)}`);

  // Memory and timers per idle keyed breaker: 100,000 keys, each used once.
  const keys = 100_000;
  const before = heapAfterGc();
  const registry = circuitBreakers({ trip, maxKeys: keys, name: 'hosts' });
  const ourTimers = await countTimers(async () => {
    for (let i = 0; i < keys; i++) await registry.get(`host-${i}.internal`).execute(work);
  });
  const perBreaker = (heapAfterGc() - before) / keys;
  if (registry.size !== keys) throw new Error(`registry holds ${registry.size} breakers, expected ${keys}`);

  const opossumCount = 2_000;
  const opossumBefore = heapAfterGc();
  const breakers: CircuitBreaker[] = [];
  const opossumTimers =
    (await countTimers(async () => {
      for (let i = 0; i < opossumCount; i++) {
        const b = new CircuitBreaker(work, { timeout: false, name: `host-${i}` });
        await b.fire();
        breakers.push(b);
      }
    })) / opossumCount;
  const opossumPer = (heapAfterGc() - opossumBefore) / opossumCount;
  for (const b of breakers) b.shutdown();

  printTable('idle keyed breakers (each used once)', [
    ['library', 'breakers', 'heap bytes per breaker', 'timers per breaker'],
    ['bulwark circuitBreakers()', String(keys), perBreaker.toFixed(0), (ourTimers / keys).toFixed(2)],
    ['opossum', String(opossumCount), opossumPer.toFixed(0), opossumTimers.toFixed(2)],
  ]);
  const a = target(
    'closed breaker overhead <= cockatiel ConsecutiveBreaker overhead',
    oursNs / cockatielNs,
    1,
    [oursNs, cockatielNs],
  );
  const b = target('closed breaker overhead <= 0.2 x opossum fire() overhead', oursNs / opossumNs, 0.2, [
    oursNs,
    opossumNs,
  ]);
  const c = target('heap per idle keyed breaker <= 1024 bytes', perBreaker, 1024);
  const d = target('timers per idle keyed breaker <= 0', ourTimers / keys, 0);
  return a && b && c && d;
}
