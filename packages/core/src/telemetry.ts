import {
  type Attributes,
  type Counter,
  context,
  type Histogram,
  type Meter,
  type MeterProvider,
  metrics,
  type ObservableGauge,
  type ObservableResult,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
  type UpDownCounter,
} from '@opentelemetry/api';

/**
 * Where `@opentelemetry/api` 1.x keeps whatever was registered globally: an
 * object on `globalThis` under `Symbol.for('opentelemetry.js.api.<major>')`,
 * shared by every copy of the API with that major version (that sharing is how
 * two copies of the API in one process see the same SDK). When nothing
 * registered a meter provider or a context manager there, every instrument is a
 * no-op and no span can be active, so the bridge returns at once instead of
 * asking the API (which costs 15–25 ns per question).
 *
 * This is a deliberate reliance on an implementation detail: the key is defined
 * in the API's `internal/global-utils` module, not in its documented public
 * surface. The 1.x releases (checked from 1.1 to 1.9) all use this key, and a
 * 1.x that moved it would no longer share registrations with older 1.x copies.
 * If it did move anyway, there is no fallback: `registered()` would answer false
 * forever, so with an SDK registered bulwark would silently record no metric,
 * register no gauge and add no span event (calls themselves are unaffected).
 * The tests that register an SDK (test/core/telemetry.test.ts) fail in that
 * case, so bumping `@opentelemetry/api` shows it; a user who installs a newer
 * 1.x than bulwark was tested with (the peer range is ^1.9.0) would not be told.
 */
const OTEL_GLOBAL = Symbol.for('opentelemetry.js.api.1');

const processWide = globalThis as { [OTEL_GLOBAL]?: Partial<Record<string, unknown>> | undefined };
// Reading a property the global object does not have takes 10–15 ns on every
// read (V8 has no fast path for a missing global property), and with no SDK
// that was every instrument call. So the key is made to exist, holding
// undefined: every 1.x API reads it with `??`, `?.` or a truthiness check, so
// undefined means "nothing registered" to it as to us, and the read is fast.
if (!(OTEL_GLOBAL in processWide)) processWide[OTEL_GLOBAL] = undefined;

function registered(kind: 'metrics' | 'context' | 'trace' | 'propagation'): boolean {
  const global = processWide[OTEL_GLOBAL];
  return global !== undefined && global[kind] !== undefined;
}

/**
 * Whether a meter provider is registered: without one, every metric
 * instrument is a no-op. Instruments ask it themselves; a per-call path asks it
 * first, at the call site, so that with no SDK it neither works out the
 * attributes nor calls the instrument (measured in docs/benchmarks.md: about
 * 7 ns per call on a closed breaker's happy path).
 */
export function metricsRegistered(): boolean {
  return registered('metrics');
}

/** Description of one metric instrument. */
export interface InstrumentInfo {
  readonly description: string;
  /** UCUM unit, e.g. `"ms"`, `"{call}"`. */
  readonly unit: string;
}

type Kind = 'counter' | 'upDownCounter' | 'histogram';
type Sync = Counter | UpDownCounter | Histogram;

/**
 * A metric instrument that follows the globally registered MeterProvider. It is
 * created on first use and re-created when the provider changes, so an SDK
 * registered after bulwark was imported is still used.
 */
class LazyInstrument {
  readonly #telemetry: Telemetry;
  readonly #kind: Kind;
  readonly #name: string;
  readonly #info: InstrumentInfo;
  #provider: MeterProvider | undefined;
  #instrument: Sync | undefined;

  constructor(telemetry: Telemetry, kind: Kind, name: string, info: InstrumentInfo) {
    this.#telemetry = telemetry;
    this.#kind = kind;
    this.#name = name;
    this.#info = info;
  }

  /** @internal the instrument on the current provider, created when the provider changed. */
  current(): Sync {
    return this.#get();
  }

  #get(): Sync {
    const provider = metrics.getMeterProvider();
    if (provider !== this.#provider || this.#instrument === undefined) {
      const meter = this.#telemetry.meterFor(provider);
      const opts = { description: this.#info.description, unit: this.#info.unit };
      this.#instrument =
        this.#kind === 'counter'
          ? meter.createCounter(this.#name, opts)
          : this.#kind === 'upDownCounter'
            ? meter.createUpDownCounter(this.#name, opts)
            : meter.createHistogram(this.#name, opts);
      this.#provider = provider;
    }
    return this.#instrument;
  }

  /** Adds `value` (counters and up-down counters). */
  add(value: number, attributes?: Attributes): void {
    if (!registered('metrics')) return;
    (this.#get() as Counter).add(value, attributes);
  }

  /** Records `value` (histograms). */
  record(value: number, attributes?: Attributes): void {
    if (!registered('metrics')) return;
    (this.#get() as Histogram).record(value, attributes);
  }
}

/** A counter or histogram that follows the global provider. */
export type MetricInstrument = Pick<LazyInstrument, 'add' | 'record'>;

/**
 * An up-down counter that follows the global provider. It has no `add`: each
 * thing it counts (one bulkhead's active calls, say) gets a {@link UpDownLevel}
 * from {@link level} and reports its true level through it.
 */
export class LevelCounter {
  readonly #instrument: LazyInstrument;

  constructor(instrument: LazyInstrument) {
    this.#instrument = instrument;
  }

  /** The level of one attribute set, e.g. one bulkhead's; it starts at 0. */
  level(attributes: Attributes): UpDownLevel {
    return new UpDownLevel(this.#instrument, attributes);
  }
}

/**
 * One attribute set's level on an up-down counter. The owner reports its
 * current level with {@link set} whenever it changes, and the level adds the
 * difference from what the current provider was last told.
 *
 * Counting `+1` and `-1` instead goes wrong when an SDK is registered while
 * things are held: the new provider sees the releases of acquisitions it never
 * saw, and the sum goes negative. Here a provider that changes starts from 0 and
 * is told the whole current level at the next change, so every provider's sum
 * is a level that really was (never negative, never a release it did not see
 * acquired). With no SDK registered, `set` returns at once.
 */
export class UpDownLevel {
  readonly #instrument: LazyInstrument;
  readonly #attributes: Attributes;
  #sink: Sync | undefined;
  #reported = 0;

  constructor(instrument: LazyInstrument, attributes: Attributes) {
    this.#instrument = instrument;
    this.#attributes = attributes;
  }

  /** Reports the current level (an integer >= 0). */
  set(level: number): void {
    if (!registered('metrics')) return;
    const sink = this.#instrument.current();
    if (sink !== this.#sink) {
      this.#sink = sink;
      this.#reported = 0;
    }
    const delta = level - this.#reported;
    if (delta === 0) return;
    this.#reported = level;
    (sink as UpDownCounter).add(delta, this.#attributes);
  }
}

/**
 * An observable gauge whose callback is registered with whichever provider is
 * current. Call {@link refresh} from a code path that runs now and then (for
 * example each call); it is cheap when the provider has not changed.
 */
export class LazyGauge {
  readonly #telemetry: Telemetry;
  readonly #name: string;
  readonly #info: InstrumentInfo;
  readonly #observe: (result: ObservableResult) => void;
  #provider: MeterProvider | undefined;
  #gauge: ObservableGauge | undefined;

  constructor(
    telemetry: Telemetry,
    name: string,
    info: InstrumentInfo,
    observe: (result: ObservableResult) => void,
  ) {
    this.#telemetry = telemetry;
    this.#name = name;
    this.#info = info;
    this.#observe = observe;
  }

  /** Registers the callback with the current provider if it changed. */
  refresh(): void {
    if (!registered('metrics') && this.#provider === undefined) return;
    const provider = metrics.getMeterProvider();
    if (provider === this.#provider) return;
    this.#gauge?.removeCallback(this.#observe);
    this.#gauge = this.#telemetry
      .meterFor(provider)
      .createObservableGauge(this.#name, { description: this.#info.description, unit: this.#info.unit });
    this.#gauge.addCallback(this.#observe);
    this.#provider = provider;
  }

  /** Unregisters the callback. */
  dispose(): void {
    this.#gauge?.removeCallback(this.#observe);
    this.#gauge = undefined;
    this.#provider = undefined;
  }
}

/**
 * The bridge from one bulwark package to OpenTelemetry, through
 * `@opentelemetry/api` only. Instruments are created lazily and follow the
 * global provider; span events go to the active span when it is recording.
 * With no SDK registered, every operation is a cheap no-op.
 */
export class Telemetry {
  readonly #scope: string;
  readonly #version: string;
  #provider: MeterProvider | undefined;
  #meter: Meter | undefined;
  #tracerProvider: TracerProvider | undefined;
  #tracer: Tracer | undefined;

  /** @param scope the instrumentation scope, e.g. `"@bulwark/retry"`. */
  constructor(scope: string, version: string) {
    this.#scope = scope;
    this.#version = version;
  }

  /** @internal the meter of this scope on `provider`. */
  meterFor(provider: MeterProvider): Meter {
    if (provider !== this.#provider || this.#meter === undefined) {
      this.#meter = provider.getMeter(this.#scope, this.#version);
      this.#provider = provider;
    }
    return this.#meter;
  }

  counter(name: string, info: InstrumentInfo): MetricInstrument {
    return new LazyInstrument(this, 'counter', name, info);
  }

  /** An up-down counter: report levels through {@link LevelCounter.level}, never bare `+1`/`-1`. */
  upDownCounter(name: string, info: InstrumentInfo): LevelCounter {
    return new LevelCounter(new LazyInstrument(this, 'upDownCounter', name, info));
  }

  histogram(name: string, info: InstrumentInfo): MetricInstrument {
    return new LazyInstrument(this, 'histogram', name, info);
  }

  gauge(name: string, info: InstrumentInfo, observe: (result: ObservableResult) => void): LazyGauge {
    return new LazyGauge(this, name, info, observe);
  }

  /** Whether a tracer provider is registered: without one, {@link inSpan} makes no span. */
  get tracing(): boolean {
    return registered('trace');
  }

  /**
   * Runs `run` inside a new span of this scope, made the active span while
   * `run` runs (so span events and child spans land on it), and ends it when
   * the result settles: an error sets the span's status to ERROR, its
   * `error.type` (see {@link errorType}) and an exception event; `run` may set
   * more on the span it is given. With no tracer provider registered, `run`
   * gets `undefined` and runs as it is, at the cost of one global lookup.
   */
  inSpan<T>(
    name: string,
    options: {
      readonly kind: 'internal' | 'client';
      /** The span's attributes at its start, or a function that builds them (called only when a span is made). */
      readonly attributes?: Attributes | (() => Attributes) | undefined;
    },
    run: (span: Span | undefined) => T | PromiseLike<T>,
  ): Promise<T> {
    if (!registered('trace')) {
      try {
        return Promise.resolve(run(undefined));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const given = options.attributes;
    const attributes = typeof given === 'function' ? given() : given;
    const spanOptions = {
      kind: options.kind === 'client' ? SpanKind.CLIENT : SpanKind.INTERNAL,
      ...(attributes === undefined ? {} : { attributes }),
    };
    return this.#tracerOf().startActiveSpan(name, spanOptions, (span) => {
      let result: T | PromiseLike<T>;
      try {
        result = run(span);
      } catch (error) {
        failSpan(span, error);
        span.end();
        return Promise.reject(error);
      }
      return Promise.resolve(result).then(
        (value) => {
          span.end();
          return value;
        },
        (error: unknown) => {
          failSpan(span, error);
          span.end();
          throw error;
        },
      );
    });
  }

  /**
   * Writes the active context (the active span's `traceparent`, baggage) into
   * `headers` through the registered propagator; nothing without one.
   */
  injectContext(headers: { set(name: string, value: string): void }): void {
    if (!registered('propagation')) return;
    propagation.inject(context.active(), headers, { set: (carrier, key, value) => carrier.set(key, value) });
  }

  #tracerOf(): Tracer {
    const provider = trace.getTracerProvider();
    if (provider !== this.#tracerProvider || this.#tracer === undefined) {
      this.#tracer = provider.getTracer(this.#scope, this.#version);
      this.#tracerProvider = provider;
    }
    return this.#tracer;
  }

  /**
   * Adds an event to the active span, if there is one and it is recording.
   * `attributes` is called only then, so building them costs nothing otherwise.
   */
  spanEvent(name: string, attributes?: () => Attributes): void {
    if (!registered('context')) return;
    this.spanEventOn(trace.getActiveSpan(), name, attributes);
  }

  /**
   * The active span, to add an event to later from code that may run in
   * another call's async context (a callback of the shared deadline timer
   * does); undefined with no context manager registered (one global lookup).
   */
  activeSpan(): Span | undefined {
    return registered('context') ? trace.getActiveSpan() : undefined;
  }

  /** Adds an event to `span` (from {@link activeSpan}), if there is one and it is still recording. */
  spanEventOn(span: Span | undefined, name: string, attributes?: () => Attributes): void {
    if (span === undefined || !span.isRecording()) return;
    span.addEvent(name, attributes?.());
  }
}

/**
 * A low-cardinality name for what went wrong, for a span's `error.type`: a
 * bulwark error's code (`ERR_DEADLINE_EXCEEDED`), else a string `code` on the
 * error or its cause (`ECONNRESET`), else the error's class name, else `_OTHER`.
 */
export function errorType(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    const cause = (error as { cause?: { code?: unknown } | null }).cause;
    if (typeof cause === 'object' && cause !== null && typeof cause.code === 'string') return cause.code;
    const name = (error as { name?: unknown }).name;
    if (typeof name === 'string' && name !== '') return name;
  }
  return '_OTHER';
}

/** Marks `span` as failed by `error`. */
export function failSpan(span: Span, error: unknown): void {
  span.setAttribute('error.type', errorType(error));
  span.setStatus({
    code: SpanStatusCode.ERROR,
    ...(error instanceof Error ? { message: error.message } : {}),
  });
  if (error instanceof Error) span.recordException(error);
}

/** An OpenTelemetry span, as {@link Telemetry.inSpan} hands it over. */
export type TelemetrySpan = Span;
