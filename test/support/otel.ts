// The OpenTelemetry SDK as the telemetry tests register it: a MeterProvider read on
// demand (cumulative, never on a timer), and optionally an AsyncLocalStorage context
// manager with a tracer provider that keeps finished spans in memory. Every test file
// that installs it passes `resetOtel` to `afterEach`, so the globals are cleared even
// when a test fails halfway.
import { type Attributes, context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  type DataPoint,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
  type ScopeMetrics,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

/** One data point: its attributes, plus its value under `value`. */
export type Point = Record<string, unknown> & { value: unknown };

/** One collection of every metric the installed MeterProvider holds. */
export interface CollectedMetrics {
  /** The scopes collected (only the one asked for, when `collect` was given a scope). */
  readonly scopes: readonly ScopeMetrics[];
  /** Whether an instrument of this name was collected. */
  has(name: string): boolean;
  /** The instrument's data; throws when it was not recorded, or was recorded in more than one scope. */
  metric(name: string): MetricData;
  /** The instrument's data points as `{ ...attributes, value }`; throws as `metric` does. */
  points(name: string): Point[];
  /** The instrument's values summed by one attribute (its value as a string); throws as `metric` does. */
  sum(name: string, attribute: string): Record<string, number>;
}

export interface InstalledOtel {
  /** The metric reader; `collect` reads through it. */
  readonly reader: PeriodicExportingMetricReader;
  /** Collects now; with `scope`, only that instrumentation scope, which must have reported. */
  collect(scope?: string): Promise<CollectedMetrics>;
  /** The finished spans, in the order they ended (tracing only). */
  spans(): ReadableSpan[];
  /** The events of the one finished span as `[name, attributes]`; throws unless exactly one span finished. */
  events(): Array<[string, Attributes | undefined]>;
}

const installed: Array<{ meterProvider: MeterProvider; tracerProvider?: BasicTracerProvider }> = [];

/**
 * Registers a fresh MeterProvider as the global one and, with `tracing`, a context
 * manager and a tracer provider. Throws when a global of the same kind is still
 * registered, so a test never reads from a provider that is not the one recording.
 */
export function installOtel(options: { tracing?: boolean } = {}): InstalledOtel {
  const reader = new PeriodicExportingMetricReader({
    exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
    exportIntervalMillis: 60_000,
  });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const entry: { meterProvider: MeterProvider; tracerProvider?: BasicTracerProvider } = { meterProvider };
  installed.push(entry);
  if (!metrics.setGlobalMeterProvider(meterProvider)) {
    throw new Error('installOtel: a global MeterProvider is already registered');
  }
  let exporter: InMemorySpanExporter | undefined;
  if (options.tracing === true) {
    exporter = new InMemorySpanExporter();
    entry.tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    if (!context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())) {
      throw new Error('installOtel: a global context manager is already registered');
    }
    if (!trace.setGlobalTracerProvider(entry.tracerProvider)) {
      throw new Error('installOtel: a global TracerProvider is already registered');
    }
  }
  const spans = (): ReadableSpan[] => {
    if (exporter === undefined) throw new Error('installOtel: spans need { tracing: true }');
    return exporter.getFinishedSpans();
  };
  return {
    reader,
    async collect(scope) {
      const { resourceMetrics } = await reader.collect();
      let scopes = resourceMetrics.scopeMetrics;
      if (scope !== undefined) {
        scopes = scopes.filter((s) => s.scope.name === scope);
        if (scopes.length === 0) throw new Error(`no metrics were collected from scope ${scope}`);
      }
      return collected(scopes);
    },
    spans,
    events() {
      const finished = spans();
      if (finished.length !== 1) throw new Error(`expected one finished span, found ${finished.length}`);
      return finished[0]!.events.map((e) => [e.name, e.attributes]);
    },
  };
}

/** Clears the global meter, tracer and context registrations and shuts down every provider installed. */
export async function resetOtel(): Promise<void> {
  metrics.disable();
  trace.disable();
  context.disable();
  const providers = installed.splice(0);
  for (const { meterProvider, tracerProvider } of providers) {
    await meterProvider.shutdown();
    await tracerProvider?.shutdown();
  }
}

function collected(scopes: readonly ScopeMetrics[]): CollectedMetrics {
  const matching = (name: string) =>
    scopes.flatMap((s) => s.metrics).filter((m) => m.descriptor.name === name);
  const metric = (name: string): MetricData => {
    const found = matching(name);
    if (found.length === 0) throw new Error(`metric ${name} was not recorded`);
    if (found.length > 1) throw new Error(`metric ${name} was recorded in ${found.length} scopes; name one`);
    return found[0]!;
  };
  return {
    scopes,
    has: (name) => matching(name).length > 0,
    metric,
    points: (name) =>
      (metric(name).dataPoints as DataPoint<unknown>[]).map((p) => ({ ...p.attributes, value: p.value })),
    sum(name, attribute) {
      const sums: Record<string, number> = {};
      for (const p of metric(name).dataPoints as DataPoint<number>[]) {
        const key = String(p.attributes[attribute]);
        sums[key] = (sums[key] ?? 0) + p.value;
      }
      return sums;
    },
  };
}
