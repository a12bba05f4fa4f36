// The happy path of composition, side by side in one run: pipeline() of three
// no-op policies next to one; the five-policy pipeline
// (deadline, retry, circuitBreaker, bulkhead, timeout) next to a bare call and
// to cockatiel's wrap(bulkhead, retry, breaker, timeout); deadline + timeout
// next to cockatiel's cooperative timeout; and the breaker, the bulkhead and
// retry each alone next to cockatiel's equivalent. Then, for information and
// in a table of its own, the two pipelines around a function that reads its
// signal, as one that hands it to fetch or a driver does.

import { bulkhead } from '@bulwark/bulkhead';
import { circuitBreaker } from '@bulwark/circuit-breaker';
import { systemClock } from '@bulwark/clock';
import { NoopPolicy, pipeline } from '@bulwark/core';
import { deadline, timeout } from '@bulwark/deadline';
import { retry } from '@bulwark/retry';
import {
  ConsecutiveBreaker,
  circuitBreaker as cockatielBreaker,
  bulkhead as cockatielBulkhead,
  retry as cockatielRetry,
  timeout as cockatielTimeout,
  handleAll,
  TimeoutStrategy,
  wrap,
} from 'cockatiel';
import { overhead, runSuite, target } from '../harness.ts';

export async function run(): Promise<boolean> {
  const work = async (): Promise<number> => 1;
  // What a call that hands its signal on (to fetch, a driver) does: read it.
  const readsSignal = async (ctx: { readonly signal: AbortSignal }): Promise<number> =>
    ctx.signal.aborted ? 0 : 1;
  const one = new NoopPolicy(systemClock);
  const three = pipeline(
    new NoopPolicy(systemClock),
    new NoopPolicy(systemClock),
    new NoopPolicy(systemClock),
  );
  // Equivalent settings on both sides: 3 attempts, a breaker that opens after
  // 5 consecutive failures, 10 concurrent calls with a queue of 10, a 1 s
  // attempt timeout.
  const ours = {
    pipeline: pipeline(
      deadline(5_000),
      retry(),
      circuitBreaker(),
      bulkhead({ maxConcurrent: 10, maxQueue: 10 }),
      timeout(1_000),
    ),
    deadlineTimeout: pipeline(deadline(5_000), timeout(1_000)),
    breaker: circuitBreaker(),
    bulkhead: bulkhead({ maxConcurrent: 10, maxQueue: 10 }),
    retry: retry(),
  };
  const cockatielBreakerOf = () =>
    cockatielBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) });
  const theirs = {
    wrap: wrap(
      cockatielBulkhead(10, 10),
      cockatielRetry(handleAll, { maxAttempts: 3 }),
      cockatielBreakerOf(),
      cockatielTimeout(1_000, TimeoutStrategy.Cooperative),
    ),
    timeout: cockatielTimeout(1_000, TimeoutStrategy.Cooperative),
    breaker: cockatielBreakerOf(),
    bulkhead: cockatielBulkhead(10, 10),
    retry: cockatielRetry(handleAll, { maxAttempts: 3 }),
  };
  const names = {
    bare: 'bare call',
    one: 'one noop policy',
    three: 'pipeline of three noop policies',
    pipeline: 'bulwark pipeline(deadline, retry, breaker, bulkhead, timeout)',
    wrap: 'cockatiel wrap(bulkhead, retry, breaker, timeout)',
    deadlineTimeout: 'bulwark deadline(5s) + timeout(1s)',
    timeout: 'cockatiel timeout(1s, Cooperative)',
    breaker: 'bulwark circuitBreaker()',
    cockatielBreaker: 'cockatiel ConsecutiveBreaker(5)',
    bulkhead: 'bulwark bulkhead(10, queue 10)',
    cockatielBulkhead: 'cockatiel bulkhead(10, 10)',
    retry: 'bulwark retry()',
    cockatielRetry: 'cockatiel retry(handleAll, 3)',
    pipelineSignal: 'bulwark 5-policy pipeline, function reads ctx.signal',
    wrapSignal: 'cockatiel wrap(...), function reads its signal',
  };
  const result = await runSuite('pipeline', [
    { name: names.bare, call: () => work() },
    { name: names.one, call: () => one.execute(work) },
    { name: names.three, call: () => three.execute(work) },
    { name: names.pipeline, call: () => ours.pipeline.execute(work) },
    { name: names.wrap, call: () => theirs.wrap.execute(work) },
    { name: names.deadlineTimeout, call: () => ours.deadlineTimeout.execute(work) },
    { name: names.timeout, call: () => theirs.timeout.execute(work) },
    { name: names.breaker, call: () => ours.breaker.execute(work) },
    { name: names.cockatielBreaker, call: () => theirs.breaker.execute(work) },
    { name: names.bulkhead, call: () => ours.bulkhead.execute(work) },
    { name: names.cockatielBulkhead, call: () => theirs.bulkhead.execute(work) },
    { name: names.retry, call: () => ours.retry.execute(work) },
    { name: names.cockatielRetry, call: () => theirs.retry.execute(work) },
  ]);
  const ns = (name: string) => result.measurements.find((m) => m.name === name)!.nsPerCall;
  const noopRatio = ns(names.three) / ns(names.one);
  console.log(`ratio of time per call, pipeline(3 noop) / one noop: ${noopRatio.toFixed(3)}`);
  const perBare = ns(names.pipeline) / ns(names.bare);
  console.log(`ratio of time per call, 5-policy pipeline / bare call: ${perBare.toFixed(3)}`);
  const pairs = [
    ['5-policy pipeline / cockatiel wrap', names.pipeline, names.wrap, 0.05],
    ['deadline+timeout / cockatiel cooperative timeout', names.deadlineTimeout, names.timeout, 0.05],
    ['circuitBreaker() / cockatiel ConsecutiveBreaker(5)', names.breaker, names.cockatielBreaker, 0.6],
    ['bulkhead() / cockatiel bulkhead', names.bulkhead, names.cockatielBulkhead, 0.6],
    ['retry() / cockatiel retry', names.retry, names.cockatielRetry, 0.6],
  ] as const;
  for (const [label, a, b] of pairs) {
    console.log(`ratio of overheads, ${label}: ${(overhead(result, a) / overhead(result, b)).toFixed(3)}`);
  }

  const met = [
    target('pipeline of three noop policies <= 1.5 x one noop policy', noopRatio, 1.5),
    target('5-policy pipeline time per call <= 5 x a bare call', perBare, 5),
    ...pairs.map(([label, a, b, limit]) => {
      const oursNs = overhead(result, a);
      const theirsNs = overhead(result, b);
      return target(`overhead, ${label} <= ${limit}`, oursNs / theirsNs, limit, [oursNs, theirsNs]);
    }),
  ];
  // For information (no target), run after the targets so that it cannot
  // colour them: the same two pipelines around a function that reads its signal.
  const signal = await runSuite('pipeline-reading-signal', [
    { name: names.bare, call: () => work() },
    { name: names.pipelineSignal, call: () => ours.pipeline.execute(readsSignal) },
    { name: names.wrapSignal, call: () => theirs.wrap.execute(readsSignal) },
  ]);
  console.log(
    `ratio of overheads, 5-policy pipeline / cockatiel wrap, function reads its signal: ${(overhead(signal, names.pipelineSignal) / overhead(signal, names.wrapSignal)).toFixed(3)}`,
  );
  return met.every(Boolean);
}
