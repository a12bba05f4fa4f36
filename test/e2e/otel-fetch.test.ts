// OpenTelemetry end to end: the real SDK registered, a real HTTP server on
// loopback, and one fetch that fails once (503) and then succeeds. The span
// events and metric points it leaves are the ones docs/observability.md lists.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { trace } from '@opentelemetry/api';
import { constant, createFetch } from 'bulwark';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeServer } from '../support/loopback.ts';
import { installOtel, resetOtel } from '../support/otel.ts';

let server: Server;
let url: string;
let served = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    served++;
    req.resume();
    if (req.url === '/slow') return; // never answers: the caller's deadline ends the call
    if (served === 1) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('try again\n');
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`;
});

afterEach(resetOtel);

afterAll(async () => {
  await closeServer(server);
});

describe('OpenTelemetry end to end', () => {
  it('records the span events and metric points of a fetch that fails once and then succeeds', async () => {
    const otel = installOtel({ tracing: true });

    const resilientFetch = createFetch({ name: 'orders', backoff: constant(5), deadlineMs: 5_000 });
    const body = await trace.getTracer('e2e').startActiveSpan('GET /orders', async (span) => {
      try {
        const response = await resilientFetch(url);
        return await response.json();
      } finally {
        span.end();
      }
    });
    expect(body).toEqual({ ok: true });
    expect(served).toBe(2);

    // Span events, on the caller's active span.
    expect(otel.spans()).toHaveLength(1);
    expect(otel.events()).toEqual([['bulwark.retry', { attempt: 1, delay_ms: 5 }]]);

    // Metric points, by instrument name, summed by one attribute.
    const collected = await otel.collect();
    expect(collected.sum('bulwark.retry.attempts', 'retry')).toEqual({ false: 1, true: 1 });
    expect(collected.has('bulwark.retry.giveups')).toBe(false);
    // The 503 counts against the origin's breaker; the 200 is a success.
    expect(collected.sum('bulwark.circuit.calls', 'outcome')).toEqual({ failure: 1, success: 1 });
    expect(collected.sum('bulwark.circuit.calls', 'breaker')).toEqual({ orders: 2 });
    expect(collected.has('bulwark.circuit.transitions')).toBe(false);
    // The bulkhead's slot was taken twice and given back twice.
    expect(collected.sum('bulwark.bulkhead.active', 'bulkhead')).toEqual({ orders: 0 });
    expect(collected.has('bulwark.bulkhead.rejections')).toBe(false);
    expect(collected.has('bulwark.deadline.exceeded')).toBe(false);
  });

  it('records a bulwark.deadline.exceeded point under the fetch name when its deadline ends a call', async () => {
    const otel = installOtel({ tracing: false });
    const resilientFetch = createFetch({
      name: 'slow-orders',
      deadlineMs: 200,
      attemptTimeoutMs: Number.POSITIVE_INFINITY,
    });
    const error = await resilientFetch(url.replace('/orders', '/slow')).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_DEADLINE_EXCEEDED', source: 'deadline', budgetMs: 200 });
    const collected = await otel.collect();
    expect(collected.sum('bulwark.deadline.exceeded', 'operation')).toEqual({ 'slow-orders': 1 });
    expect(collected.sum('bulwark.deadline.exceeded', 'source')).toEqual({ deadline: 1 });
  });
});
