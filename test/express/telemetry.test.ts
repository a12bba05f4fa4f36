import { EventEmitter } from 'node:events';
import { VirtualClock } from '@bulwark/clock';
import { bulwarkExpress } from '@bulwark/express';
import type { Request, Response } from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { installOtel, resetOtel } from '../support/otel.ts';

// Both adapters report through @bulwark/http-server's scope.
afterEach(resetOtel);

/** Just enough of a response for the middleware. */
function response() {
  return Object.assign(new EventEmitter(), {
    statusCode: 200,
    writableEnded: false,
    writeHead() {
      return this;
    },
    end() {
      this.writableEnded = true;
      return this;
    },
  });
}

describe('@bulwark/express telemetry', () => {
  it('counts refusals by reason and aborted handlers by reason', async () => {
    const otel = installOtel();
    const points = async (name: string) => (await otel.collect('@bulwark/http-server')).points(name);
    const clock = new VirtualClock();
    const middleware = bulwarkExpress({ clock });
    const call = (headers: Record<string, string>) => {
      const res = response();
      middleware({ headers } as unknown as Request, res as unknown as Response, () => {});
      return res;
    };
    call({ 'grpc-timeout': '1X' });
    call({ 'x-request-timeout-ms': '0' });
    call({}).emit('close'); // the client went away
    const timed = call({ 'x-request-timeout-ms': '5' });
    await clock.advance(5);
    timed.end();
    timed.emit('close');
    expect(await points('bulwark.server.refusals')).toEqual(
      expect.arrayContaining([
        { reason: 'invalid-deadline', value: 1 },
        { reason: 'deadline-expired', value: 1 },
      ]),
    );
    expect(await points('bulwark.server.aborts')).toEqual(
      expect.arrayContaining([
        { reason: 'disconnect', value: 1 },
        { reason: 'deadline', value: 1 },
      ]),
    );
  });
});
