// A full pipeline (presets.databaseClient(): deadline → retry with a budget →
// breaker → bulkhead → attempt timeout) on the happy path, next to the same
// layers from cockatiel, first with no OpenTelemetry SDK registered and then
// with the SDK (a meter provider with a reader, a tracer provider, a context
// manager, and every call inside an active, recording span).
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { presets } from 'bulwark';
import {
  bulkhead,
  circuitBreaker,
  handleAll,
  retry,
  SamplingBreaker,
  TimeoutStrategy,
  timeout,
  wrap,
} from 'cockatiel';
import { overhead, printTable, runSuite, target } from '../harness.ts';

export async function run(): Promise<boolean> {
  const work = async (): Promise<number> => 1;
  const ours = presets.databaseClient();
  const theirs = wrap(
    timeout(5_000, TimeoutStrategy.Cooperative),
    retry(handleAll, { maxAttempts: 1 }),
    circuitBreaker(handleAll, {
      halfOpenAfter: 5_000,
      breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000, minimumRps: 2 }),
    }),
    bulkhead(10, 100),
    timeout(2_000, TimeoutStrategy.Cooperative),
  );

  const noSdk = await runSuite('pipeline-telemetry-no-sdk', [
    { name: 'bare call', call: work },
    { name: 'bulwark presets.databaseClient()', call: () => ours.execute(work) },
    { name: 'cockatiel wrap(timeout, retry, breaker, bulkhead, timeout)', call: () => theirs.execute(work) },
  ]);

  const reader = new PeriodicExportingMetricReader({
    exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
    exportIntervalMillis: 3_600_000,
  });
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider());
  const tracer = trace.getTracer('bench');
  const inSpan = (call: () => Promise<unknown>) => () =>
    tracer.startActiveSpan('call', (span) => call().finally(() => span.end()));

  const withSdk = await runSuite('pipeline-telemetry-sdk', [
    { name: 'bare call in a span', call: inSpan(work) },
    { name: 'bulwark presets.databaseClient() in a span', call: inSpan(() => ours.execute(work)) },
    {
      name: 'cockatiel wrap(...) in a span',
      call: inSpan(() => theirs.execute(work)),
    },
  ]);

  const oursNoSdk = overhead(noSdk, 'bulwark presets.databaseClient()');
  const theirsNoSdk = overhead(noSdk, 'cockatiel wrap(timeout, retry, breaker, bulkhead, timeout)');
  const oursSdk = overhead(withSdk, 'bulwark presets.databaseClient() in a span');
  const theirsSdk = overhead(withSdk, 'cockatiel wrap(...) in a span');
  printTable('pipeline overhead over a bare call, ns per call', [
    ['subject', 'no SDK', 'SDK registered', 'SDK / no SDK'],
    [
      'bulwark presets.databaseClient()',
      oursNoSdk.toFixed(0),
      oursSdk.toFixed(0),
      (oursSdk / oursNoSdk).toFixed(2),
    ],
    [
      'cockatiel wrap(...)',
      theirsNoSdk.toFixed(0),
      theirsSdk.toFixed(0),
      (theirsSdk / theirsNoSdk).toFixed(2),
    ],
  ]);
  console.log(
    `the SDK adds ${(oursSdk - oursNoSdk).toFixed(0)} ns per call to the bulwark pipeline (metrics recorded: every layer's counters)`,
  );
  return target(
    'full bulwark pipeline overhead with no SDK <= the same layers from cockatiel',
    oursNoSdk / theirsNoSdk,
    1,
    [oursNoSdk, theirsNoSdk],
  );
}
