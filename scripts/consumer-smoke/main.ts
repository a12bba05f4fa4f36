// The consumer smoke test's app (scripts/consumer-smoke.sh installs the packed
// tarballs next to it): a Fastify service with the bulwark plugin, called
// through createFetch, with an OpenTelemetry meter provider registered.
import { strict as assert } from 'node:assert';
import { bulkhead } from '@bulwark/bulkhead';
import { circuitBreaker } from '@bulwark/circuit-breaker';
import { isBulwarkError, pipeline } from '@bulwark/core';
import { deadline, withDeadline } from '@bulwark/deadline';
import { bulwarkFastify } from '@bulwark/fastify';
import { createFetch } from '@bulwark/fetch';
import { metrics } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { presets } from 'bulwark';
import Fastify from 'fastify';

const reader = new PeriodicExportingMetricReader({
  exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
  exportIntervalMillis: 3_600_000,
});
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

const app = Fastify();
await app.register(bulwarkFastify, { bulkhead: bulkhead({ maxConcurrent: 10 }) });
app.get('/budget', async (request) => ({
  header: request.headers['x-request-timeout-ms'],
  remainingMs: request.bulwark.remainingMs(),
}));
const address = await app.listen({ port: 0, host: '127.0.0.1' });

try {
  const resilientFetch = createFetch({ attemptTimeoutMs: 2_000 });
  // The caller's deadline travels to the server as the time left.
  const seen = (await withDeadline(1_500, () => resilientFetch(`${address}/budget`)).then((r) =>
    r.json(),
  )) as {
    header: string;
    remainingMs: number;
  };
  assert.ok(
    Number(seen.header) > 0 && Number(seen.header) <= 1_500,
    `x-request-timeout-ms was ${seen.header}`,
  );
  assert.ok(seen.remainingMs <= 1_500, `the server saw ${seen.remainingMs} ms left`);

  // A policy that cannot finish in time rejects with a typed error.
  const policy = pipeline(deadline(20), circuitBreaker({ name: 'smoke' }));
  const error = await policy.execute(() => new Promise(() => {})).catch((e: unknown) => e);
  assert.ok(isBulwarkError(error, 'ERR_DEADLINE_EXCEEDED'), `got ${String(error)}`);

  assert.equal(typeof presets.httpClient, 'function');

  const { resourceMetrics } = await reader.collect();
  const names = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name));
  assert.ok(names.includes('bulwark.deadline.exceeded'), `metrics recorded: ${names.join(', ')}`);
  console.log(
    `esm: ok on Node ${process.version} (deadline header ${seen.header} ms, ${names.length} metrics)`,
  );
} finally {
  await app.close();
}
