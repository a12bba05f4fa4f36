import { VirtualClock } from '@bulwark/clock';
import { admitRequest, enterDeadline, resolveServerOptions } from '@bulwark/http-server';
import { afterEach, describe, expect, it } from 'vitest';
import { installOtel, resetOtel } from '../support/otel.ts';
import { FakeResponse, recordingBulkhead } from './support.ts';

afterEach(resetOtel);

describe('@bulwark/http-server telemetry', () => {
  it('counts refusals and aborted handlers by reason, under one scope', async () => {
    const otel = installOtel();
    const clock = new VirtualClock();
    const { policy } = recordingBulkhead(1);
    const options = resolveServerOptions({ clock, bulkhead: policy }, 'test()');
    const admit = (headers: Record<string, string>, res = new FakeResponse()) =>
      admitRequest(headers, res, options);

    admit({ 'grpc-timeout': 'soon' });
    admit({ 'x-request-timeout-ms': '0' });
    const late = new FakeResponse();
    const admission = admit({ 'x-request-timeout-ms': '20' }, late);
    admit({}); // the only slot is taken
    await clock.advance(20);
    if (!admission.admitted) throw new Error('refused');
    enterDeadline(admission.context, () => undefined); // too late: a second deadline-expired refusal
    late.finish(504);
    const gone = new FakeResponse();
    admit({}, gone);
    gone.disconnect();

    const collected = await otel.collect('@bulwark/http-server');
    expect(collected.sum('bulwark.server.refusals', 'reason')).toEqual({
      'invalid-deadline': 1,
      'deadline-expired': 2,
      overloaded: 1,
    });
    expect(collected.sum('bulwark.server.aborts', 'reason')).toEqual({ deadline: 1, disconnect: 1 });
    expect(collected.metric('bulwark.server.refusals').descriptor.unit).toBe('{request}');
  });
});
