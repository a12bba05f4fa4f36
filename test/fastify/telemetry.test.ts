import { bulkhead } from '@bulwark/bulkhead';
import { VirtualClock } from '@bulwark/clock';
import { bulwarkFastify } from '@bulwark/fastify';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { installOtel, resetOtel } from '../support/otel.ts';

// Both adapters report through @bulwark/http-server's scope.
afterEach(resetOtel);

describe('@bulwark/fastify telemetry', () => {
  it('counts refusals by reason and aborted handlers by reason', async () => {
    const otel = installOtel();
    const points = async (name: string) => (await otel.collect('@bulwark/http-server')).points(name);
    const clock = new VirtualClock();
    const app = Fastify();
    try {
      await app.register(bulwarkFastify, { clock, bulkhead: bulkhead({ maxConcurrent: 1 }) });
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      app.get('/hold', async () => {
        await held;
        return 'held';
      });
      app.get('/wait', async (request, reply) => {
        await new Promise((resolve) => request.bulwark.signal.addEventListener('abort', resolve));
        return reply.code(504).send('late');
      });
      await app.inject({ url: '/hold', headers: { 'grpc-timeout': 'x' } });
      await app.inject({ url: '/hold', headers: { 'x-request-timeout-ms': '0' } });
      const holding = app.inject({ url: '/hold' });
      await new Promise((r) => setImmediate(r));
      await app.inject({ url: '/hold' });
      release();
      await holding;
      const waiting = app.inject({ url: '/wait', headers: { 'x-request-timeout-ms': '5' } });
      await new Promise((r) => setImmediate(r));
      await clock.advance(5);
      await waiting;
      expect(await points('bulwark.server.refusals')).toEqual(
        expect.arrayContaining([
          { reason: 'invalid-deadline', value: 1 },
          { reason: 'deadline-expired', value: 1 },
          { reason: 'overloaded', value: 1 },
        ]),
      );
      expect(await points('bulwark.server.aborts')).toEqual([{ reason: 'deadline', value: 1 }]);
    } finally {
      await app.close();
    }
  });
});
