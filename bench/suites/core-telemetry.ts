// The telemetry bridge with no SDK registered: a counter add and a span event
// per call, next to a bare call. Then the same with the OpenTelemetry SDK.
import { Telemetry } from '@bulwark/core/authoring';
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { runSuite, target } from '../harness.ts';

export async function run(): Promise<boolean> {
  const telemetry = new Telemetry('@bulwark/bench', '0.0.0');
  const counter = telemetry.counter('bulwark.bench.calls', { description: 'bench', unit: '{call}' });
  const attributes = Object.freeze({ outcome: 'success' });
  const work = async (): Promise<number> => 1;
  const instrumented = async (): Promise<number> => {
    const value = await work();
    counter.add(1, attributes);
    telemetry.spanEvent('bulwark.bench.event', () => ({ attempt: 1 }));
    return value;
  };
  // The same shape as `instrumented`, without the instrumentation.
  const plain = async (): Promise<number> => {
    const value = await work();
    return value;
  };

  // The difference measured here is a few nanoseconds, so it takes more rounds
  // (each only a few milliseconds long) for the best one to escape the noise
  // of a shared machine.
  const noSdk = await runSuite(
    'telemetry-no-sdk',
    [
      { name: 'bare call', call: plain },
      { name: 'counter + span event, no SDK', call: instrumented },
    ],
    { rounds: 61 },
  );

  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider());
  metrics.setGlobalMeterProvider(new MeterProvider());
  const tracer = trace.getTracer('bench');
  const withSdk = await runSuite('telemetry-sdk', [
    {
      name: 'bare call in a span',
      call: () => tracer.startActiveSpan('s', (span) => plain().finally(() => span.end())),
    },
    {
      name: 'counter + span event in a span, SDK',
      call: () => tracer.startActiveSpan('s', (span) => instrumented().finally(() => span.end())),
    },
  ]);
  const cost = noSdk.measurements[1]!.overheadNs;
  console.log(
    `with the SDK registered, the same instrumentation costs ${withSdk.measurements[1]!.overheadNs.toFixed(0)} ns per call`,
  );
  const bare = noSdk.measurements[0]!.nsPerCall;
  console.log(`ratio, instrumentation cost with no SDK / a bare async call: ${(cost / bare).toFixed(3)}`);
  return target(
    'counter add + span event with no SDK registered, as a fraction of a bare async call',
    cost / bare,
    0.2,
  );
}
