// The request scope at its deadline, and the error mapping, on a VirtualClock:
// the slot goes back once, at the deadline, however the response closes later.
import { getEventListeners } from 'node:events';
import { VirtualClock } from '@bulwark/clock';
import { BulwarkError, DeadlineExceededError } from '@bulwark/core';
import { admitRequest, errorResponse, resolveServerOptions, settleBefore } from '@bulwark/http-server';
import { describe, expect, it } from 'vitest';
import { FakeResponse, recordingBulkhead } from './support.ts';

describe('a request scope at its deadline', () => {
  it('gives the slot back (dropped) at the deadline, once, and calls onTimeout once', async () => {
    const clock = new VirtualClock();
    const { policy, outcomes } = recordingBulkhead(1);
    const res = new FakeResponse();
    const timeouts: unknown[] = [];
    const admission = admitRequest(
      { 'x-request-timeout-ms': '100' },
      res,
      resolveServerOptions({ bulkhead: policy, clock }, 'test'),
      (context) => timeouts.push(context.expired),
    );
    expect(admission.admitted).toBe(true);
    await clock.advance(100);
    expect(outcomes).toEqual(['dropped']);
    expect(timeouts).toEqual([true]);
    res.finish(504);
    expect(outcomes).toEqual(['dropped']);
  });

  it('does nothing at the deadline once the response has closed', async () => {
    const clock = new VirtualClock();
    const { policy, outcomes } = recordingBulkhead(1);
    const res = new FakeResponse();
    let timedOut = false;
    admitRequest(
      { 'x-request-timeout-ms': '100' },
      res,
      resolveServerOptions({ bulkhead: policy, clock }, 'test'),
      () => {
        timedOut = true;
      },
    );
    res.finish(200);
    await clock.advance(200);
    expect(outcomes).toEqual(['success']);
    expect(timedOut).toBe(false);
  });
});

describe('settleBefore()', () => {
  it('rejects with the reason when the signal aborts first, and hands a late value to `late`', async () => {
    const controller = new AbortController();
    let resolve!: (value: string) => void;
    const late: string[] = [];
    const raced = settleBefore(
      new Promise<string>((r) => {
        resolve = r;
      }),
      controller.signal,
      (v) => late.push(v),
    );
    controller.abort('gone');
    await expect(raced).rejects.toBe('gone');
    resolve('lease');
    await new Promise((r) => setImmediate(r));
    expect(late).toEqual(['lease']);
  });

  it('rejects at once when the signal has already aborted, and hands the value to `late` when it comes', async () => {
    const controller = new AbortController();
    controller.abort('gone');
    let resolve!: (value: string) => void;
    const late: string[] = [];
    const raced = settleBefore(
      new Promise<string>((r) => {
        resolve = r;
      }),
      controller.signal,
      (v) => late.push(v),
    );
    await expect(raced).rejects.toBe('gone');
    resolve('lease');
    await new Promise((r) => setImmediate(r));
    expect(late).toEqual(['lease']);
  });

  it('settles as the promise does when it ends first, without `late` and without a listener left behind', async () => {
    const controller = new AbortController();
    const late: string[] = [];
    await expect(
      settleBefore(Promise.resolve('lease'), controller.signal, (v) => late.push(v)),
    ).resolves.toBe('lease');
    await expect(
      settleBefore(Promise.reject(new Error('store down')), controller.signal, (v) => late.push(v)),
    ).rejects.toThrow('store down');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    controller.abort('gone');
    await new Promise((r) => setImmediate(r));
    expect(late).toEqual([]);
  });
});

describe('errorResponse()', () => {
  it('maps bulwark errors by code and leaves other errors alone', () => {
    expect(errorResponse(new DeadlineExceededError('timeout', 50))?.status).toBe(504);
    const limited = errorResponse(new BulwarkError('ERR_RATE_LIMITED', 'x', { retryAfterMs: 2_001 }));
    expect(limited).toMatchObject({ status: 503, headers: { 'retry-after': '3' } });
    const custom = errorResponse(new BulwarkError('ERR_SOMETHING_NEW', 'x', { retryAfterMs: 10 }));
    expect(custom).toMatchObject({ status: 503, headers: { 'retry-after': '1' } });
    expect(
      errorResponse(new BulwarkError('ERR_CIRCUIT_OPEN', 'x'), { retryAfterSeconds: 7 })?.headers,
    ).toMatchObject({
      'retry-after': '7',
    });
    expect(errorResponse(new BulwarkError('ERR_CALLBACK_FAILED', 'x'))).toBeUndefined();
    expect(errorResponse(new Error('plain'))).toBeUndefined();
  });
});
