// What bulwark's own spans cost when no tracer provider is registered, and when
// they are off. createFetch() around an in-memory fetch (no socket, so the
// figure is createFetch's own time), with spans off (the default) and with
// `spans: 'call'` and `'attempts'`; and a pipeline with and without traced()
// outermost. With spans off there is no code path at all beyond one branch; on,
// with no SDK, each span is one global lookup.
import { pipeline, traced } from '@bulwark/core';
import { deadline, timeout } from '@bulwark/deadline';
import { createFetch } from '@bulwark/fetch';
import { retry } from '@bulwark/retry';
import { runSuite, target } from '../harness.ts';

export async function run(): Promise<boolean> {
  const answer = (): Promise<Response> => Promise.resolve(new Response(null, { status: 204 }));
  const options = { fetch: answer, breakers: false, bulkheads: false } as const;
  const off = createFetch(options);
  const call = createFetch({ ...options, spans: 'call' });
  const attempts = createFetch({ ...options, spans: 'attempts' });
  const url = 'http://127.0.0.1:9/';
  const policy = pipeline(deadline(5_000), retry(), timeout(1_000));
  const tracedPolicy = pipeline(traced('bench'), deadline(5_000), retry(), timeout(1_000));
  const work = async (): Promise<number> => 1;

  // Two suites, so that each subject is compared with its own baseline.
  const fetchResult = await runSuite(
    'telemetry-spans-fetch-no-sdk',
    [
      { name: 'createFetch(), spans off', call: () => off(url) },
      { name: "createFetch({ spans: 'call' }), no SDK", call: () => call(url) },
      { name: "createFetch({ spans: 'attempts' }), no SDK", call: () => attempts(url) },
    ],
    { rounds: 31 },
  );
  const pipelineResult = await runSuite(
    'telemetry-spans-pipeline-no-sdk',
    [
      { name: 'pipeline(deadline, retry, timeout)', call: () => policy.execute(work) },
      { name: 'pipeline(traced, deadline, retry, timeout), no SDK', call: () => tracedPolicy.execute(work) },
    ],
    { rounds: 31 },
  );
  const ns = (name: string): number =>
    [...fetchResult.measurements, ...pipelineResult.measurements].find((m) => m.name === name)!.nsPerCall;
  const fetchRatio = ns("createFetch({ spans: 'attempts' }), no SDK") / ns('createFetch(), spans off');
  const pipelineRatio =
    ns('pipeline(traced, deadline, retry, timeout), no SDK') / ns('pipeline(deadline, retry, timeout)');
  console.log(
    `time per call, createFetch spans 'attempts' with no SDK / spans off: ${fetchRatio.toFixed(3)}`,
  );
  console.log(`time per call, pipeline with traced() and no SDK / without: ${pipelineRatio.toFixed(3)}`);
  const fetchOk = target(
    "createFetch({ spans: 'attempts' }) with no SDK, as a multiple of spans off",
    fetchRatio,
    1.1,
  );
  const pipelineOk = target(
    'pipeline with traced() and no SDK, as a multiple of the same pipeline without',
    pipelineRatio,
    1.15,
  );
  return fetchOk && pipelineOk;
}
