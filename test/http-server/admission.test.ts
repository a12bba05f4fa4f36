import { bulkhead } from '@bulwark/bulkhead';
import { VirtualClock } from '@bulwark/clock';
import { isBulwarkError } from '@bulwark/core';
import { currentDeadline } from '@bulwark/deadline';
import {
  type Admission,
  admitRequest,
  type BulwarkServerOptions,
  enterDeadline,
  type RequestScope,
  resolveServerOptions,
} from '@bulwark/http-server';
import { describe, expect, it } from 'vitest';
import { FakeResponse, recordingBulkhead } from './support.ts';

function admit(headers: Record<string, string>, options: BulwarkServerOptions, res = new FakeResponse()) {
  return admitRequest(headers, res, resolveServerOptions(options, 'test()'));
}

function admitted(admission: Admission): RequestScope {
  if (!admission.admitted) throw new Error(`refused with ${admission.response.status}`);
  return admission.context;
}

function refused(admission: Admission) {
  if (admission.admitted) throw new Error('admitted');
  return { ...admission.response, problem: JSON.parse(admission.response.body) };
}

describe('admitRequest() refusals', () => {
  it('answers 400 problem+json naming a malformed deadline header, without taking a slot', () => {
    const { policy, outcomes } = recordingBulkhead(0);
    const answer = refused(admit({ 'grpc-timeout': '12X' }, { bulkhead: policy }));
    expect(answer.status).toBe(400);
    expect(answer.headers['content-type']).toBe('application/problem+json');
    expect(answer.problem.title).toContain('grpc-timeout');
    expect(outcomes).toEqual([]);
  });

  it('answers 504 when the budget was spent before the request arrived', () => {
    const answer = refused(admit({ 'x-request-timeout-ms': '0' }, { clock: new VirtualClock() }));
    expect(answer.status).toBe(504);
    expect(answer.problem.type).toBe('urn:bulwark:deadline:expired');
  });

  it('sheds with 503 and Retry-After when the bulkhead has no free slot', () => {
    const limit = bulkhead({ maxConcurrent: 1 });
    const first = new FakeResponse();
    admitted(admit({}, { bulkhead: limit, retryAfterSeconds: 7 }, first));
    const answer = refused(admit({}, { bulkhead: limit, retryAfterSeconds: 7 }));
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBe('7');
    expect(answer.problem).toEqual({
      type: 'urn:bulwark:server:overloaded',
      title: 'The server is at capacity',
      status: 503,
      detail: expect.any(String),
    });
    first.finish();
    expect(limit.active).toBe(0);
    admitted(admit({}, { bulkhead: limit }));
  });
});

describe('admitRequest() context', () => {
  it('sets the deadline from the smallest header, capped by maxTimeoutMs, on the given clock', async () => {
    const clock = new VirtualClock();
    const context = admitted(
      admit({ 'x-request-timeout-ms': '300', 'grpc-timeout': '200m' }, { clock, maxTimeoutMs: 5000 }),
    );
    expect(context.deadlineHeader).toBe('grpc-timeout');
    expect(context.remainingMs()).toBe(200);
    await clock.advance(50);
    expect(context.remainingMs()).toBe(150);
    const capped = admitted(admit({ 'x-request-timeout-ms': '9000' }, { clock, maxTimeoutMs: 1000 }));
    expect(capped.remainingMs()).toBe(1000);
  });

  it('has no deadline without a header, unless defaultTimeoutMs gives one', () => {
    const clock = new VirtualClock();
    const none = admitted(admit({}, { clock }));
    expect(none.deadline).toBeUndefined();
    expect(none.remainingMs()).toBe(Number.POSITIVE_INFINITY);
    const fallback = admitted(admit({}, { clock, defaultTimeoutMs: 80 }));
    expect(fallback.remainingMs()).toBe(80);
    expect(fallback.deadlineHeader).toBeUndefined();
  });

  it('aborts the signal with a DeadlineExceededError at the deadline, and reports dropped to the slot', async () => {
    const clock = new VirtualClock();
    const { policy, outcomes } = recordingBulkhead();
    const res = new FakeResponse();
    const context = admitted(admit({ 'x-request-timeout-ms': '40' }, { clock, bulkhead: policy }, res));
    await clock.advance(39);
    expect(context.signal.aborted).toBe(false);
    await clock.advance(1);
    expect(context.signal.aborted).toBe(true);
    expect(isBulwarkError(context.signal.reason, 'ERR_DEADLINE_EXCEEDED')).toBe(true);
    res.finish(504);
    expect(outcomes).toEqual(['dropped']);
  });

  it('aborts the signal with an AbortError when the client goes away first, and releases the slot', () => {
    const { policy, outcomes } = recordingBulkhead();
    const res = new FakeResponse();
    const context = admitted(admit({}, { bulkhead: policy }, res));
    res.disconnect();
    expect(context.signal.aborted).toBe(true);
    expect((context.signal.reason as DOMException).name).toBe('AbortError');
    expect(outcomes).toEqual(['release']);
  });

  it('tells the slot success or failure by the status of a finished response, exactly once', async () => {
    const clock = new VirtualClock();
    const { policy, outcomes } = recordingBulkhead();
    const ok = new FakeResponse();
    const okContext = admitted(admit({ 'x-request-timeout-ms': '10' }, { clock, bulkhead: policy }, ok));
    ok.finish(201);
    ok.finish(201);
    const failed = new FakeResponse();
    admitted(admit({}, { clock, bulkhead: policy }, failed));
    failed.finish(503);
    failed.disconnect();
    expect(outcomes).toEqual(['success', 'failure']);
    // A finished response neither aborts the signal nor lets the dropped deadline fire later.
    await clock.advance(100);
    expect(okContext.signal.aborted).toBe(false);
  });
});

describe('enterDeadline()', () => {
  it('runs the callback inside the deadline, so currentDeadline() sees it', () => {
    const clock = new VirtualClock();
    const context = admitted(admit({ 'x-request-timeout-ms': '500' }, { clock }));
    let seen: number | undefined;
    const refusal = enterDeadline(context, () => {
      seen = currentDeadline({ clock })?.remaining();
    });
    expect(refusal).toBeUndefined();
    expect(seen).toBe(500);
  });

  it('runs the callback as it is without a deadline or a context', () => {
    const calls: Array<number | undefined> = [];
    const clock = new VirtualClock();
    enterDeadline(undefined, () => calls.push(currentDeadline({ clock })?.remaining()));
    enterDeadline(null, () => calls.push(currentDeadline({ clock })?.remaining()));
    enterDeadline(admitted(admit({}, { clock })), () => calls.push(currentDeadline({ clock })?.remaining()));
    expect(calls).toEqual([undefined, undefined, undefined]);
  });

  it('returns a 504 instead of calling back when the deadline passed before the handler', async () => {
    const clock = new VirtualClock();
    const context = admitted(admit({ 'x-request-timeout-ms': '30' }, { clock }));
    await clock.advance(30);
    let called = false;
    const refusal = enterDeadline(context, () => {
      called = true;
    });
    expect(called).toBe(false);
    expect(refusal?.status).toBe(504);
    expect(JSON.parse(refusal!.body)).toMatchObject({
      type: 'urn:bulwark:deadline:expired',
      detail: 'The 30 ms budget ran out before the handler started.',
    });
  });
});
