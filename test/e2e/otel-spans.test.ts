// Spans of bulwark's own. bulwark used to add span events only to the active
// span, so without HTTP auto-instrumentation (no active span) a retry, a
// deadline or an opened breaker left no trace at all. createFetch({ spans })
// and the traced() policy now make spans of their own, off by default. Real
// SDK, real HTTP server on loopback.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { constant, createFetch, deadline, pipeline, retry, traced } from 'bulwark';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { closeServer } from '../support/loopback.ts';
import { installOtel, resetOtel } from '../support/otel.ts';

let server: Server;
let origin: string;
let served = 0;
const seen: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    served++;
    seen.push(req.headers);
    req.resume();
    // Every odd request is refused once: the first attempt of each call gets a 503.
    if (served % 2 === 1) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('try again\n');
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

beforeEach(() => {
  served = 0;
  seen.length = 0;
});

afterEach(async () => {
  propagation.disable();
  await resetOtel();
});

afterAll(async () => {
  await closeServer(server);
});

/** A W3C trace-context propagator written against the API alone. */
function installTraceparent(): void {
  propagation.setGlobalPropagator({
    inject(context, carrier, setter) {
      const span = trace.getSpanContext(context);
      if (span !== undefined) setter.set(carrier, 'traceparent', `00-${span.traceId}-${span.spanId}-01`);
    },
    extract: (context) => context,
    fields: () => ['traceparent'],
  });
}

describe('createFetch spans', () => {
  it('makes no span by default: events without an active span are lost', async () => {
    const otel = installOtel({ tracing: true });
    const fetch = createFetch({ name: 'orders', backoff: constant(5) });
    expect((await fetch(`${origin}/orders`)).status).toBe(200);
    expect(served).toBe(2);
    expect(otel.spans()).toEqual([]);
  });

  it("spans: 'call' gives one span per call, with the attempts' events on it", async () => {
    const otel = installOtel({ tracing: true });
    const fetch = createFetch({ name: 'orders', backoff: constant(5), spans: 'call' });
    const response = await fetch(`${origin}/orders?id=7`);
    expect(await response.json()).toEqual({ ok: true });

    const spans = otel.spans();
    expect(spans).toHaveLength(1);
    const span = spans[0]!;
    expect(span.name).toBe('orders GET');
    expect(span.kind).toBe(SpanKind.INTERNAL);
    expect(span.instrumentationScope.name).toBe('@bulwark/fetch');
    expect(span.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.full': `${origin}/orders?id=7`,
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(origin).port),
      'http.response.status_code': 200,
      'bulwark.attempts': 2,
    });
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(span.events.map((e) => [e.name, e.attributes])).toEqual([
      ['bulwark.retry', { attempt: 1, delay_ms: 5 }],
    ]);
  });

  it("spans: 'attempts' adds a CLIENT span per attempt, the resent one with http.request.resend_count, its context sent downstream", async () => {
    const otel = installOtel({ tracing: true });
    installTraceparent();
    const fetch = createFetch({ name: 'orders', backoff: constant(5), spans: 'attempts' });
    expect((await fetch(`${origin}/orders`, { method: 'PUT', body: 'x' })).status).toBe(200);

    const spans = otel.spans();
    expect(spans.map((s) => s.name)).toEqual(['PUT', 'PUT', 'orders PUT']);
    const [first, second, call] = spans as [(typeof spans)[0], (typeof spans)[0], (typeof spans)[0]];
    for (const attempt of [first, second]) {
      expect(attempt.kind).toBe(SpanKind.CLIENT);
      expect(attempt.parentSpanContext?.spanId).toBe(call.spanContext().spanId);
      expect(attempt.spanContext().traceId).toBe(call.spanContext().traceId);
    }
    expect(first.attributes['http.request.resend_count']).toBeUndefined();
    expect(first.attributes).toMatchObject({ 'http.response.status_code': 503, 'error.type': '503' });
    expect(first.status.code).toBe(SpanStatusCode.ERROR);
    expect(second.attributes).toMatchObject({
      'http.request.resend_count': 1,
      'http.response.status_code': 200,
    });
    expect(second.status.code).toBe(SpanStatusCode.UNSET);
    // Each attempt carried its own span's context.
    expect(seen.map((h) => h.traceparent)).toEqual(
      [first, second].map((s) => `00-${s.spanContext().traceId}-${s.spanContext().spanId}-01`),
    );
  });

  it('marks the call span failed with error.type when the call throws', async () => {
    const otel = installOtel({ tracing: true });
    const fetch = createFetch({
      name: 'orders',
      spans: 'call',
      maxAttempts: 1,
      fetch: () =>
        Promise.reject(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } })),
    });
    await expect(fetch(`${origin}/orders`)).rejects.toThrow('fetch failed');
    const [span] = otel.spans();
    expect(span!.status.code).toBe(SpanStatusCode.ERROR);
    expect(span!.attributes).toMatchObject({ 'error.type': 'ECONNREFUSED', 'bulwark.attempts': 1 });
  });

  it('rejects a spans value it does not know', () => {
    expect(() => createFetch({ spans: true as never })).toThrow(
      /spans must be one of false, "call", "attempts", got true/,
    );
  });
});

describe('traced()', () => {
  it('gives a pipeline one span per call, with the retry events on it', async () => {
    const otel = installOtel({ tracing: true });
    const policy = pipeline(
      traced('payments', { attributes: { tier: 'gold' } }),
      deadline(5_000),
      retry({ backoff: constant(1) }),
    );
    let calls = 0;
    const result = await policy.execute(
      () => {
        calls++;
        if (calls === 1) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
        return 'paid';
      },
      { operation: 'charge' },
    );
    expect(result).toBe('paid');
    const [span] = otel.spans();
    expect(span!.name).toBe('payments');
    expect(span!.instrumentationScope.name).toBe('@bulwark/core');
    expect(span!.attributes).toEqual({ tier: 'gold', 'bulwark.operation': 'charge' });
    expect(span!.events.map((e) => e.name)).toEqual(['bulwark.retry']);
  });

  it('ends the span failed when the call fails, and passes the error through unchanged', async () => {
    const otel = installOtel({ tracing: true });
    const boom = new RangeError('no');
    await expect(traced('payments').execute(() => Promise.reject(boom))).rejects.toBe(boom);
    const [span] = otel.spans();
    expect(span!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'no' });
    expect(span!.attributes['error.type']).toBe('RangeError');
    expect(span!.events.map((e) => e.name)).toEqual(['exception']);
  });

  it('runs the call as it is with no SDK registered', async () => {
    expect(await traced('payments').execute(() => 42)).toBe(42);
    await expect(traced('payments').execute(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
  });
});
