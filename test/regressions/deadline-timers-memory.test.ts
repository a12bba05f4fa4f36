// A client chooses its own deadline. `x-request-timeout-ms: 999999999999999`
// on every request used to leave one idle millisecond slot behind per request
// in the shared deadline timer, until the timer reached it (never): the heap
// grew without bound. Memory must stay bounded whatever deadlines callers send.
import { VirtualClock } from '@bulwark/clock';
import { DeadlineTimers, deadlineTimers } from '@bulwark/clock/authoring';
import { admitRequest, enterDeadline, resolveServerOptions } from '@bulwark/http-server';
import { describe, expect, it } from 'vitest';
import { FakeResponse } from '../http-server/support.ts';

describe('DeadlineTimers memory', () => {
  it('holds a bounded number of slots when far-future deadlines are scheduled and cleared, one per millisecond', async () => {
    const clock = new VirtualClock();
    const timers = new DeadlineTimers(clock);
    let most = 0;
    for (let i = 0; i < 20_000; i++) {
      timers.schedule(clock.now() + 999_999_999_999_999, () => {}).clear();
      most = Math.max(most, timers.slots);
      await clock.advance(1);
    }
    expect(timers.pending).toBe(0);
    expect(most).toBeLessThanOrEqual(2_048);
  });

  it('stays bounded on the server inbound path with default options and a 15-digit deadline on every request', async () => {
    const clock = new VirtualClock();
    const options = resolveServerOptions({ clock }, 'test()');
    const timers = deadlineTimers(clock);
    let most = 0;
    let served = 0;
    // Ten requests in flight at a time, each answered a few milliseconds after it arrived.
    const inFlight: FakeResponse[] = [];
    for (let i = 0; i < 20_000; i++) {
      const res = new FakeResponse();
      const admission = admitRequest({ 'x-request-timeout-ms': '999999999999999' }, res, options);
      if (!admission.admitted) throw new Error(`refused with ${admission.response.status}`);
      expect(enterDeadline(admission.context, () => served++)).toBeUndefined();
      inFlight.push(res);
      if (inFlight.length > 10) inFlight.shift()!.finish();
      most = Math.max(most, timers.slots);
      if (i % 3 === 0) await clock.advance(1);
    }
    for (const res of inFlight.splice(0)) res.finish();
    expect(served).toBe(20_000);
    expect(timers.pending).toBe(0);
    expect(most).toBeLessThanOrEqual(2_048);
  });
});
